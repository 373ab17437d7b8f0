#pragma once
// Helpers shared by the C++ tests: owning input columns built row by row, and day-based times.
// Not a test file itself (the test glob picks up *_test.cpp only).

#include <smartfunnel/smartfunnel.hpp>

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sftest {

using smartfunnel::time_point;

/// 2024-01-01 00:00:00 UTC, the origin of every hand-worked example.
inline constexpr time_point t0 = 1'704'067'200;
inline constexpr time_point day_seconds = 86'400;
/// t0 plus `d` whole days plus `h` hours.
constexpr time_point day(std::int64_t d, std::int64_t h = 0) { return t0 + d * day_seconds + h * 3600; }

/// Owning event columns, filled row by row. Optional columns are passed on only when non-empty.
struct table {
  std::vector<std::int64_t> opp;
  std::vector<std::string> opp_names; ///< non-empty: opp holds codes into it (string ids)
  std::vector<std::int32_t> stage;
  std::vector<std::string> stage_names;
  std::vector<time_point> time;
  std::vector<double> amount;
  std::vector<std::int32_t> owner;
  std::vector<std::string> owner_names;
  std::vector<time_point> close_date;
  std::vector<time_point> created;
  std::vector<smartfunnel::rejected_row> unparsed; ///< rows the caller could not parse

  static std::int32_t intern(std::vector<std::string>& names, std::string_view s) {
    auto it = std::find(names.begin(), names.end(), s);
    if (it != names.end()) return static_cast<std::int32_t>(it - names.begin());
    names.emplace_back(s);
    return static_cast<std::int32_t>(names.size() - 1);
  }

  /// Adds a row with an integer opportunity id.
  table& add(std::int64_t o, std::string_view s, time_point t) {
    opp.push_back(o);
    stage.push_back(intern(stage_names, s));
    time.push_back(t);
    return *this;
  }
  /// Adds a row with a string opportunity id.
  table& add(std::string_view o, std::string_view s, time_point t) {
    opp.push_back(intern(opp_names, o));
    stage.push_back(intern(stage_names, s));
    time.push_back(t);
    return *this;
  }
  /// Adds a row with an integer id, an amount and an owner.
  table& add(std::int64_t o, std::string_view s, time_point t, double amt, std::string_view who) {
    add(o, s, t);
    amount.push_back(amt);
    owner.push_back(intern(owner_names, who));
    return *this;
  }
  /// Adds a row with a string id, an amount and an owner.
  table& add(std::string_view o, std::string_view s, time_point t, double amt, std::string_view who) {
    add(o, s, t);
    amount.push_back(amt);
    owner.push_back(intern(owner_names, who));
    return *this;
  }

  [[nodiscard]] smartfunnel::event_columns columns() const {
    smartfunnel::event_columns c;
    c.opportunity = opp;
    c.opportunity_names = opp_names;
    c.stage = stage;
    c.stage_names = stage_names;
    c.time = time;
    c.amount = amount;
    c.owner = owner;
    c.owner_names = owner_names;
    c.close_date = close_date;
    c.created = created;
    c.unparsed = unparsed;
    return c;
  }

  [[nodiscard]] smartfunnel::event_log log(const smartfunnel::funnel& f,
                                           const smartfunnel::ingest_options& o = {}) const {
    return smartfunnel::event_log::from_columns(f, columns(), o);
  }
};

} // namespace sftest
