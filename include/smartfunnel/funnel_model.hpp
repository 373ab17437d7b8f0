#pragma once
/// \file funnel_model.hpp
/// fit(log, options) -> funnel_model: the fitted, immutable model of a funnel (and of each group),
/// with transition probabilities, win probabilities, expected visits and time to close.

#include "smartfunnel/absorbing_chain.hpp"
#include "smartfunnel/event_log.hpp"
#include "smartfunnel/fit_options.hpp"
#include "smartfunnel/fit_statistics.hpp"
#include "smartfunnel/semi_markov.hpp"
#include "smartfunnel/stage_estimate.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace smartfunnel {

namespace detail {
struct serialization_access; // reads and writes private members (smartfunnel/serialization/)
} // namespace detail

/// The fitted rows of one group (or of the whole funnel) and their absorbing-chain solution.
struct group_fit {
  std::vector<std::string> key;       ///< group values per level; empty for the whole funnel
  std::size_t level = 0;              ///< 0: whole funnel; 1: first grouping column; ...
  std::size_t parent = 0;             ///< index of the parent group (itself for the whole funnel)
  std::vector<stage_estimate> stages; ///< per open stage
  chain_result chain;
  std::vector<double> win_low, win_high; ///< interval of chain.win at options.level

  /// Row-major n_open x (n_open + 2) matrix of the smoothed rows (open stages, Won, Lost).
  [[nodiscard]] std::vector<double> transition_matrix(const funnel& f) const;
  [[nodiscard]] bool insufficient_history() const;
};

class funnel_model {
public:
  /// Derives every estimate from sufficient statistics (merged or not).
  static funnel_model from_statistics(fit_statistics stats);

  [[nodiscard]] const smartfunnel::funnel& funnel() const noexcept { return stats_.funnel; }
  [[nodiscard]] const fit_options& options() const noexcept { return stats_.options; }
  [[nodiscard]] time_point as_of() const noexcept { return *stats_.options.as_of; }
  [[nodiscard]] const fit_statistics& statistics() const noexcept { return stats_; }

  /// The whole funnel (team level).
  [[nodiscard]] const group_fit& overall() const noexcept { return fits_.front(); }
  /// Every fitted row set: [0] the whole funnel, then level 1 groups, then level 2...
  [[nodiscard]] std::span<const group_fit> groups() const noexcept { return fits_; }
  /// Index of a group by key (one value per level; a prefix addresses an outer level).
  [[nodiscard]] std::optional<std::size_t> find_group(const std::vector<std::string>& key) const;

  /// P(eventually won) for a deal in open stage `stage` that has already spent `age_ticks` ticks
  /// there: the destination mix of the semi-Markov kernel conditioned on that age (in whole steps
  /// of the default grid, see grid_ticks()), through the chain. At age 0 it is the stage's win
  /// probability B.
  [[nodiscard]] double p_win(stage_code stage, double age_ticks, std::size_t group = 0) const;
  /// Vectorised p_win; codes that are not open stages give NaN, terminal Won 1 and Lost 0.
  void p_win(std::span<const std::int32_t> stage, std::span<const double> age_ticks, std::span<double> out,
             std::size_t group = 0) const;
  /// Time-bounded, vectorised: P(won within horizon_ticks[i] ticks from now), by the recursion on
  /// a grid of `grid_ticks` ticks (0: the default grid, one day or the tick when coarser). Ages
  /// and horizons are taken to whole grid steps (floored): a deal a steps old is won within h
  /// steps. A NaN horizon means no bound (eventually won). Terminal Won gives 1 and Lost 0
  /// whatever the horizon. Throws invalid_options past semi_markov::max_horizon_steps steps.
  void p_win(std::span<const std::int32_t> stage, std::span<const double> age_ticks,
             std::span<const double> horizon_ticks, std::span<double> out, std::size_t group = 0,
             std::int64_t grid_ticks = 0) const;
  /// Ticks in one step of the default grid of the time-bounded probabilities.
  [[nodiscard]] std::int64_t grid_ticks() const {
    return semi_markov::default_grid_ticks(options().tick_seconds);
  }
  /// The semi-Markov process of a group (kernels per stage, grid recursion, default grid).
  [[nodiscard]] const semi_markov& process(std::size_t group = 0) const { return processes_.at(group); }

  /// Merges models fitted on disjoint sets of opportunities (same funnel and options).
  friend funnel_model merge(const funnel_model& a, const funnel_model& b);

private:
  friend struct detail::serialization_access;
  explicit funnel_model(fit_statistics s) : stats_(std::move(s)) {}
  void derive();

  fit_statistics stats_;
  std::vector<group_fit> fits_;
  std::vector<semi_markov> processes_;
};

/// Fits the funnel model of a log as of options.as_of.
[[nodiscard]] funnel_model fit(const event_log& log, const fit_options& options = {});

} // namespace smartfunnel
