#pragma once
/// \file semi_markov.hpp
/// The semi-Markov process of a fitted funnel on the tick grid: for each open stage, the joint
/// distribution of (destination, ticks in the stage) from the same Aalen-Johansen estimates as the
/// fit, with a constant-hazard tail beyond the ages the data supports. It drives the time-bounded
/// win probabilities: P(a deal in stage s, already a ticks in it, is won within h ticks).

#include "smartfunnel/fit_options.hpp"
#include "smartfunnel/funnel.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace smartfunnel {

struct group_fit;

/// The kernel of one open stage. Destinations are outcome columns: open stages, then Won, Lost.
///
/// P(D = t, K = j) = mass[t * width + j] for t <= supported; beyond it the remaining mass of each
/// destination, tail_mass[j], leaves at the constant hazard tail_hazard per tick:
/// P(D = supported + i, K = j) = tail_mass[j] * hazard * (1 - hazard)^(i - 1), i >= 1.
/// Summed over t, destination j has total probability p_j, the smoothed transition probability.
struct stage_kernel {
  std::int64_t supported = -1; ///< last tick with at least min_at_risk stays at risk (-1: none)
  std::vector<double> mass;    ///< (supported + 1) x width
  std::vector<double> tail_mass;
  double tail_hazard = 1.0;
  /// Destination mix for ages past `supported`: the late exits' mix smoothed toward the row with
  /// min_at_risk pseudo-exits.
  std::vector<double> tail_mix;
  bool defined = false; ///< false for a stage without data (unsmoothed, no exits)
};

/// The kernels of every open stage of one group, with the win probabilities B of its chain.
class semi_markov {
public:
  /// The empirical part of a kernel covers at most this many ticks (beyond: the tail), and the
  /// recursion reaches at most max_horizon_ticks ahead (invalid_options past it): 179 years in
  /// days, so only a fine tick (seconds) meets the limits.
  static constexpr std::int64_t max_kernel_ticks = std::int64_t{1} << 16;
  static constexpr std::int64_t max_horizon_ticks = std::int64_t{1} << 16;

  /// Builds the kernels of a fitted group. With stale_after_ticks, a deal still in a stage at that
  /// age counts as lost then (the mass beyond moves to Lost at that tick).
  static semi_markov from_group(const funnel& f, const group_fit& g, const fit_options& options,
                                std::optional<std::int64_t> stale_after_ticks = std::nullopt);

  [[nodiscard]] std::size_t n_open() const noexcept { return n_open_; }
  [[nodiscard]] std::size_t width() const noexcept { return n_open_ + 2; }
  [[nodiscard]] const stage_kernel& kernel(std::size_t stage) const { return stages_.at(stage); }

  /// First step of a deal in `stage` at age `age` ticks: out[i * width + j] = P(leaves in i ticks
  /// from now, to j | still there at age), for i = 0..horizon. The rest leaves after the horizon.
  void first_step(std::size_t stage, std::int64_t age, std::int64_t horizon, std::vector<double>& out) const;

  /// P(destination j | still in `stage` at age `age`), j over outcome columns.
  [[nodiscard]] std::vector<double> destination_given_age(std::size_t stage, std::int64_t age) const;

  /// won[h * n_open + s] = P(won within h ticks | just entered s), h = 0..horizon (day-grid
  /// recursion; moves of zero ticks are solved within the tick as a linear system).
  [[nodiscard]] std::vector<double> won_within(std::int64_t horizon) const;

  /// P(won within `horizon` ticks) for a deal in `stage` at age `age`, given won_within(horizon).
  [[nodiscard]] double p_win_within(std::size_t stage, std::int64_t age, std::int64_t horizon,
                                    const std::vector<double>& won, std::vector<double>& scratch) const;
  /// P(eventually won) for a deal in `stage` at age `age`: the limit of p_win_within.
  [[nodiscard]] double p_win_ever(std::size_t stage, std::int64_t age) const;

  /// P(eventually won) from each open stage at age 0 (the chain's B).
  [[nodiscard]] const std::vector<double>& win_ever() const noexcept { return win_ever_; }

private:
  std::size_t n_open_ = 0;
  std::vector<stage_kernel> stages_;
  std::vector<double> win_ever_;
};

} // namespace smartfunnel
