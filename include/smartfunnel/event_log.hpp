#pragma once
/// \file event_log.hpp
/// The stage history of every opportunity, columnar and interned, plus time-stamped field history
/// (amount, owner, expected close date) and static categorical attributes.

#include "smartfunnel/funnel.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace smartfunnel {

namespace detail {
struct serialization_access; // reads and writes private members (smartfunnel/serialization/)
} // namespace detail

/// Seconds since the Unix epoch, UTC.
using time_point = std::int64_t;
/// Marks a missing time in input columns.
inline constexpr time_point missing_time = std::numeric_limits<time_point>::min();
/// The earliest and latest times ingestion accepts (event, created, close-date and change times):
/// 0001-01-01T00:00:00 and 9999-12-31T23:59:59 UTC. Times before 1970 (negative) are valid times;
/// outside this range a row is rejected with data_error, so durations between any two accepted
/// times never overflow.
inline constexpr time_point min_time = -62'135'596'800;
inline constexpr time_point max_time = 253'402'300'799;
/// Marks a missing categorical code in input columns.
inline constexpr std::int32_t missing_code = -1;

/// Strings interned to dense 32-bit codes, in order of first appearance.
class dictionary {
public:
  std::uint32_t intern(std::string_view s);
  [[nodiscard]] std::optional<std::uint32_t> find(std::string_view s) const;
  [[nodiscard]] const std::string& operator[](std::uint32_t code) const { return names_.at(code); }
  [[nodiscard]] std::size_t size() const noexcept { return names_.size(); }
  [[nodiscard]] std::span<const std::string> names() const noexcept { return names_; }
  friend bool operator==(const dictionary& a, const dictionary& b) { return a.names_ == b.names_; }

private:
  std::vector<std::string> names_;
  std::unordered_map<std::string, std::uint32_t> index_;
};

/// Time-stamped values of one field, stored as changes only, per opportunity (CSR layout).
template <class T>
struct field_history {
  std::vector<std::uint64_t> offset; ///< n_opportunities + 1 entries
  std::vector<time_point> time;      ///< change times, ascending within an opportunity
  std::vector<T> value;              ///< value from that time on

  /// The value in force at time t (the last change at or before t), or nothing.
  [[nodiscard]] std::optional<T> at(std::size_t opp, time_point t) const {
    if (offset.empty()) return std::nullopt;
    std::uint64_t lo = offset[opp], hi = offset[opp + 1];
    // Changes per opportunity are usually few, where a short scan is fastest; a deal with many
    // (a nightly sync rewriting its amount for years) gets a binary search. Both find the last
    // change at or before t (the last of several at the same time).
    if (hi - lo > 16) {
      const auto first = time.begin() + static_cast<std::ptrdiff_t>(lo);
      const auto after = std::upper_bound(first, time.begin() + static_cast<std::ptrdiff_t>(hi), t);
      if (after == first) return std::nullopt;
      return value[static_cast<std::size_t>(after - time.begin()) - 1];
    }
    std::optional<T> out;
    for (auto i = lo; i < hi && time[i] <= t; ++i) out = value[i];
    return out;
  }
  [[nodiscard]] bool empty() const noexcept { return time.empty(); }
  friend bool operator==(const field_history&, const field_history&) = default;
};

/// A static categorical attribute of each opportunity (segment, product, team...).
struct attribute {
  std::string name;
  dictionary values;
  std::vector<std::int32_t> code; ///< per opportunity, missing_code when unknown
  friend bool operator==(const attribute&, const attribute&) = default;
};

/// How strictly ingestion treats bad rows.
enum class validation { strict, lenient };
/// What an event after a Won or Lost event means.
enum class after_terminal { error, reopen };

struct ingest_options {
  /// strict: throw data_error on the first bad row; lenient: keep every valid row and report the
  /// rejected ones with reasons in data_quality_report::rejected.
  validation mode = validation::strict;
  after_terminal on_after_terminal = after_terminal::error;
};

struct rejected_row {
  std::int64_t row;   ///< 0-based input row
  std::string column; ///< the column that failed
  std::string reason; ///< what was expected and what was found
};

/// What ingestion did besides keeping rows: nothing is dropped without a line here.
struct data_quality_report {
  std::size_t rows_read = 0;
  std::size_t rows_kept = 0; ///< rows that became events (duplicates included)
  /// Identical rows (same opportunity, stage, time and fields): one event, the others counted
  /// here. Rows with the same opportunity, stage and time whose amount, owner or close date
  /// differ are a conflict: strict throws data_error naming both rows; lenient keeps the later
  /// row in input order (at the place of the first) and rejects each earlier one with the reason.
  std::size_t duplicates_collapsed = 0;
  std::size_t reopened = 0;           ///< events after a terminal event accepted as reopenings
  std::vector<rejected_row> rejected; ///< lenient mode only
};

