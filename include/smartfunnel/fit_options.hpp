#pragma once
/// \file fit_options.hpp
/// Every setting of a fit, gathered in one value that all functions taking a fit accept.

#include "smartfunnel/event_log.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace smartfunnel {

struct fit_options {
  /// Analysis time: only events at or before it are visible. Default: the log's last event.
  std::optional<time_point> as_of;
  /// Length of one duration tick in seconds (86400: days; 1: the input's resolution).
  std::int64_t tick_seconds = 86400;
  /// Total concentration of the Dirichlet prior on each stage's destinations (0: unsmoothed).
  double prior = 1.0;
  /// Optional half-life in seconds for exponential decay weights w = 2^-(as_of - t_end)/h per stay.
  std::optional<double> half_life_seconds;
  /// Grouping columns, outermost first: "owner" (time-varying: the owner when the stay ended) or
  /// the name of a static attribute. Each level is shrunk toward the level above it.
  std::vector<std::string> groups;
  /// Rows with fewer raw exits than this are flagged insufficient_history.
  std::size_t min_exits = 20;
  /// Rows whose unresolved mass S(tau) exceeds this are flagged.
  double unresolved_threshold = 0.2;
  /// Level of every interval (credible with a prior, confidence without).
  double level = 0.9;
  /// Seed and number of posterior draws for win-probability intervals (the point value is exact).
  std::uint64_t seed = 0;
  std::size_t draws = 2000;
  /// The most draws validate() accepts (50x the default; more only costs time).
  static constexpr std::size_t max_draws = 100'000;
  /// Empirical-Bayes shrinkage of groups: concentration bounds, and the concentration used when a
  /// parent has fewer than min_groups_for_eb children (too few to estimate it).
  double min_concentration = 0.5;
  double max_concentration = 1e4;
  std::size_t min_groups_for_eb = 5;
  double fallback_concentration = 10.0;
  /// Ages with fewer stays at risk than this use the destination mix of the last supported age.
  std::size_t min_at_risk = 10;

  /// Throws invalid_options naming the field when a value is out of range.
  void validate() const;
  friend bool operator==(const fit_options&, const fit_options&) = default;
};

} // namespace smartfunnel
