#pragma once
/// \file forecast.hpp
/// Forecast of the revenue won in a period from the open pipeline: per-deal time-bounded win
/// probabilities from the semi-Markov model, the exact distribution of the total (lattice
/// convolution, mean preserved, error bound reported) and a Monte Carlo whose random streams are
/// keyed by (seed, scenario, opportunity id), so results never depend on threads or partitioning.

#include "smartfunnel/calibration.hpp"
#include "smartfunnel/error.hpp"
#include "smartfunnel/event_log.hpp"
#include "smartfunnel/funnel_model.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace smartfunnel {

struct forecast_options {
  /// Analysis time (default: the model's as_of; earlier than the model's as_of is an error).
  std::optional<time_point> as_of;
  /// The period as instants [start, end): callers turn calendar days in a time zone into these.
  time_point start = 0;
  time_point end = 0;
  /// A deal still in a stage this many days after entering it counts as lost then (whole grid
  /// steps: floor(days / step)).
  std::optional<double> stale_after_days;
  /// Step of the grid the time-bounded recursion runs on, in days, rounded to whole ticks of the
  /// fit (at least one). Default: one day, or the fit's tick when it is coarser. Whatever the
  /// fit's tick, the kernels are the fit's estimates added up over each step, deal ages and the
  /// period bounds are whole steps from as_of, and the recursion reaches at most
  /// semi_markov::max_horizon_steps steps. A finer grid (e.g. 1/24: hours) with a fine tick
  /// rounds durations less (moves faster than a step count as taking none) at the cost of
  /// (steps)^2 work; a coarser one speeds up very long periods.
  std::optional<double> grid_days;
  /// Score each deal with its own group's model (the deepest fitted group it belongs to).
  bool use_groups = true;
  /// Exact distribution: cells of the lattice over mean +- lattice_sd standard deviations.
  bool exact = true;
  std::size_t lattice_cells = 1 << 12;
  double lattice_sd = 8.0;
  /// Monte Carlo: number of scenarios (0: none), seed, threads (results identical for any count).
  std::size_t scenarios = 10'000;
  std::uint64_t seed = 0;
  std::size_t threads = 1;
  /// Wins from deals not created yet: compound Poisson from the creation rate over the last
  /// arrivals_lookback_days before as_of (per owner or attribute value with arrivals_by), carried
  /// through the same time-bounded model from each deal's entry stage. A new deal that wins is
  /// valued like the deals won in the lookback (their amounts at the win, equal weights), since
  /// exports that record lost deals at 0, or deals re-priced before they close, make the amounts
  /// at creation a poor guide to what a win brings; a group with fewer than arrivals_min_wins
  /// such wins falls back to the amounts at entry of the deals created in the lookback.
  bool include_arrivals = true;
  double arrivals_lookback_days = 180.0;
  std::string arrivals_by; ///< "" (one rate), "owner" or an attribute name
  std::size_t arrivals_min_wins = 10;
  /// The creation rate is the level at as_of of a log-linear trend fitted (Poisson maximum
  /// likelihood) to the creation times in the lookback when the trend is at least two standard
  /// errors from none, else the flat count over the lookback; the level is not extrapolated past
  /// as_of. A growing pipeline's average over the lookback under-counts the deals to come.
  bool arrivals_trend = true;
  /// Parameter uncertainty: this many posterior draws of the model's rows and creation rates
  /// (0: the point estimates only). Monte Carlo scenario s uses draw s % parameter_draws; the
  /// exact distribution becomes the mixture over the draws.
  std::size_t parameter_draws = 0;
  /// Calibrated intervals from the log's own past forecasts (calibration.hpp); off by default in
  /// C++, on by default in Python's sf.forecast.
  calibration_options calibration;
  /// Called with the fraction done; return false to cancel (the call then throws cancelled).
  std::function<bool(double)> progress;

  /// Limits validate() enforces, far beyond what a forecast needs, so that a mistyped option is
  /// an error instead of minutes of work or unbounded memory (docs/guide/forecast.md).
  static constexpr std::size_t max_lattice_cells = std::size_t{1} << 16;
  static constexpr double max_lattice_sd = 64.0;
  static constexpr std::size_t max_scenarios = 10'000'000;
  static constexpr std::size_t max_threads = 256;
  static constexpr std::size_t max_parameter_draws = 10'000;
  /// Open deals times parameter_draws: the per-draw probabilities held at once (8 bytes each).
  static constexpr std::size_t max_draw_values = 100'000'000;
  static constexpr double max_arrivals_lookback_days = 3'652'425.0; // 10,000 years

  /// Throws invalid_options naming the option and its accepted range.
  void validate() const;
};

/// The distribution of a total on a lattice: P(total = origin + i * step) = pmf[i].
struct revenue_distribution {
  double origin = 0.0;
  double step = 1.0;
  std::vector<double> pmf;
  double mean = 0.0;           ///< exact mean of the total (before truncation)
  double variance = 0.0;       ///< exact variance of the total
  double truncated_mass = 0.0; ///< probability mass cut off outside the lattice windows
  double w1_bound = 0.0;       ///< Wasserstein-1 bound of the rounding to the lattice: step/2 * sum p