/// A categorical input column: per-row codes into names (missing_code when absent).
struct categorical_column {
  std::string name;
  std::span<const std::int32_t> code;
  std::span<const std::string> names;
};

/// Field changes that come without a stage event (a CRM's field-history table): per row an
/// opportunity (the same id representation as the events), a time, and the new values of any of
/// amount, owner and close date (each column optional; a 0 in a *_given mask, or missing_time for
/// close_date, means "not changed in this row"). At equal times a change row wins over an event.
struct change_columns {
  std::span<const std::int64_t> opportunity;
  std::span<const std::string> opportunity_names;
  std::span<const time_point> time;
  std::span<const double> amount;
  std::span<const std::uint8_t> amount_given;
  std::span<const std::int32_t> owner;
  std::span<const std::string> owner_names;
  std::span<const std::uint8_t> owner_given;
  std::span<const time_point> close_date;

  [[nodiscard]] bool empty() const noexcept { return opportunity.empty(); }
};

/// Input columns of equal length; optional ones may be left empty.
struct event_columns {
  /// Opportunity per row: integer ids as given, or (when opportunity_names is not empty) codes
  /// into opportunity_names, with missing_code for a missing id.
  std::span<const std::int64_t> opportunity;
  std::span<const std::string> opportunity_names;
  /// Stage per row as a code into stage_names (missing_code when absent).
  std::span<const std::int32_t> stage;
  std::span<const std::string> stage_names;
  /// Event time per row, seconds since the epoch UTC (missing_time when absent).
  std::span<const time_point> time;
  /// Optional: deal amount in force from this row on (finite, >= 0; NaN is an error).
  std::span<const double> amount;
  /// Optional mask over `amount`: 0 where the row gives no amount (the amount in force goes on).
  /// Empty: every row gives one.
  std::span<const std::uint8_t> amount_given;
  /// Optional: owner (rep) in force from this row on.
  std::span<const std::int32_t> owner;
  std::span<const std::string> owner_names;
  /// Optional mask over `owner`, like amount_given.
  std::span<const std::uint8_t> owner_given;
  /// Optional: expected close date in force from this row on (missing_time: none given here).
  std::span<const time_point> close_date;
  /// Optional: when the opportunity was created (missing_time where not given); constant per
  /// opportunity, never after its first stage event. Default: the first stage event.
  std::span<const time_point> created;
  /// Optional static attributes, constant per opportunity.
  std::vector<categorical_column> attributes;
  /// Optional field changes between stage events. Errors name their rows as "changes row N" and
  /// their columns as "changes.<column>"; an opportunity must have stage events.
  change_columns changes;
  /// Optional: rows the caller could not parse (a time 'yesterday', an amount 'n/a' in a text
  /// export), each with its 0-based row, column and reason; the row's cells are then ignored.
  /// Ingestion treats them as its own bad rows: strict throws data_error for the first bad row
  /// (in row order, whatever made it bad), lenient rejects them with that reason and keeps the
  /// others. Any order; a row listed more than once is reported once (its first listing).
  std::span<const rejected_row> unparsed;
};

/// The validated, sorted, interned stage history. Immutable once built; cheap to share.
///
/// Layout: events sorted by (opportunity, time, input order), stored as two columns (time, stage)
/// addressed through per-opportunity offsets, i.e. 10 bytes per event plus per-opportunity data.
class event_log {
public:
  /// Builds a log from columns. Throws data_error (or unknown_stage) naming the row in strict mode.
  static event_log from_columns(const funnel& f, const event_columns& cols,
                                const ingest_options& options = {});

  /// A new log holding this log's events and the rows in `more` (validated the same way). Errors
  /// and rejections number the rows of `more` from 0; an existing event that the new rows make
  /// invalid (an earlier Lost appended before it, say) is reported as "existing event k" with a
  /// negative row (k - n_events()).
  [[nodiscard]] event_log append(const event_columns& more, const ingest_options& options = {}) const;

  [[nodiscard]] const smartfunnel::funnel& funnel() const noexcept { return funnel_; }
  [[nodiscard]] std::size_t n_events() const noexcept { return time_.size(); }
  [[nodiscard]] std::size_t n_opportunities() const noexcept { return created_.size(); }

