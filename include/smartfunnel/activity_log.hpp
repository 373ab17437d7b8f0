#pragma once
/// \file activity_log.hpp
/// The actions taken on opportunities (calls, emails, meetings, demos...), columnar, sorted by
/// (opportunity, time), each attributed to the stage the deal was in at that moment.

#include "smartfunnel/event_log.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace smartfunnel {

/// Input columns of equal length; optional ones may be left empty.
struct activity_columns {
  /// Opportunity per row, in the event log's representation: integer ids, or (when
  /// opportunity_names is not empty) codes into opportunity_names.
  std::span<const std::int64_t> opportunity;
  std::span<const std::string> opportunity_names;
  std::span<const time_point> time;
  /// Kind per row (user-defined: "call", "email", "meeting"...) as codes into kind_names.
  std::span<const std::int32_t> kind;
  std::span<const std::string> kind_names;
  /// Optional: who did it.
  std::span<const std::int32_t> owner;
  std::span<const std::string> owner_names;
  /// Optional: 1 where the buyer acted (replied, booked, signed), 0 for a seller action.
  std::span<const std::uint8_t> buyer;
  /// Optional: rows the caller could not parse, as event_columns::unparsed.
  std::span<const rejected_row> unparsed;
};

/// Activities of the opportunities of one event log. Immutable once built.
class activity_log {
public:
  /// Validates and sorts the rows. Every opportunity must be in `log` (an unknown id is a
  /// data_error naming the row in strict mode, a rejected row with its reason in lenient mode).
  static activity_log from_columns(const event_log& log, const activity_columns& cols,
                                   const ingest_options& options = {});

  [[nodiscard]] std::size_t size() const noexcept { return time_.size(); }
  /// Per opportunity of the log (dense index), the range of its activities: CSR offsets.
  [[nodiscard]] std::span<const std::uint64_t> offsets() const noexcept { return offset_; }
  [[nodiscard]] std::span<const time_point> times() const noexcept { return time_; }
  [[nodiscard]] std::span<const std::uint32_t> kinds() const noexcept { return kind_; }
  [[nodiscard]] std::span<const std::int32_t> owners() const noexcept { return owner_; }
  [[nodiscard]] std::span<const std::uint8_t> buyer() const noexcept { return buyer_; }
  /// Stage code the deal was in when the activity happened (-1: before its first stage event).
  [[nodiscard]] std::span<const std::int32_t> stages() const noexcept { return stage_; }
  [[nodiscard]] const dictionary& kind_names() const noexcept { return kinds_; }
  [[nodiscard]] const dictionary& owner_names() const noexcept { return owner_names_; }
  [[nodiscard]] const data_quality_report& report() const noexcept { return report_; }

private:
  std::vector<std::uint64_t> offset_;
  std::vector<time_point> time_;
  std::vector<std::uint32_t> kind_;
  std::vector<std::int32_t> owner_;
  std::vector<std::uint8_t> buyer_;
  std::vector<std::int32_t> stage_;
  dictionary kinds_, owner_names_;
  data_quality_report report_;
};

} // namespace smartfunnel
