#pragma once
/// \file stage_estimate.hpp
/// Censoring-aware estimates for one open stage (of one group): Kaplan-Meier all-cause exit,
/// Aalen-Johansen cumulative incidence per destination, transition probabilities with the
/// unresolved mass, the naive closed-only estimate, and the smoothed (posterior) row with intervals.

#include "smartfunnel/fit_statistics.hpp"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace smartfunnel {

struct stage_estimate {
  // Curves at the distinct durations (ticks) of the cell, ascending.
  std::vector<std::int64_t> duration;
  std::vector<double> at_risk;   ///< weighted number at risk n(t)
  std::vector<double> survival;  ///< Kaplan-Meier S(t): still in the stage after t
  std::vector<double> incidence; ///< rows x n_codes: Aalen-Johansen F_k(t)

  // Per destination code (funnel.n_codes() entries; the stage itself is always 0).
  std::vector<double> p;            ///< F_k(tau) / (1 - S(tau)); NaN when there is no exit
  std::vector<double> naive;        ///< closed-only d_k / sum d (weighted); NaN when no exit
  std::vector<std::int64_t> exits;  ///< raw exit counts
  std::vector<double> mean_sojourn; ///< mean ticks in the stage given exit to k (NaN if none)
  std::vector<double> alpha;        ///< Dirichlet posterior parameters (empty when unsmoothed)
  std::vector<double> probability;  ///< the row the chain uses: posterior mean, or p when prior 0
  std::vector<double> low, high;    ///< interval of each probability at options.level

  std::int64_t n_stays = 0;         ///< stays that entered the stage (raw)
  std::int64_t n_exits = 0;         ///< of which exited (raw)
  std::int64_t n_censored = 0;      ///< of which still in the stage at as_of (raw)
  double unresolved = 1.0;          ///< S(tau): mass whose destination the data cannot tell yet
  double effective_n = 0.0;         ///< Kish effective number of exits under the IPCW weights
  double concentration = 0.0;       ///< prior concentration applied to this row
  bool insufficient_history = true; ///< fewer than min_exits raw exits
  bool unresolved_high = false;     ///< unresolved above options.unresolved_threshold

  [[nodiscard]] std::size_t n_codes() const noexcept { return p.size(); }
  /// First duration t with S(t) <= 1 - q, in ticks; NaN when the curve never gets there.
  [[nodiscard]] double quantile(double q) const;
  /// Quantile of the sojourn given exit to destination k: the first t with
  /// F_k(t) / F_k(tau) >= q, in ticks; NaN when nothing exits to k.
  [[nodiscard]] double destination_quantile(std::size_t k, double q) const;
  /// S just before tick t (1 for t <= first duration).
  [[nodiscard]] double survival_before(std::int64_t t) const;
  /// F_k just before tick t.
  [[nodiscard]] double incidence_before(std::size_t k, std::int64_t t) const;
  /// Weighted number of stays at risk at tick t (duration >= t): the count without decay weights.
  [[nodiscard]] double at_risk_at(std::int64_t t) const;
};

/// Kaplan-Meier / Aalen-Johansen estimates of one cell (no prior yet). Exits count before
/// censorings at tied durations.
[[nodiscard]] stage_estimate estimate_stage(const stage_counts& counts, std::size_t n_codes,
                                            const fit_options& options);

/// Applies a Dirichlet prior with the given mean (summing to 1 over feasible destinations) and
/// concentration, updated with the effective counts effective_n * p, and sets probability/low/high.
/// With concentration 0 the row stays unsmoothed and intervals are Wilson intervals on effective_n.
void apply_prior(stage_estimate& e, const std::vector<double>& mean, double concentration, double level);

} // namespace smartfunnel