  /// Whether opportunity ids were strings (else 64-bit integers).
  [[nodiscard]] bool string_ids() const noexcept { return string_ids_; }
  [[nodiscard]] std::span<const std::int64_t> int_ids() const noexcept { return int_ids_; }
  [[nodiscard]] std::span<const std::string> string_id_values() const noexcept { return str_ids_; }
  /// The id of dense opportunity `opp` as text (integers printed in decimal).
  [[nodiscard]] std::string id_label(std::size_t opp) const;
  /// Dense index of an opportunity id; throws unknown_opportunity.
  [[nodiscard]] std::size_t index_of(std::int64_t id) const;
  [[nodiscard]] std::size_t index_of(std::string_view id) const;

  [[nodiscard]] std::span<const std::uint64_t> offsets() const noexcept { return offset_; }
  [[nodiscard]] std::span<const time_point> times() const noexcept { return time_; }
  [[nodiscard]] std::span<const stage_code> stages() const noexcept { return stage_; }
  [[nodiscard]] std::span<const time_point> created() const noexcept { return created_; }
  /// Earliest and latest event time (0 for an empty log).
  [[nodiscard]] time_point first_time() const noexcept { return first_time_; }
  [[nodiscard]] time_point last_time() const noexcept { return last_time_; }

  [[nodiscard]] const field_history<double>& amounts() const noexcept { return amount_; }
  [[nodiscard]] const field_history<std::uint32_t>& owners() const noexcept { return owner_; }
  [[nodiscard]] const field_history<time_point>& close_dates() const noexcept { return close_; }
  [[nodiscard]] const dictionary& owner_names() const noexcept { return owner_names_; }
  [[nodiscard]] bool has_amounts() const noexcept { return !amount_.empty(); }
  [[nodiscard]] bool has_owners() const noexcept { return !owner_.empty(); }

  [[nodiscard]] std::span<const attribute> attributes() const noexcept { return attributes_; }
  /// Index of an attribute by name, or nothing.
  [[nodiscard]] std::optional<std::size_t> find_attribute(std::string_view name) const;

  [[nodiscard]] const data_quality_report& report() const noexcept { return report_; }
  /// Bytes held by the log's columns (capacity): event_bytes() + opportunity_bytes().
  [[nodiscard]] std::size_t memory_bytes() const noexcept { return event_bytes() + opportunity_bytes(); }
  /// Bytes of the per-event columns (time and stage: 10 per event).
  [[nodiscard]] std::size_t event_bytes() const noexcept;
  /// Bytes of the per-opportunity columns (ids, offsets, created, attributes) and field histories.
  [[nodiscard]] std::size_t opportunity_bytes() const noexcept;

  friend bool operator==(const event_log& a, const event_log& b);

private:
  friend struct detail::serialization_access;
  explicit event_log(smartfunnel::funnel f) : funnel_(std::move(f)) {}
  static event_log ingest(const smartfunnel::funnel& f, const event_columns& cols,
                          const ingest_options& options, std::int64_t existing,
                          std::int64_t existing_changes);

  smartfunnel::funnel funnel_;
  bool string_ids_ = false;
  std::vector<std::int64_t> int_ids_;
  std::vector<std::string> str_ids_;
  std::vector<std::uint64_t> offset_;
  std::vector<time_point> time_;
  std::vector<stage_code> stage_;
  std::vector<time_point> created_;
  time_point first_time_ = 0;
  time_point last_time_ = 0;
  field_history<double> amount_;
  field_history<std::uint32_t> owner_;
  field_history<time_point> close_;
  dictionary owner_names_;
  std::vector<attribute> attributes_;
  data_quality_report report_;
};

/// Row-by-row construction for embedders whose data is not columnar already (a CRM's database
/// cursor, say). Collects owned columns and hands them to event_log::from_columns.
class event_log_builder {
public:
  explicit event_log_builder(smartfunnel::funnel f) : funnel_(std::move(f)) {}
  /// Adds one stage event. Optional fields: pass std::nullopt where not known at this row; the
  /// value in force goes on (an opportunity's amount, owner or close date before its first given
  /// value is unknown).
  event_log_builder& add(std::string_view opportunity, std::string_view stage, time_point time,
                         std::optional<double> amount = std::nullopt,
                         std::optional<std::string_view> owner = std::nullopt,
                         std::optional<time_point> close_date = std::nullopt);
  [[nodiscard]] event_log build(const ingest_options& options = {}) const;
  [[nodiscard]] std::size_t size() const noexcept { return time_.size(); }

private:
  smartfunnel::funnel funnel_;
  dictionary opp_, stage_, owner_;
  std::vector<std::int64_t> opp_code_;
  std::vector<std::int32_t> stage_code_, owner_code_;
  std::vector<time_point> time_, close_;
  std::vector<double> amount_;
  std::vector<std::uint8_t> amount_given_, owner_given_;
  bool any_amount_ = false, any_owner_ = false, any_close_ = false;
};

} // namespace smartfunnel
