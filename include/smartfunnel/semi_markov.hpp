#pragma once
/// \file semi_markov.hpp
/// The semi-Markov process of a fitted funnel on a grid of whole steps (one day by default, or the
/// fit's tick when that is coarser): for each open stage, the joint distribution of (destination,
/// grid steps in the stage) from the same Aalen-Johansen estimates as the fit, aggregated over each
/// step, with a constant-hazard tail beyond the steps the data supports. It drives the
/// time-bounded win probabilities: P(a deal in stage s, already a steps in it, is won within h
/// steps). A step is grid_ticks() ticks of the fit; with a one-day tick, steps are ticks.
///
/// Durations, ages and horizons are taken to steps by flooring (a stay of d ticks lasts d / G whole
/// steps; an age of a ticks is a / G whole steps), the same rounding a fit on a tick of one step
/// makes: histories whose events fall on step boundaries give the same results whatever the tick.

#include "smartfunnel/fit_options.hpp"
#include "smartfunnel/funnel.hpp"

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

namespace smartfunnel {

struct group_fit;

/// The kernel of one open stage on the grid. Destinations are outcome columns: open stages, then
/// Won, Lost.
///
/// P(D = t, K = j) = mass[t * width + j] for t <= supported, D the whole grid steps spent in the
/// stage (the mass of every tick of step t added up); beyond it the remaining mass of each
/// destination, tail_mass[j], leaves at the constant hazard tail_hazard per step:
/// P(D = supported + i, K = j) = tail_mass[j] * hazard * (1 - hazard)^(i - 1), i >= 1.
/// The rest of the mass past `supported`, tail_dead, never leaves (a mixture-cure tail, see
/// dead_share): it is never won, and counts as Lost in the destination totals. Summed over t,
/// destination j has total probability p_j (the smoothed transition probability) but for the
/// dead mass, taken from the destinations in proportion and given to Lost.
/// The kernel is dense in steps only (never in ticks): at most max_kernel_steps rows.
struct stage_kernel {
  std::int64_t supported = -1; ///< last step with at least min_at_risk stays at risk (-1: none)
  std::vector<double> mass;    ///< (supported + 1) x width
  std::vector<double> tail_mass;
  double tail_hazard = 1.0;
  /// Mass past `supported` that never leaves (dead deals): won with probability 0.
  double tail_dead = 0.0;
  /// The dead mass taken from each destination (outcome columns; sums to tail_dead): the
  /// destination totals are p_j - dead_from[j], and Lost gets tail_dead on top.
  std::vector<double> dead_from;
  /// Mixture-cure tail (Farewell 1982; Maller & Zhou 1996), fitted by maximum likelihood to the
  /// stays at risk at step tail_start: a share dead_share of them is dead (never leaves), the rest
  /// leaves at the constant hazard tail_hazard per step. A stay exiting at step k contributes
  /// (1 - pi) h (1 - h)^(k - tail_start), one still open at step k (censored) contributes
  /// pi + (1 - pi) (1 - h)^(k - tail_start + 1). tail_start is half the supported steps, or earlier
  /// so that the window holds the last quarter of the (weighted) exits and at least min_at_risk of
  /// them; fewer than min_at_risk exits in all, or a likelihood-ratio test that does not reject
  /// pi = 0 at options.level: no dead share (pi = 0, h the geometric estimate). dead_low and
  /// dead_high bound the estimate whether or not it is kept.
  double dead_share = 0.0;
  /// Profile-likelihood interval of dead_share at options.level (NaN when not computed).
  double dead_low = std::numeric_limits<double>::quiet_NaN();
  double dead_high = std::numeric_limits<double>::quiet_NaN();
  std::int64_t tail_start = 0; ///< first step of the stays the tail is fitted to
  double tail_stays = 0.0;     ///< (weighted) stays at risk at tail_start
  double tail_exits = 0.0;     ///< of which exited
  /// P(active | still in the stage at the start of step `age` >= tail_start): the posterior share
  /// of stays that will still leave, (1 - pi)(1 - h)^(age - tail_start) over that plus pi.
  [[nodiscard]] double active_share(std::int64_t age) const noexcept;
  /// Destination mix for ages past `supported`: the late exits' mix smoothed toward the row with
  /// min_at_risk pseudo-exits.
  std::vector<double> tail_mix;
  bool defined = false; ///< false for a stage without data (unsmoothed, no exits)
};

/// The kernels of every open stage of one group, with the win probabilities B of its chain.
class semi_markov {
public:
  /// The empirical part of a kernel covers at most this many grid steps (beyond: the tail), and
  /// the recursion reaches at most max_horizon_steps ahead (invalid_options past it): 179 years on
  /// the default one-day grid, whatever the fit's tick.
  static constexpr std::int64_t max_kernel_steps = std::int64_t{1} << 16;
  static constexpr std::int64_t max_horizon_steps = std::int64_t{1} << 16;
  /// The same limits under their former names (a step is a tick with a one-day tick).
  static constexpr std::int64_t max_kernel_ticks = max_kernel_steps;
  static constexpr std::int64_t max_horizon_ticks = max_horizon_steps;

