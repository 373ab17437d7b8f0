#pragma once
// What of an opportunity's history is visible at an analysis time. Events are sorted by time
// within an opportunity, so the visible part is a prefix of its range [begin, end).

#include "smartfunnel/event_log.hpp"

#include <algorithm>
#include <cstdint>
#include <span>

namespace smartfunnel::detail {

/// End (exclusive) of the events in [begin, end) at or before t; begin when none is.
inline std::uint64_t visible_end(std::span<const time_point> times, std::uint64_t begin, std::uint64_t end,
                                 time_point t) noexcept {
  if (begin == end || times[end - 1] <= t) return end;
  return static_cast<std::uint64_t>(std::upper_bound(times.begin() + static_cast<std::ptrdiff_t>(begin),
                                                     times.begin() + static_cast<std::ptrdiff_t>(end), t) -
                                    times.begin());
}

/// First event of the run of equal stages that ends at `last` (the entry of the current stay).
inline std::uint64_t run_start(std::span<const stage_code> stages, std::uint64_t begin,
                               std::uint64_t last) noexcept {
  auto run = last;
  while (run > begin && stages[run - 1] == stages[last]) --run;
  return run;
}

} // namespace smartfunnel::detail
