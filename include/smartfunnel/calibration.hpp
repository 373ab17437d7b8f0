#pragma once
/// \file calibration.hpp
/// Calibrated intervals: the spread a forecast of independent deals with known probabilities
/// cannot see (a quarter where every deal does better, a market that turns, probabilities learned
/// from a few hundred deals), estimated from the log's own past forecasts. Forecasts of the same
/// length are replayed as of earlier dates whose outcomes are known at as_of (walk-forward, only
/// data before as_of), and the ratio of what was won to what was expected gives a level (the
/// forecast's bias on this log) and the variation of a common factor beyond the model's own:
///
///   total = realised + S * U,   S = level * exp(sigma Z - sigma^2 / 2),   Z ~ N(0, 1),
///
/// U being the uncalibrated uncertain part (open deals and new deals). The moments of the past
/// ratios r_k = actual_k / expected_k give level = sum actual / sum expected and the factor's
/// variance tau^2 = (mean (r_k / level - 1)^2 - mean cv_k^2) / (1 + mean cv_k^2) (cv_k^2 the
/// model's own variance / expected^2 of period k), plus the level's estimation variance over the
/// independent periods; sigma^2 = log(1 + that). When the history is too short the forecast is
/// left as it is and the result says why.

#include "smartfunnel/event_log.hpp"
#include "smartfunnel/fit_options.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace smartfunnel {

struct calibration_options {
  /// Calibrate the forecast's distribution (and its Monte Carlo scenarios) from past periods.
  bool enabled = false;
  /// Past analysis dates every spacing_days days (0: a quarter of the period's length in whole
  /// weeks, at least one week: overlapping periods carry little more), on a grid anchored at the
  /// Unix epoch (so that forecasts and backtests at nearby dates replay the same past dates), the
  /// latest one whose period ends at or before as_of.
  double spacing_days = 0.0;
  /// At most this many past dates (the most recent ones), none more than max_span_periods period
  /// lengths before the latest (their weight would be below 2^-(max_span / half_life)).
  std::size_t max_periods = 52;
  double max_span_periods = 8.0;
  /// Calibrate only with at least this many past periods with a positive expected value, and
  /// dates spanning at least min_independent periods' lengths (overlapping periods are not
  /// independent observations).
  std::size_t min_periods = 5;
  double min_independent = 2.0;
  /// The factor S is integrated on this many equally likely nodes (the distribution becomes
  /// their mixture).
  std::size_t nodes = 48;
  /// Scale the uncertain part by the past ratio of won to expected (the level). Off by default: a
  /// model's bias is seldom stable (a log's first months, before the closed history builds up,
  /// under-forecast what a later fit does not), so the past bias widens the spread instead.
  bool correct_level = false;
  /// Past periods weigh 2^-(age / (half_life_periods * the period's length)): the model's errors
  /// of last quarter say more about this one than those of two years ago (0: equal weights).
  double half_life_periods = 2.0;

  static constexpr std::size_t max_max_periods = 520;
  static constexpr std::size_t max_nodes = 1024;

  /// Throws invalid_options naming the option and its accepted range.
  void validate() const;
};

/// How well forecasts of one kind did on the log, per method (smartfunnel calibrated, smartfunnel
/// uncalibrated, the weighted pipeline, closed-only rates), over past periods whose outcomes are
/// known at as_of.
struct track_record {
  std::vector<std::string> methods;
  std::vector<std::int64_t> periods;
  std::vector<double> coverage_p10_p90; ///< share of periods with P10 <= actual <= P90
  std::vector<double> bias;             ///< mean (expected - actual)
  std::vector<double> relative_bias;    ///< sum (expected - actual) / sum actual (NaN when no wins)
  std::vector<double> pinball;          ///< mean pinball loss over the quantiles 0.1, 0.5, 0.9
  std::vector<double> mae;              ///< mean |expected - actual|
};

