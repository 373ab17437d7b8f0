#pragma once
/// \file fit_statistics.hpp
/// The sufficient statistics of a fit: integer counts and weighted sums per (group, stage,
/// destination or censored, duration tick). Partial statistics over disjoint sets of opportunities
/// add up to the statistics of the union, which is how fits scale out.

#include "smartfunnel/event_log.hpp"
#include "smartfunnel/fit_options.hpp"
#include "smartfunnel/funnel.hpp"

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace smartfunnel {

/// Exits and censorings of one (group, stage) cell, aggregated by duration tick.
///
/// Columns of the count/weight tables: one per funnel code (the destination), then one for
/// censored stays. Rows: the distinct durations, ascending.
struct stage_counts {
  std::vector<std::int64_t> duration;
  std::vector<std::int64_t> count; ///< duration.size() x width, raw number of stays
  std::vector<double> weight;      ///< same shape, sum of decay weights (== count without decay)
  std::vector<double> weight_sq;   ///< same shape, sum of squared weights (effective sample size)

  [[nodiscard]] std::size_t rows() const noexcept { return duration.size(); }
  /// Adds another cell's counts (durations merged in order).
  void merge(const stage_counts& other, std::size_t width);
  friend bool operator==(const stage_counts&, const stage_counts&) = default;
};

/// Sufficient statistics of a whole fit: the options and funnel they were computed under, and per
/// leaf group (the innermost grouping level) one stage_counts per open stage.
struct fit_statistics {
  smartfunnel::funnel funnel;
  fit_options options; ///< as_of is always set here
  /// Leaf group keys (one value per grouping level; empty key when ungrouped) -> cells per stage.
  std::map<std::vector<std::string>, std::vector<stage_counts>> cells;
  std::size_t n_opportunities = 0;
  std::size_t n_stays = 0;

  /// Columns of each cell's tables: funnel codes plus one for censored.
  [[nodiscard]] std::size_t width() const noexcept { return funnel.n_codes() + 1; }
  /// Adds the statistics of a disjoint set of opportunities. Throws incompatible_merge when the
  /// funnel or options differ.
  void merge(const fit_statistics& other);
  friend bool operator==(const fit_statistics&, const fit_statistics&) = default;
};

/// One pass over the log as of options.as_of (default: the last event): every stay in an open
/// stage becomes an exit to its destination or a censoring at as_of.
[[nodiscard]] fit_statistics collect_statistics(const event_log& log, const fit_options& options = {});

} // namespace smartfunnel