  /// Ticks of `tick_seconds` in a grid step of `days` days: the nearest whole number, at least
  /// one (a grid is never finer than the fit's tick). Throws invalid_options unless
  /// 0 < days <= 366.
  [[nodiscard]] static std::int64_t grid_ticks_for(double days, std::int64_t tick_seconds);
  /// The default grid: one day, or the tick when it is coarser (grid_ticks_for(1, tick)).
  [[nodiscard]] static std::int64_t default_grid_ticks(std::int64_t tick_seconds) {
    return grid_ticks_for(1.0, tick_seconds);
  }

  /// Builds the kernels of a fitted group on a grid of `grid_ticks` ticks (0: the default grid),
  /// adding up the estimates' mass over each step while reading them (no dense per-tick array).
  /// With stale_after_steps, a deal still in a stage at that age (in steps) counts as lost then
  /// (the mass beyond moves to Lost at that step); at most max_kernel_steps. With
  /// dead_intervals, each tail's dead_low / dead_high are computed (profile likelihood).
  static semi_markov from_group(const funnel& f, const group_fit& g, const fit_options& options,
                                std::optional<std::int64_t> stale_after_steps = std::nullopt,
                                std::int64_t grid_ticks = 0, bool dead_intervals = false);

  /// Ticks of the fit in one grid step.
  [[nodiscard]] std::int64_t grid_ticks() const noexcept { return grid_ticks_; }
  /// Whole grid steps in `ticks` ticks (floored; negative and NaN give 0, huge values saturate
  /// at 2^62 so they can still be compared with the limits).
  [[nodiscard]] std::int64_t steps(double ticks) const noexcept;
  [[nodiscard]] std::size_t n_open() const noexcept { return n_open_; }
  [[nodiscard]] std::size_t width() const noexcept { return n_open_ + 2; }
  [[nodiscard]] const stage_kernel& kernel(std::size_t stage) const { return stages_.at(stage); }

  /// Ages and horizons below are in grid steps.
  /// First step of a deal in `stage` at age `age` steps: out[i * width + j] = P(leaves in i steps
  /// from now, to j | still there at age), for i = 0..horizon. The rest leaves after the horizon.
  void first_step(std::size_t stage, std::int64_t age, std::int64_t horizon, std::vector<double>& out) const;

  /// P(destination j | still in `stage` at age `age`), j over outcome columns.
  [[nodiscard]] std::vector<double> destination_given_age(std::size_t stage, std::int64_t age) const;

  /// won[h * n_open + s] = P(won within h steps | just entered s), h = 0..horizon (grid
  /// recursion; moves that take less than a step are solved within the step as a linear system).
  [[nodiscard]] std::vector<double> won_within(std::int64_t horizon) const;

  /// P(won within `horizon` steps) for a deal in `stage` at age `age`, given won_within(horizon).
  [[nodiscard]] double p_win_within(std::size_t stage, std::int64_t age, std::int64_t horizon,
                                    const std::vector<double>& won, std::vector<double>& scratch) const;
  /// P(eventually won) for a deal in `stage` at age `age`: the limit of p_win_within.
  [[nodiscard]] double p_win_ever(std::size_t stage, std::int64_t age) const;

  /// P(eventually won) from each open stage at age 0 (the chain's B).
  [[nodiscard]] const std::vector<double>& win_ever() const noexcept { return win_ever_; }

private:
  std::size_t n_open_ = 0;
  std::int64_t grid_ticks_ = 1;
  std::vector<stage_kernel> stages_;
  std::vector<double> win_ever_;
};

} // namespace smartfunnel