/// The calibration of one forecast: what was estimated, from which past periods, and why.
struct forecast_calibration {
  /// "common_factor" (the distribution is the mixture over the factor S) or "none".
  std::string method = "none";
  /// Why: the estimate in words, or why there is none (calibration off, too short a history).
  std::string reason;
  double level = 1.0;          ///< mean of S (observed_level when correct_level, else 1)
  double observed_level = 1.0; ///< sum of what was won / sum of what was expected, past periods
  double tau = 0.0;            ///< sd of S / level beyond the model's own variation (from the ratios)
  double sigma = 0.0;          ///< sd of log S (tau and the level's estimation error)
  double model_cv = 0.0;       ///< root mean cv_k^2 of the past forecasts: the model's own relative spread
  double independent_periods = 0.0; ///< (span of the past dates + period length) / period length
  /// The spread is learned from few periods: sigma includes the factor t_df(0.9) / z(0.9) of a
  /// Student t prediction interval, df = (independent periods, at most the weights' effective
  /// number) - 1, at least 1.
  double degrees_of_freedom = 0.0;
  double small_sample_factor = 1.0;
  /// The past periods replayed (uncalibrated smartfunnel forecasts), most recent first: as_of,
  /// period [start, end), expected and sd of the uncertain part, P10/P50/P90 of the total, what was
  /// won (uncertain part: actual minus the wins already booked at that as_of).
  std::vector<time_point> as_of, start, end;
  std::vector<double> expected, sd, p10, p50, p90, actual;
  /// The past periods' own scores: each period calibrated only from the periods before it.
  track_record record;
};

/// The calibration estimated from past periods (most recent first): expected and variance of the
/// uncertain part, what it brought, and their as_of (seconds). period_seconds is the uncertain
/// part's length. Method "none" with the reason when the history is too short.
[[nodiscard]] forecast_calibration
estimate_calibration(const std::vector<double>& expected, const std::vector<double>& variance,
                     const std::vector<double>& actual, const std::vector<time_point>& as_of,
                     std::int64_t period_seconds, const calibration_options& options);

/// The past analysis dates of a forecast as of `as_of` whose uncertain part lasts period_seconds:
/// the grid points (calibration_spacing apart from the epoch) at or before as_of - period_seconds,
/// most recent first, at most max_periods within max_span_periods lengths, none before `earliest`.
[[nodiscard]] std::vector<time_point> calibration_dates(time_point as_of, std::int64_t period_seconds,
                                                        time_point earliest,
                                                        const calibration_options& options);

/// The spacing of the past dates in seconds (options.spacing_days, or its automatic value).
[[nodiscard]] std::int64_t calibration_spacing(std::int64_t period_seconds,
                                               const calibration_options& options);

/// The factor's node values S_j (equally likely, mean exactly `level`) for sigma.
[[nodiscard]] std::vector<double> calibration_factors(double level, double sigma, std::size_t nodes);

/// half_life="auto": the fit's decay chosen by the log's own walk-forward score. Each candidate
/// half-life is fitted as of past dates (those of the calibration, for a period of horizon_days
/// from each date; only outcomes known at as_of) and its forecast scored by the mean pinball loss
/// of its P10/P50/P90 against what was won; the lowest wins, if it beats no decay by 2% (else no
/// decay is kept: a smaller gain is noise).
struct recency_options {
  /// Candidate half-lives in days; 0 is no decay. Default: none, 30, 60, 90, 180, 365 days.
  std::vector<double> candidates_days = {0.0, 30.0, 60.0, 90.0, 180.0, 365.0};
  std::int64_t horizon_days = 90;
  /// The past dates (spacing, span, min_periods) as for the calibration (enabled is ignored).
  calibration_options dates;
  /// Past forecasts in parallel on this many threads (identical results for any count).
  std::size_t threads = 1;

  void validate() const;
};

struct recency_choice {
  std::vector<double> half_life_days;   ///< the candidates (0: none)
  std::vector<double> pinball;          ///< mean pinball loss over the past periods
  std::vector<double> relative_pinball; ///< pinball / mean actual
  std::vector<double> coverage_p10_p90;
  std::vector<double> bias; ///< mean (expected - actual)
  std::vector<std::int64_t> periods;
  /// Index of the chosen candidate (the first, i.e. none by default, when the history is too
  /// short) and why.
  std::size_t chosen = 0;
  std::string reason;
};

/// Scores each candidate half-life of `base` (its own half_life ignored) on the log's past, as of
/// base.as_of (default: the log's last event). Throws invalid_options for bad options.
[[nodiscard]] recency_choice choose_half_life(const event_log& log, const fit_options& base,
                                              const recency_options& options = {});

} // namespace smartfunnel
