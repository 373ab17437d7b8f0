#pragma once
/// \file backtest.hpp
/// Walk-forward backtest: the log replayed as of past dates, each date fitted only on what was
/// known then and forecast for the period that follows, scored against what was actually won,
/// beside the baselines a CRM would use (weighted pipeline, closed-only rates, a static ladder).
/// Every method's revenue distribution is the exact distribution of its independent per-deal
/// outcomes, so all are scored the same way. Dates run on threads with identical results for any
/// thread count.

#include "smartfunnel/error.hpp"
#include "smartfunnel/event_log.hpp"
#include "smartfunnel/fit_options.hpp"
#include "smartfunnel/forecast.hpp"
#include "smartfunnel/funnel_model.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <span>
#include <string>
#include <vector>

namespace smartfunnel {

/// Forecast options with Monte Carlo off (scenarios = 0): the backtest's distributions are exact.
inline forecast_options exact_forecast_options() {
  forecast_options o;
  o.scenarios = 0;
  return o;
}

struct backtest_options {
  /// The replayed analysis dates, in the order of the result's rows.
  std::vector<time_point> as_of;
  /// Length of each replayed period in days.
  std::int64_t horizon_days = 90;
  /// The period of each date as instants [start, end), one per as_of (e.g. calendar days in a
  /// time zone, computed by the caller). Both empty: the UTC day rule, [midnight UTC of the
  /// as_of day, that midnight + horizon_days days).
  std::vector<time_point> period_start, period_end;
  /// The fit made at each date (its as_of is set to the date).
  fit_options fit;
  /// The forecast made at each date (smartfunnel method): as_of, start and end are set per date;
  /// stale_after_days, include_arrivals, parameter_draws, grid_days, use_groups, arrivals_* and the
  /// lattice and calibration are used as given (the lattice also for the baselines). The
  /// distributions are exact:
  /// scenarios must be 0, and threads and progress here are not used (see below).
  forecast_options forecast = exact_forecast_options();
  /// Per open stage (funnel order), the static ladder's P(win) in [0, 1]; empty: no static_ladder.
  std::vector<double> ladder;
  /// Bins of equal width on [0, 1] of the calibration table.
  std::size_t calibration_bins = 10;
  /// Dates run in parallel on this many threads (results identical for any count).
  std::size_t threads = 1;
  /// Called with the fraction of dates done (after each date, from the thread that finished it,
  /// never concurrently); return false to cancel (the call then throws cancelled).
  std::function<bool(double)> progress;

  /// Throws invalid_options naming the option when a value is out of range.
  void validate() const;
};

/// One row per (date, method) of a backtest, date-major.
struct backtest_periods {
  std::vector<std::size_t> date, method;
  std::vector<double> expected, p10, p50, p90;
  std::vector<double> actual;        ///< revenue won in the period, from the whole log
  std::vector<double> error;         ///< expected - actual
  std::vector<std::uint8_t> covered; ///< P10 <= actual <= P90
  std::vector<double> pinball;       ///< mean pinball loss over the quantiles 0.1, 0.5, 0.9
  std::vector<std::int64_t> open_deals;
};

/// One row per (date, method, deal open at as_of), in the order of the period rows.
struct backtest_deals {
  std::vector<std::size_t> date, method;
  std::vector<std::size_t> opportunity; ///< dense index into the log (backtest_result::npos: not known)
  std::vector<double> p;                ///< predicted P(won in the period)
  std::vector<double> won;              ///< 1 when won in the period, else 0
};

/// The scores of each method (index into backtest_result::methods).
struct backtest_metrics {
  std::vector<double> mae, mape, bias, coverage_p10_p90, pinball;
  std::vector<double> brier, log_loss; ///< of p clipped to [1e-12, 1 - 1e-12]; NaN without deals
  std::vector<std::int64_t> periods, deals;
};

/// Per (method, bin of p), in order of first appearance in the deal rows.
struct backtest_calibration {
  std::vector<std::size_t> method;
  std::vector<double> low, high; ///< the bin [low, high)
  std::vector<double> predicted; ///< mean p
  std::vector<double> observed;  ///< win rate
  std::vector<std::int64_t> deals;
};

/// Rows of a backtest and the scores per method. `date` indexes as_of/start/end, `method`
/// indexes methods.
struct backtest_result {
  /// Method names, in row order: smartfunnel, weighted_pipeline, closed_only[, static_ladder]
  /// [, smartfunnel_uncalibrated]. With forecast.calibration.enabled, smartfunnel is the
  /// calibrated forecast (each date calibrated from its own past, calibration.hpp) and
  /// smartfunnel_uncalibrated the same forecast before calibration.
  std::vector<std::string> methods;
  /// Per date: the analysis time and the period [start, end).
  std::vector<time_point> as_of, start, end;
  backtest_periods periods;
  backtest_deals deals;
  backtest_metrics metrics;
  backtest_calibration calibration;

  static constexpr std::size_t npos = std::numeric_limits<std::size_t>::max();
};

/// Replays the log as of each options.as_of: fit (options.fit as of the date), forecast of the
/// period (options.forecast), the baselines, what was won in the period from the whole log, and
/// the scores. Throws invalid_options for bad options (named), a ladder that does not have one
/// probability per open stage, and what fit or forecast throw for a date; cancelled when progress
/// returns false.
[[nodiscard]] backtest_result backtest(const event_log& log, const backtest_options& options);

// ---------------------------------------------------------------------------------------------
// The pieces of a backtest, for callers that compute a date's fit and forecast elsewhere (e.g. on
// a cluster): backtest() is finalize(concatenate(score_period(...) per date)).

/// What one replayed date brings: the open deals at as_of with their smartfunnel probabilities and
/// distribution, the wins already booked in the period at as_of, and what happened next.
struct replayed_period {
  time_point as_of = 0, start = 0, end = 0;
  std::span<const std::size_t> opportunity; ///< may be empty (rows get backtest_result::npos)
  std::span<const stage_code> stage;
  std::span<const double> amount;
  std::span<const double> p_win_period;
  const revenue_distribution* forecast = nullptr; ///< the smartfunnel distribution (required)
  double realised = 0.0;                          ///< wins booked in [start, as_of]
  std::span<const double> won;                    ///< per deal: 1 when won in [start, end)
  double actual = 0.0;                            ///< revenue won in [start, end)
};

/// The rows of one date (every method) as a result with one date; metrics and calibration empty.
/// The baselines come from `model` (the fit as of the date); options gives the ladder and lattice.
[[nodiscard]] backtest_result score_period(const funnel_model& model, const replayed_period& period,
                                           const backtest_options& options);

/// Appends the dates of `part` after those of `into` (same methods), renumbering its dates.
void append(backtest_result& into, const backtest_result& part);

/// Computes the metrics and the calibration table (calibration_bins bins) from the rows.
void finalize(backtest_result& result, std::size_t calibration_bins);

/// P(eventually won) per open stage from the naive closed-only rates d_k / sum d of a group,
/// through the absorbing chain (rows without exits count as never won); all NaN when the chain of
/// those rates is singular.
[[nodiscard]] std::vector<double> closed_only_win(const funnel_model& model, std::size_t group = 0);

/// The wins booked in [start, end) as the log stands at `at` (deals whose current stay at `at` is
/// a Won stage entered in the period), with their amounts at the win. The backtest's actual is
/// this at max(as_of, end - 1).
struct period_wins {
  std::vector<std::size_t> opportunity;
  std::vector<double> amount;
  double total = 0.0;
};
[[nodiscard]] period_wins wins_in_period(const event_log& log, time_point start, time_point end,
                                         time_point at);

} // namespace smartfunnel