  /// Smallest lattice value v with P(total <= v) >= q.
  [[nodiscard]] double quantile(double q) const;
  /// P(total >= x).
  [[nodiscard]] double probability_at_least(double x) const;
};

/// A compound Poisson total: a Poisson(rate) number of amounts drawn from `amount` with `weight`.
struct compound_poisson {
  double rate = 0.0;
  std::vector<double> amount;
  std::vector<double> weight; ///< probabilities of the amounts (sum to 1)

  [[nodiscard]] double mean() const noexcept;
  [[nodiscard]] double variance() const noexcept;
};

/// The lattice step of exact_distribution for a total of this variance whose largest uncertain
/// amount (of a deal with 0 < p < 1, or of the compound Poisson part) is max_amount: 2 sd sigma /
/// cells, and never below max_amount / cells, so that no deal's outcome spans more than the
/// lattice (the work and memory stay bounded by `cells`, whatever the probabilities).
[[nodiscard]] double lattice_step(double variance, double max_amount, std::size_t cells, double sd) noexcept;

/// The largest amount lattice_step bounds the step by: of the deals with amount > 0 and
/// 0 < p < 1, and of the compound Poisson part's amounts of positive weight.
[[nodiscard]] double largest_uncertain_amount(std::span<const double> amount, std::span<const double> p,
                                              const compound_poisson* arrivals = nullptr) noexcept;

/// Exact distribution of sum_i amount_i * Bernoulli(p_i) (independent), plus an optional
/// independent compound Poisson part, plus a fixed offset. The lattice spans mean +- sd standard
/// deviations of the total in `cells` cells (a coarser step when one amount is wider than that:
/// lattice_step); each amount is split between its two nearest lattice
/// points so every mean stays exact. Parts are combined by FFT convolution; the compound Poisson
/// part is exp(rate (phi - 1)) by FFT.
[[nodiscard]] revenue_distribution exact_distribution(std::span<const double> amount,
                                                      std::span<const double> p, double offset = 0.0,
                                                      std::size_t cells = 1 << 12, double sd = 8.0,
                                                      const compound_poisson* arrivals = nullptr);

/// exact_distribution on a given lattice step: P(total = origin + i * step) with the origin at
/// offset + the deals that win for sure + an integer number of steps. Computed for disjoint parts
/// of a pipeline with the step of the whole (2 sd sigma / cells, sigma from the sum of the parts'
/// variances), the parts combine by convolve() into the distribution of the whole on the lattice
/// exact_distribution chooses for it (equal up to rounding). A part without uncertainty is a point
/// mass at its fixed total. Throws std::invalid_argument for a step that is not positive and finite,
/// or finer than largest_uncertain_amount / cells (a deal's outcome would span more than the lattice).
[[nodiscard]] revenue_distribution exact_distribution_with_step(std::span<const double> amount,
                                                                std::span<const double> p, double step,
                                                                double offset = 0.0,
                                                                std::size_t cells = 1 << 12, double sd = 8.0,
                                                                const compound_poisson* arrivals = nullptr);

/// The distribution of the sum of two independent totals on the same lattice step (FFT
/// convolution; means, variances, truncated mass and Wasserstein bounds add). A result wider than
/// 4 * cells cells is cut to its mean +- sd standard deviations, as inside exact_distribution.
/// Throws std::invalid_argument when the steps differ (a point mass fits any step).
[[nodiscard]] revenue_distribution convolve(const revenue_distribution& a, const revenue_distribution& b,
                                            std::size_t cells = 1 << 12, double sd = 8.0);

/// Monte Carlo totals in integer cents per scenario: deal i wins in scenario k when the Philox
/// (4x32, 7 rounds) stream keyed by (seed, k, key_i) falls below p_i. Identical for any thread count and any
/// partitioning of the deals (totals add up scenario by scenario). Throws std::overflow_error when
/// the absolute cents of the deals that can win add up to more than an int64 holds (a total could
/// wrap around).
[[nodiscard]] std::vector<std::int64_t> monte_carlo_cents(std::span<const std::int64_t> cents,
                                                          std::span<const double> p,
                                                          std::span<const std::uint64_t> key,
                                                          std::size_t scenarios, std::uint64_t seed,
                                                          std::size_t threads = 1);

/// Monte Carlo with per-draw probabilities: p holds `draws` values per deal (deal-major) and
/// scenario s uses draw s % draws; the random streams are those of monte_carlo_cents.
[[nodiscard]] std::vector<std::int64_t> monte_carlo_cents_draws(std::span<const std::int64_t> cents,
                                                                std::span<const double> p, std::size_t draws,
                                                                std::span<const std::uint64_t> key,
                                                                std::size_t scenarios, std::uint64_t seed,
                                                                std::size_t threads = 1);

