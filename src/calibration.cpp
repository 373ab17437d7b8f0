#include "smartfunnel/calibration.hpp"

#include "smartfunnel/backtest.hpp"
#include "smartfunnel/detail/calibrate.hpp"
#include "smartfunnel/detail/random.hpp"
#include "smartfunnel/error.hpp"

#include <boost/math/distributions/normal.hpp>
#include <boost/math/distributions/students_t.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <limits>
#include <numeric>
#include <sstream>
#include <thread>

namespace smartfunnel {

namespace {

constexpr double nan = std::numeric_limits<double>::quiet_NaN();
constexpr std::int64_t day_seconds = 86'400;
using detail::pinball_loss;
constexpr const double (&quantile_levels)[3] = detail::score_levels;

std::string num(double x, int precision = 3) {
  std::ostringstream os;
  os.precision(precision);
  os << x;
  return os.str();
}

std::int64_t floor_div(std::int64_t a, std::int64_t b) { return a / b - ((a % b != 0) && (a < 0)); }

// Sums of one method's scores over the periods it was scored on.
struct record_sums {
  std::int64_t periods = 0;
  double covered = 0, error = 0, actual = 0, pinball = 0, abs_error = 0;
  void add(double expected, const double (&q)[3], double actual_total) {
    ++periods;
    covered += (q[0] <= actual_total && actual_total <= q[2]) ? 1.0 : 0.0;
    error += expected - actual_total;
    actual += actual_total;
    pinball += pinball_loss(actual_total, q);
    abs_error += std::abs(expected - actual_total);
  }
};

void add_record(track_record& r, const std::string& method, const record_sums& s) {
  const auto n = static_cast<double>(s.periods);
  r.methods.push_back(method);
  r.periods.push_back(s.periods);
  r.coverage_p10_p90.push_back(s.periods ? s.covered / n : nan);
  r.bias.push_back(s.periods ? s.error / n : nan);
  r.relative_bias.push_back(s.actual > 0.0 ? s.error / s.actual : nan);
  r.pinball.push_back(s.periods ? s.pinball / n : nan);
  r.mae.push_back(s.periods ? s.abs_error / n : nan);
}

// The first close (won or lost) in the log, or max() when none.
time_point first_close_time(const event_log& log) {
  const auto times = log.times();
  const auto stages = log.stages();
  const auto& funnel = log.funnel();
  time_point first = std::numeric_limits<time_point>::max();
  for (std::size_t i = 0; i < times.size(); ++i)
    if (!funnel.is_open(stages[i])) first = std::min(first, times[i]);
  return first;
}

// Runs body(i) for i in [0, n) on `threads` threads; the first exception (by index) is rethrown.
template <class Body>
void run_indexed(std::size_t n, std::size_t threads, Body&& body) {
  threads = std::min(std::max<std::size_t>(1, threads), n);
  if (threads <= 1) {
    for (std::size_t i = 0; i < n; ++i) body(i);
    return;
  }
  std::atomic<std::size_t> next{0};
  std::vector<std::exception_ptr> errors(n);
  {
    std::vector<std::jthread> pool;
    for (std::size_t t = 0; t < threads; ++t)
      pool.emplace_back([&] {
        for (std::size_t i = next.fetch_add(1); i < n; i = next.fetch_add(1)) try {
            body(i);
          } catch (...) {
            errors[i] = std::current_exception();
          }
      });
  }
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

} // namespace

void calibration_options::validate() const {
  if (!(spacing_days == 0.0 || (spacing_days >= 1.0 && spacing_days <= 3660.0)))
    throw invalid_options("calibration.spacing_days must be 0 (automatic) or in [1, 3660], got " +
                          num(spacing_days, 15));
  if (!(max_span_periods >= 1.0 && max_span_periods <= 1e4))
    throw invalid_options("calibration.max_span_periods must be in [1, 10000], got " +
                          num(max_span_periods, 15));
  if (max_periods > max_max_periods)
    throw invalid_options("calibration.max_periods must be in [0, " + std::to_string(max_max_periods) +
                          "], got " + std::to_string(max_periods));
  if (min_periods < 2)
    throw invalid_options("calibration.min_periods must be >= 2, got " + std::to_string(min_periods));
  if (!(min_independent >= 1.0 && min_independent <= 1e6))
    throw invalid_options("calibration.min_independent must be in [1, 1e6], got " + num(min_independent, 15));
  if (!(half_life_periods >= 0.0 && half_life_periods <= 1e6))
    throw invalid_options("calibration.half_life_periods must be in [0, 1e6], got " +
                          num(half_life_periods, 15));
  if (nodes < 2 || nodes > max_nodes)
    throw invalid_options("calibration.nodes must be in [2, " + std::to_string(max_nodes) + "], got " +
                          std::to_string(nodes));
}

std::int64_t calibration_spacing(std::int64_t period_seconds, const calibration_options& options) {
  constexpr std::int64_t week = 7 * day_seconds;
  if (options.spacing_days > 0.0)
    return std::max<std::int64_t>(1, std::llround(options.spacing_days * day_seconds));
  const auto weeks = std::llround(static_cast<double>(period_seconds) / 4.0 / static_cast<double>(week));
  return std::max<std::int64_t>(1, weeks) * week;
}

std::vector<time_point> calibration_dates(time_point as_of, std::int64_t period_seconds, time_point earliest,
                                          const calibration_options& options) {
  std::vector<time_point> out;
  if (period_seconds <= 0) return out;
  const auto spacing = calibration_spacing(period_seconds, options);
  // The latest grid point whose period [a, a + period_seconds) ends at or before as_of.
  const time_point latest = floor_div(as_of - period_seconds, spacing) * spacing;
  const double span = options.max_span_periods * static_cast<double>(period_seconds);
  for (time_point a = latest; out.size() < options.max_periods && a >= earliest; a -= spacing) {
    if (static_cast<double>(latest - a) > span) break;
    out.push_back(a);
  }
  return out;
}

std::vector<double> calibration_factors(double level, double sigma, std::size_t nodes) {
  std::vector<double> s(std::max<std::size_t>(1, nodes), level);
  if (!(sigma > 0.0) || nodes < 2) return s;
  const boost::math::normal_distribution<double> z;
  double total = 0.0;
  for (std::size_t j = 0; j < nodes; ++j) {
    const double u = (static_cast<double>(j) + 0.5) / static_cast<double>(nodes);
    s[j] = std::exp(sigma * boost::math::quantile(z, u));
    total += s[j];
  }
  const double scale = level * static_cast<double>(nodes) / total; // mean exactly `level`
  for (double& x : s) x *= scale;
  return s;
}

forecast_calibration estimate_calibration(const std::vector<double>& expected,
                                          const std::vector<double>& variance,
                                          const std::vector<double>& actual,
                                          const std::vector<time_point>& as_of, std::int64_t period_seconds,
                                          const calibration_options& options) {
  forecast_calibration c;
  const std::size_t n_all = expected.size();
  std::size_t n = 0;
  time_point first = 0, last = 0;
  auto usable = [&](std::size_t k) {
    return expected[k] > 0.0 && std::isfinite(actual[k]) && variance[k] >= 0.0;
  };
  for (std::size_t k = 0; k < n_all; ++k) {
    if (!usable(k)) continue;
    if (n == 0) first = last = as_of[k];
    first = std::min(first, as_of[k]);
    last = std::max(last, as_of[k]);
    ++n;
  }
  // Recent periods weigh more: weight 2^-(age / (half_life_periods * period length)).
  const double h = options.half_life_periods * static_cast<double>(period_seconds);
  auto weight = [&](std::size_t k) {
    return h > 0.0 ? std::exp2(-static_cast<double>(last - as_of[k]) / h) : 1.0;
  };
  double sum_e = 0, sum_y = 0, sum_v = 0, sum_e2 = 0, sum_w = 0, sum_w2 = 0;
  for (std::size_t k = 0; k < n_all; ++k) {
    if (!usable(k)) continue;
    const double w = weight(k);
    sum_e += w * expected[k];
    sum_y += w * actual[k];
    sum_v += w * variance[k];
    sum_e2 += w * expected[k] * expected[k];
    sum_w += w;
    sum_w2 += w * w;
  }
  const double span = n ? static_cast<double>(last - first) : 0.0;
  c.independent_periods =
      n ? std::min(static_cast<double>(n), 1.0 + span / static_cast<double>(period_seconds)) : 0.0;
  const double days = static_cast<double>(period_seconds) / day_seconds;
  if (n < options.min_periods || c.independent_periods < options.min_independent) {
    c.method = "none";
    c.reason = "too short a history to calibrate: " + std::to_string(n) + " past forecasts of " +
               num(days, 4) + " days with a positive expected value (" + num(c.independent_periods, 2) +
               " periods' lengths apart), need " + std::to_string(options.min_periods) + " spanning " +
               num(options.min_independent, 2) +
               "; the interval assumes independent deals with known probabilities and is likely too narrow";
    return c;
  }
  c.level = options.correct_level ? sum_y / sum_e : 1.0;
  c.observed_level = sum_y / sum_e;
  c.model_cv = std::sqrt(sum_v / sum_e2);
  if (!(sum_y > 0.0)) {
    c.method = "none";
    c.reason = "nothing was won in the " + std::to_string(n) + " past periods of " + num(days, 4) +
               " days where forecasts expected " + num(sum_e, 6) + ": no level to calibrate by";
    c.level = 1.0;
    return c;
  }
  // Moments on the revenue scale (periods weigh by their size, so that a tiny early pipeline that
  // did 10x does not dominate): with Y = S U, E S = level, Var S = level^2 tau^2,
  //   E (Y - level E)^2 = level^2 (V + tau^2 (V + E^2)).
  double ss = 0.0;
  for (std::size_t k = 0; k < n_all; ++k) {
    if (!usable(k)) continue;
    const double r = actual[k] - c.level * expected[k];
    ss += weight(k) * r * r;
  }
  const double tau2 = std::max(0.0, (ss / (c.level * c.level) - sum_v) / (sum_v + sum_e2));
  c.tau = std::sqrt(tau2);
  // The level's own relative variance: Var(sum Y) / (level sum E)^2, the overlapping periods
  // counted as independent_periods observations rather than n.
  const double kish = sum_w * sum_w / sum_w2; // the weights' effective number of periods
  const double level_var = (sum_v + tau2 * (sum_v + sum_e2)) / sum_e2 / std::min(kish, c.independent_periods);
  c.sigma = std::sqrt(std::log1p(tau2 + (options.correct_level ? level_var : 0.0)));
  // A spread estimated from few independent periods is itself uncertain: the range is that of a
  // Student t prediction interval on n - 1 degrees of freedom (n the independent periods, the
  // weights' effective number at most), as a factor on sigma at the P10/P90.
  const double n_eff = std::min(kish, c.independent_periods);
  c.degrees_of_freedom = std::max(1.0, n_eff - 1.0);
  const boost::math::students_t_distribution<double> t(c.degrees_of_freedom);
  const boost::math::normal_distribution<double> z;
  c.small_sample_factor = boost::math::quantile(t, 0.9) / boost::math::quantile(z, 0.9);
  c.sigma *= c.small_sample_factor;
  c.method = "common_factor";
  c.reason = std::to_string(n) + " past forecasts of " + num(days, 4) + " days (" +
             num(c.independent_periods, 2) + " independent, recent ones weighing more): won " +
             num(c.observed_level, 3) + "x what was expected" +
             (options.correct_level ? " (the level applied, with its own uncertainty)"
                                    : " (the level not applied: the spread includes it)") +
             "; a common factor varying by " + num(c.tau, 3) + " (relative sd) beyond the model's own " +
             num(c.model_cv, 3) + ": log sd " + num(c.sigma, 3) + " (x" + num(c.small_sample_factor, 3) +
             " for a spread learned from " + num(n_eff, 3) + " independent periods)";
  return c;
}

revenue_distribution calibrated_distribution(const revenue_distribution& d, double fixed,
                                             const std::vector<double>& factors, std::size_t cells,
                                             double sd) {
  if (factors.empty() || (factors.size() == 1 && factors[0] == 1.0)) return d;
  std::vector<revenue_distribution> parts;
  parts.reserve(factors.size());
  for (double s : factors) {
    revenue_distribution p = d;
    p.origin = fixed + s * (d.origin - fixed);
    p.step = d.step * s;
    p.mean = fixed + s * (d.mean - fixed);
    p.variance = d.variance * s * s;
    p.w1_bound = d.w1_bound * s;
    if (!(p.step > 0.0)) { // s == 0: everything uncertain is lost
      p.origin = fixed;
      p.step = 1.0;
      p.pmf = {1.0};
      p.mean = fixed;
      p.variance = 0.0;
    }
    parts.push_back(std::move(p));
  }
  return mixture(parts, cells, sd);
}

void recency_options::validate() const {
  if (candidates_days.empty()) throw invalid_options("recency: candidates_days is empty");
  for (double d : candidates_days)
    if (!(d >= 0.0 && d <= 36'525.0))
      throw invalid_options(
          "recency: a candidate half-life must be 0 (no decay) or in (0, 36525] days, got " + num(d, 15));
  if (horizon_days < 1 || horizon_days > 3660)
    throw invalid_options("recency: horizon_days must be in [1, 3660], got " + std::to_string(horizon_days));
  if (threads == 0 || threads > forecast_options::max_threads)
    throw invalid_options("recency: threads must be in [1, " + std::to_string(forecast_options::max_threads) +
                          "], got " + std::to_string(threads));
  dates.validate();
}

recency_choice choose_half_life(const event_log& log, const fit_options& base,
                                const recency_options& options) {
  options.validate();
  base.validate();
  const auto times = log.times();
  time_point as_of = base.as_of.value_or(0);
  if (!base.as_of)
    for (auto t : times) as_of = std::max(as_of, t);
  const std::int64_t length = options.horizon_days * day_seconds;
  const time_point first_close = first_close_time(log);
  const auto dates = first_close > std::numeric_limits<time_point>::max() - length
                         ? std::vector<time_point>{}
                         : calibration_dates(as_of, length, first_close + length, options.dates);
  const std::size_t n_c = options.candidates_days.size(), n_d = dates.size();
  struct cell {
    double pinball = 0, covered = 0, error = 0, actual = 0;
  };
  std::vector<cell> cells(n_c * n_d);
  run_indexed(n_c * n_d, options.threads, [&](std::size_t idx) {
    const std::size_t c = idx / n_d, k = idx % n_d;
    const time_point a = dates[k];
    fit_options fo = base;
    fo.as_of = a;
    fo.draws = 0; // the posterior draws serve the win probabilities' intervals, not the forecast
    const double h = options.candidates_days[c];
    fo.half_life_seconds = h > 0.0 ? std::optional<double>(h * day_seconds) : std::nullopt;
    const auto m = fit(log, fo);
    forecast_options f;
    f.as_of = a;
    f.start = a;
    f.end = a + length;
    f.scenarios = 0;
    const auto fc = forecast(m, log, f);
    const double actual = wins_in_period(log, f.start, f.end, f.end - 1).total;
    double q[3];
    for (int i = 0; i < 3; ++i) q[i] = fc.exact.quantile(quantile_levels[i]);
    cells[idx] = {pinball_loss(actual, q), (q[0] <= actual && actual <= q[2]) ? 1.0 : 0.0,
                  fc.exact.mean - actual, actual};
  });
  recency_choice r;
  std::size_t none = 0; // the candidate without decay (the first one when none is listed)
  for (std::size_t c = 0; c < n_c; ++c)
    if (options.candidates_days[c] == 0.0) {
      none = c;
      break;
    }
  for (std::size_t c = 0; c < n_c; ++c) {
    double p = 0, cov = 0, err = 0, act = 0;
    for (std::size_t k = 0; k < n_d; ++k) {
      const auto& x = cells[c * n_d + k];
      p += x.pinball;
      cov += x.covered;
      err += x.error;
      act += x.actual;
    }
    const double n = static_cast<double>(n_d);
    r.half_life_days.push_back(options.candidates_days[c]);
    r.pinball.push_back(n_d ? p / n : nan);
    r.relative_pinball.push_back(act > 0.0 ? p / act : nan);
    r.coverage_p10_p90.push_back(n_d ? cov / n : nan);
    r.bias.push_back(n_d ? err / n : nan);
    r.periods.push_back(static_cast<std::int64_t>(n_d));
  }
  auto label = [](double d) { return d > 0.0 ? num(d, 6) + " days" : std::string("no decay"); };
  const double span = n_d ? static_cast<double>(dates.front() - dates.back()) : 0.0;
  const double independent = n_d ? 1.0 + span / static_cast<double>(length) : 0.0;
  if (n_d < options.dates.min_periods || independent < options.dates.min_independent) {
    r.chosen = none;
    r.reason = "too short a history to choose: " + std::to_string(n_d) + " past forecasts of " +
               std::to_string(options.horizon_days) + " days (" + num(independent, 2) +
               " periods' lengths), need " + std::to_string(options.dates.min_periods) + " spanning " +
               num(options.dates.min_independent, 2) + "; kept " + label(options.candidates_days[none]);
    return r;
  }
  std::size_t best = none;
  for (std::size_t c = 0; c < n_c; ++c)
    if (r.pinball[c] < r.pinball[best]) best = c;
  // A decay must earn its place: within 2% of no decay's score is noise, and no decay is kept.
  if (best != none && !(r.pinball[best] < 0.98 * r.pinball[none])) {
    r.chosen = none;
    r.reason = label(options.candidates_days[none]) + ": no candidate beats it by 2% over " +
               std::to_string(n_d) + " past forecasts of " + std::to_string(options.horizon_days) +
               " days (best " + label(options.candidates_days[best]) + ", mean pinball " +
               num(r.pinball[best], 6) + " against " + num(r.pinball[none], 6) + ")";
    return r;
  }
  r.chosen = best;
  r.reason =
      label(options.candidates_days[best]) + ": the lowest mean pinball loss of " + std::to_string(n_d) +
      " past forecasts of " + std::to_string(options.horizon_days) + " days (" + num(r.pinball[best], 6) +
      (best == none
           ? ""
           : ", against " + num(r.pinball[none], 6) + " with " + label(options.candidates_days[none])) +
      ")";
  return r;
}

namespace detail {

void calibrate(forecast_result& out, const funnel_model& model, const event_log& log,
               const forecast_options& options, calibration_cache* cache) {
  auto& c = out.calibration;
  const auto& co = options.calibration;
  const std::int64_t length = out.end - out.as_of; // the uncertain part: [max(start, as_of), end)
  const std::int64_t offset = std::max<std::int64_t>(0, out.start - out.as_of);
  if (length <= 0 || offset >= length) {
    c.method = "none";
    c.reason = "the period is over at as_of: nothing uncertain to calibrate";
    return;
  }
  // Past dates start a period's length after the log's first close (won or lost): before it a fit
  // has no closed history and expects nothing, which says nothing about a fit of today (an export's
  // first months look like that).
  const time_point first_close = first_close_time(log);
  const auto dates = first_close > std::numeric_limits<time_point>::max() - length
                         ? std::vector<time_point>{}
                         : calibration_dates(out.as_of, length, first_close + length, co);

  // The past forecasts, uncalibrated, each with its own fit as of its date (threads: dates in
  // parallel, results in date order whatever the count).
  std::vector<past_period> rows(dates.size());
  backtest_options bo;
  bo.forecast = options;
  bo.forecast.scenarios = 0;
  auto one = [&](std::size_t k) {
    const time_point a = dates[k];
    const calibration_cache::key key{a, offset, length};
    if (cache && cache->find(key, rows[k])) return;
    fit_options fo = model.options();
    fo.as_of = a;
    const auto m = fit(log, fo);
    forecast_options f = options;
    f.calibration.enabled = false;
    f.as_of = a;
    f.start = a + offset;
    f.end = a + length;
    f.scenarios = 0;
    f.exact = true;
    f.threads = 1;
    f.progress = nullptr;
    const auto fc = forecast(m, log, f);
    const auto wins = wins_in_period(log, f.start, f.end, f.end - 1);
    std::vector<std::uint8_t> is_won(log.n_opportunities(), 0);
    for (auto o : wins.opportunity) is_won[o] = 1;
    std::vector<double> won(fc.deals.opportunity.size());
    for (std::size_t i = 0; i < won.size(); ++i) won[i] = is_won[fc.deals.opportunity[i]];
    replayed_period p;
    p.as_of = a;
    p.start = f.start;
    p.end = f.end;
    p.stage = fc.deals.stage;
    p.amount = fc.deals.amount;
    p.p_win_period = fc.deals.p_win_period;
    p.forecast = &fc.exact;
    p.realised = fc.realised;
    p.won = won;
    p.actual = wins.total;
    const auto scored = score_period(m, p, bo);
    auto& r = rows[k];
    r.realised = fc.realised;
    r.expected = fc.exact.mean - fc.realised;
    r.variance = fc.exact.variance;
    r.actual = wins.total - fc.realised;
    for (int i = 0; i < 3; ++i) r.q[i] = fc.exact.quantile(quantile_levels[i]);
    r.exact = fc.exact;
    for (std::size_t m2 = 1; m2 < 3 && m2 < scored.periods.expected.size(); ++m2) {
      r.base_mean[m2 - 1] = scored.periods.expected[m2];
      r.base_q[m2 - 1][0] = scored.periods.p10[m2];
      r.base_q[m2 - 1][1] = scored.periods.p50[m2];
      r.base_q[m2 - 1][2] = scored.periods.p90[m2];
    }
    if (cache) cache->put(key, r);
  };
  run_indexed(dates.size(), options.threads, one);

  std::vector<double> e, v, y;
  for (const auto& r : rows) {
    e.push_back(r.expected);
    v.push_back(r.variance);
    y.push_back(r.actual);
  }
  c = estimate_calibration(e, v, y, dates, length, co);
  for (std::size_t k = 0; k < rows.size(); ++k) {
    c.as_of.push_back(dates[k]);
    c.start.push_back(dates[k] + offset);
    c.end.push_back(dates[k] + length);
    c.expected.push_back(rows[k].expected);
    c.sd.push_back(std::sqrt(rows[k].variance));
    c.p10.push_back(rows[k].q[0]);
    c.p50.push_back(rows[k].q[1]);
    c.p90.push_back(rows[k].q[2]);
    c.actual.push_back(rows[k].actual);
  }

  // The track record: each past period calibrated only from the periods known at its own as_of
  // (dates further back by at least a period's length), beside the uncalibrated forecast and the
  // baselines on the same periods.
  record_sums cal, uncal, base[2];
  for (std::size_t k = 0; k < rows.size(); ++k) {
    const auto& r = rows[k];
    std::vector<double> pe, pv, py;
    std::vector<time_point> pa;
    for (std::size_t j = k + 1; j < rows.size(); ++j)
      if (dates[j] + length <= dates[k]) {
        pe.push_back(rows[j].expected);
        pv.push_back(rows[j].variance);
        py.push_back(rows[j].actual);
        pa.push_back(dates[j]);
      }
    const auto past_cal = estimate_calibration(pe, pv, py, pa, length, co);
    if (past_cal.method == "none") continue;
    const double total = r.actual + r.realised;
    uncal.add(r.expected + r.realised, r.q, total);
    for (int b = 0; b < 2; ++b) base[b].add(r.base_mean[b], r.base_q[b], total);
    const auto factors = calibration_factors(past_cal.level, past_cal.sigma, co.nodes);
    const auto d =
        calibrated_distribution(r.exact, r.realised, factors, options.lattice_cells, options.lattice_sd);
    double q[3];
    for (int i = 0; i < 3; ++i) q[i] = d.quantile(quantile_levels[i]);
    cal.add(d.mean, q, total);
  }
  add_record(c.record, "smartfunnel", cal);
  add_record(c.record, "smartfunnel_uncalibrated", uncal);
  add_record(c.record, "weighted_pipeline", base[0]);
  add_record(c.record, "closed_only", base[1]);

  if (c.method == "none") return;
  const auto factors = calibration_factors(c.level, c.sigma, co.nodes);
  const double fixed = out.realised;
  if (options.exact) {
    out.exact = calibrated_distribution(out.exact, fixed, factors, options.lattice_cells, options.lattice_sd);
    out.exact_pipeline = calibrated_distribution(out.exact_pipeline, fixed, factors, options.lattice_cells,
                                                 options.lattice_sd);
    if (options.include_arrivals)
      out.exact_arrivals = calibrated_distribution(out.exact_arrivals, 0.0, factors, options.lattice_cells,
                                                   options.lattice_sd);
  }
  if (!out.scenario_cents.empty()) {
    // Scenario s takes the factor of its own stream (seed, s): identical for any thread count.
    std::int64_t realised_cents = 0;
    for (double a : out.realised_amount) realised_cents += std::llround(a * 100.0);
    for (std::size_t s = 0; s < out.scenario_cents.size(); ++s) {
      splitmix64 rng(mix(options.seed, 0xca11b7a7eULL, s));
      const double f = c.level * std::exp(c.sigma * normal(rng) - 0.5 * c.sigma * c.sigma);
      const double total = static_cast<double>(realised_cents) +
                           f * static_cast<double>(out.scenario_cents[s] - realised_cents);
      if (!(std::abs(total) < 9.2e18))
        throw invalid_options("scenarios: a calibrated Monte Carlo total is more than int64 cents hold; use "
                              "scenarios=0 or amounts in a larger unit");
      out.scenario_cents[s] = std::llround(total);
      if (s < out.arrival_cents.size())
        out.arrival_cents[s] = std::llround(f * static_cast<double>(out.arrival_cents[s]));
    }
  }
}

} // namespace detail

} // namespace smartfunnel
