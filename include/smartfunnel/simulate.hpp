#pragma once
/// \file simulate.hpp
/// Synthetic stage histories with known truth: opportunities move through a funnel by given
/// transition probabilities and destination-dependent sojourn distributions, and are censored at
/// an analysis date. Recovery tests, examples and the bundled sample use it.

#include "smartfunnel/event_log.hpp"
#include "smartfunnel/funnel.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace smartfunnel {

struct simulation_spec {
  /// Row-major n_open x (n_open + 2): P(next = open stage j, Won, Lost | leaving stage s).
  std::vector<double> transition;
  /// Same shape: mean sojourn in days given the destination (gamma distributed, shape below).
  std::vector<double> sojourn_mean_days;
  double sojourn_shape = 2.0;
  /// Per-owner overrides of `transition` (same shape each); empty: every owner uses `transition`.
  std::vector<std::vector<double>> owner_transition;
  std::vector<std::string> owners = {"rep-1", "rep-2", "rep-3"};
  std::size_t n_opportunities = 1000;
  /// Creations are uniform over [start, as_of); events after as_of are not emitted (censoring).
  time_point start = 1'704'067'200; // 2024-01-01
  time_point as_of = 1'735'689'600; // 2025-01-01
  std::size_t entry_stage = 0;
  /// Log-normal amount: median and log-scale spread; each stage entry changes it with some chance.
  double amount_median = 20'000.0;
  double amount_sigma = 0.8;
  double amount_change_probability = 0.1;
  /// Chance that a deal is reassigned to another owner at a stage entry.
  double reassign_probability = 0.02;
  /// Chance that the expected close date is pushed out by 30 days at a stage entry.
  double close_push_probability = 0.15;
  std::uint64_t seed = 0;
};

/// Simulated event columns, ready for event_log::from_columns (integer opportunity ids).
struct simulated_events {
  std::vector<std::int64_t> opportunity;
  std::vector<std::int32_t> stage; ///< codes into stage_names (the funnel's names)
  std::vector<std::string> stage_names;
  std::vector<time_point> time;
  std::vector<double> amount;
  std::vector<std::int32_t> owner;
  std::vector<std::string> owner_names;
  std::vector<time_point> close_date;
  std::vector<time_point> created;

  /// Column views over this object (valid while it lives).
  [[nodiscard]] event_columns columns() const;
};

/// Simulates histories through `f` (Won and Lost are its first won and lost names).
/// Throws invalid_options when shapes or probabilities are inconsistent.
[[nodiscard]] simulated_events simulate(const funnel& f, const simulation_spec& spec);

} // namespace smartfunnel