/// The distribution of fixed + S * (total - fixed) where S takes each of `factors` with equal
/// probability (the mixture of the scaled distributions): a common factor on the uncertain part of
/// a total whose certain part is `fixed`. One factor of 1 (or none) returns d unchanged.
[[nodiscard]] revenue_distribution calibrated_distribution(const revenue_distribution& d, double fixed,
                                                           const std::vector<double>& factors,
                                                           std::size_t cells = 1 << 12, double sd = 8.0);

/// The equal-weight mixture of distributions, on a lattice of `cells` cells over mean +- sd
/// standard deviations (each part's points split between the two nearest points, means kept).
/// The lattice points are the mixture's mean plus whole steps, from the first step at or below the
/// lowest point of the parts: parts that differ only by negligible cells trimmed from their tails
/// give the same points (the mixture of parts computed in pieces, as on Dask, matches). The step is
/// at least min_step (the parts' lattice_step floor), and at least the parts' span / (4 cells), so
/// the mixture never holds more than about 4 * cells cells.
[[nodiscard]] revenue_distribution mixture(const std::vector<revenue_distribution>& parts,
                                           std::size_t cells = 1 << 12, double sd = 8.0,
                                           double min_step = 0.0);

/// A stable 64-bit key of an opportunity id (FNV-1a of its text), for Monte Carlo streams.
[[nodiscard]] std::uint64_t opportunity_key(std::string_view id) noexcept;

/// Open deals at as_of with their time-bounded probabilities (columns).
struct deal_forecasts {
  std::vector<std::size_t> opportunity; ///< dense index into the log
  std::vector<stage_code> stage;
  std::vector<std::int64_t> age_ticks;
  std::vector<double> amount;       ///< in force at as_of (0 when the log has none)
  std::vector<std::size_t> group;   ///< index of the model group that scored the deal
  std::vector<double> p_win_period; ///< P(won inside [start, end))
  std::vector<double> p_win_ever;   ///< P(eventually won); never below p_win_period
  /// With parameter_draws > 0: P(won inside [start, end)) under each posterior draw, deal-major
  /// (deal i, draw d at i * parameter_draws + d); empty without draws.
  std::vector<double> p_win_period_draws;
};

/// Wins from deals not created yet, per arrivals group ("" when one rate).
struct arrivals_forecast {
  std::vector<std::string> group;
  std::vector<double> created;      ///< deals created in the lookback
  std::vector<double> rate_per_day; ///< creation rate
  /// "trend" (the level at as_of of the fitted trend) or "flat" (created / lookback), and the
  /// trend's log growth per day (0 when flat).
  std::vector<std::string> rate_source;
  std::vector<double> rate_growth_per_day;
  std::vector<double> expected_wins; ///< Poisson mean of new deals won in the period
  std::vector<double> mean_amount;   ///< mean amount of a new deal that wins (of the amounts used)
  std::vector<double> expected;      ///< expected revenue (expected_wins * mean_amount)
  /// Where the amounts come from: "won" (the amounts at the win of the group's deals won in the
  /// lookback) or "created" (too few wins: the amounts at entry of the deals created in the
  /// lookback), and how many amounts were used.
  std::vector<std::string> amount_source;
  std::vector<double> amount_count;
  compound_poisson total; ///< all groups together
  /// With parameter_draws > 0: all groups together under each posterior draw (the creation rates
  /// and the processes of that draw); empty without draws.
  std::vector<compound_poisson> total_draws;
};

struct forecast_result {
  time_point as_of = 0, start = 0, end = 0;
  std::int64_t grid_ticks = 1; ///< ticks of the fit in one step of the recursion's grid
  deal_forecasts deals;
  /// Wins already booked in [start, as_of]: dense opportunity index, amount, time.
  std::vector<std::size_t> realised_opportunity;
  std::vector<double> realised_amount;
  std::vector<time_point> realised_time;
  double realised = 0.0;
  arrivals_forecast arrivals;
  /// Total revenue won in the period: realised + open pipeline (+ arrivals when included), and
  /// each part alone.
  revenue_distribution exact;
  revenue_distribution exact_pipeline;
  revenue_distribution exact_arrivals;
  /// Monte Carlo totals in cents per scenario (realised and arrivals included when asked), and
  /// the arrivals' part alone.
  std::vector<std::int64_t> scenario_cents;
  std::vector<std::int64_t> arrival_cents;
  /// How the distributions and scenarios above were calibrated (method "none": as computed).
  forecast_calibration calibration;

  [[nodiscard]] double expected() const noexcept { return exact.mean; }
};

/// Forecast of the revenue won in [options.start, options.end) from the log's pipeline as of
/// options.as_of. Throws invalid_options for an as_of before the model's, or an empty period.
[[nodiscard]] forecast_result forecast(const funnel_model& model, const event_log& log,
                                       const forecast_options& options);

} // namespace smartfunnel
