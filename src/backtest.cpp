#include "smartfunnel/backtest.hpp"

#include "smartfunnel/absorbing_chain.hpp"
#include "smartfunnel/detail/calibrate.hpp"
#include "smartfunnel/detail/visible.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

namespace smartfunnel {

namespace {

constexpr double nan = std::numeric_limits<double>::quiet_NaN();
constexpr std::int64_t day_seconds = 86'400;

// floor(a / b) for b > 0.
std::int64_t floor_div(std::int64_t a, std::int64_t b) { return a / b - ((a % b != 0) && (a < 0)); }

// A probability as the baselines use it: NaN 0, +-inf and values outside [0, 1] clipped.
double clean(double p) {
  if (std::isnan(p)) return 0.0;
  return std::clamp(p, 0.0, 1.0);
}

void add_period(backtest_result& r, std::size_t method, const revenue_distribution& dist, double actual,
                std::size_t open_deals) {
  double q[3];
  for (int i = 0; i < 3; ++i) q[i] = dist.quantile(detail::score_levels[i]);
  auto& p = r.periods;
  p.date.push_back(0);
  p.method.push_back(method);
  p.expected.push_back(dist.mean);
  p.p10.push_back(q[0]);
  p.p50.push_back(q[1]);
  p.p90.push_back(q[2]);
  p.actual.push_back(actual);
  p.error.push_back(dist.mean - actual);
  p.covered.push_back(q[0] <= actual && actual <= q[2] ? 1 : 0);
  p.pinball.push_back(detail::pinball_loss(actual, q));
  p.open_deals.push_back(static_cast<std::int64_t>(open_deals));
}

} // namespace

void backtest_options::validate() const {
  if (horizon_days < 1)
    throw invalid_options("horizon_days must be >= 1, got " + std::to_string(horizon_days));
  if (period_start.size() != period_end.size())
    throw invalid_options("period_start and period_end must have the same length, got " +
                          std::to_string(period_start.size()) + " and " + std::to_string(period_end.size()));
  if (!period_start.empty() && period_start.size() != as_of.size())
    throw invalid_options("period_start must have one time per as_of (" + std::to_string(as_of.size()) +
                          "), got " + std::to_string(period_start.size()));
  for (std::size_t i = 0; i < period_start.size(); ++i)
    if (period_end[i] <= period_start[i])
      throw invalid_options("period " + std::to_string(i) + " must end after it starts (period_start " +
                            std::to_string(period_start[i]) + ", period_end " +
                            std::to_string(period_end[i]) + ")");
  if (calibration_bins < 1) throw invalid_options("calibration_bins must be >= 1, got 0");
  if (threads < 1) throw invalid_options("threads must be >= 1, got 0");
  for (std::size_t s = 0; s < ladder.size(); ++s)
    if (!(ladder[s] >= 0.0 && ladder[s] <= 1.0))
      throw invalid_options("ladder[" + std::to_string(s) + "] must be a probability in [0, 1], got " +
                            std::to_string(ladder[s]));
  if (forecast.scenarios != 0)
    throw invalid_options("forecast.scenarios must be 0 in a backtest (its distributions are exact), got " +
                          std::to_string(forecast.scenarios));
  if (!forecast.exact) throw invalid_options("forecast.exact must be true in a backtest");
  fit.validate();
  forecast_options f = forecast;
  f.start = 0;
  f.end = 1;
  try {
    f.validate();
  } catch (const invalid_options& e) {
    throw invalid_options(std::string("forecast.") + e.what());
  }
}

std::vector<double> closed_only_win(const funnel_model& model, std::size_t group) {
  const auto& f = model.funnel();
  const std::size_t n = f.n_open(), w = n + 2;
  const auto& stages = model.groups()[group].stages;
  std::vector<double> p(n * w, 0.0), sojourn(n * w, 0.0);
  std::vector<std::string> names;
  for (std::size_t s = 0; s < n; ++s) {
    names.push_back(f.name_of(static_cast<stage_code>(s)));
    const auto& naive = stages[s].naive;
    double lost = 0.0;
    for (std::size_t k = 0; k < naive.size(); ++k) {
      const double v = naive[k];
      if (k == s || !std::isfinite(v) || v == 0.0) continue;
      const auto c = static_cast<stage_code>(k);
      if (f.is_open(c))
        p[s * w + k] += v;
      else if (f.is_won(c))
        p[s * w + n] += v;
      else
        lost += v;
    }
    // A stage without exits is never won: all of it to Lost, as a row of zeros in (I - Q).
    double used = lost;
    for (std::size_t j = 0; j <= n; ++j) used += p[s * w + j];
    p[s * w + n + 1] = used > 0.0 ? lost : 1.0;
  }
  try {
    return solve_chain(n, p, sojourn, names).win;
  } catch (const singular_chain&) {
    return std::vector<double>(n, nan);
  }
}

period_wins wins_in_period(const event_log& log, time_point start, time_point end, time_point at) {
  const auto& f = log.funnel();
  const auto offsets = log.offsets();
  const auto times = log.times();
  const auto stages = log.stages();
  period_wins out;
  for (std::size_t o = 0; o + 1 < offsets.size(); ++o) {
    const auto b = offsets[o];
    const auto e = detail::visible_end(times, b, offsets[o + 1], at);
    if (e == b || !f.is_won(stages[e - 1])) continue;
    const time_point won_at = times[detail::run_start(stages, b, e - 1)];
    if (won_at < start || won_at >= end) continue;
    const double amt = log.amounts().at(o, won_at).value_or(0.0);
    out.opportunity.push_back(o);
    out.amount.push_back(amt);
    out.total += amt;
  }
  return out;
}

backtest_result score_period(const funnel_model& model, const replayed_period& period,
                             const backtest_options& options) {
  const auto& f = model.funnel();
  const std::size_t n_deals = period.amount.size();
  if (period.stage.size() != n_deals || period.p_win_period.size() != n_deals ||
      period.won.size() != n_deals || (!period.opportunity.empty() && period.opportunity.size() != n_deals))
    throw std::invalid_argument(
        "score_period: stage, p_win_period, won (and opportunity when given) must have "
        "one value per deal (" +
        std::to_string(n_deals) + ")");
  if (period.forecast == nullptr)
    throw std::invalid_argument("score_period: the forecast distribution is required");
  if (!options.ladder.empty() && options.ladder.size() != f.n_open())
    throw invalid_options("ladder has " + std::to_string(options.ladder.size()) +
                          " probabilities but the funnel has " + std::to_string(f.n_open()) + " open stages");
  for (auto s : period.stage)
    if (!f.is_open(s))
      throw std::invalid_argument("score_period: stage code " + std::to_string(s) + " is not open");

  backtest_result r;
  r.methods = {"smartfunnel", "weighted_pipeline", "closed_only"};
  if (!options.ladder.empty()) r.methods.emplace_back("static_ladder");
  r.as_of = {period.as_of};
  r.start = {period.start};
  r.end = {period.end};

  auto add_deals = [&](std::size_t method, std::span<const double> p) {
    auto& d = r.deals;
    d.date.insert(d.date.end(), n_deals, 0);
    d.method.insert(d.method.end(), n_deals, method);
    if (period.opportunity.empty())
      d.opportunity.insert(d.opportunity.end(), n_deals, backtest_result::npos);
    else
      d.opportunity.insert(d.opportunity.end(), period.opportunity.begin(), period.opportunity.end());
    d.p.insert(d.p.end(), p.begin(), p.end());
    d.won.insert(d.won.end(), period.won.begin(), period.won.end());
  };
  add_period(r, 0, *period.forecast, period.actual, n_deals);
  add_deals(0, period.p_win_period);

  // The baselines: a probability per open stage, each deal's that of its stage.
  std::vector<std::vector<double>> per_stage;
  per_stage.push_back(model.overall().chain.win);
  per_stage.push_back(closed_only_win(model));
  if (!options.ladder.empty()) per_stage.push_back(options.ladder);
  std::vector<double> p(n_deals);
  for (std::size_t m = 0; m < per_stage.size(); ++m) {
    for (std::size_t i = 0; i < n_deals; ++i) p[i] = clean(per_stage[m][period.stage[i]]);
    const auto dist = exact_distribution(period.amount, p, period.realised, options.forecast.lattice_cells,
                                         options.forecast.lattice_sd);
    add_period(r, m + 1, dist, period.actual, n_deals);
    add_deals(m + 1, p);
  }
  return r;
}

void append(backtest_result& into, const backtest_result& part) {
  if (into.methods.empty() && into.as_of.empty()) into.methods = part.methods;
  if (into.methods != part.methods)
    throw std::invalid_argument("append: the backtests compare different methods");
  const std::size_t shift = into.as_of.size();
  auto cat = [](auto& a, const auto& b) { a.insert(a.end(), b.begin(), b.end()); };
  cat(into.as_of, part.as_of);
  cat(into.start, part.start);
  cat(into.end, part.end);
  auto& p = into.periods;
  const auto& q = part.periods;
  for (auto d : q.date) p.date.push_back(d + shift);
  cat(p.method, q.method);
  cat(p.expected, q.expected);
  cat(p.p10, q.p10);
  cat(p.p50, q.p50);
  cat(p.p90, q.p90);
  cat(p.actual, q.actual);
  cat(p.error, q.error);
  cat(p.covered, q.covered);
  cat(p.pinball, q.pinball);
  cat(p.open_deals, q.open_deals);
  auto& d = into.deals;
  const auto& e = part.deals;
  d.date.reserve(d.date.size() + e.date.size());
  for (auto x : e.date) d.date.push_back(x + shift);
  cat(d.method, e.method);
  cat(d.opportunity, e.opportunity);
  cat(d.p, e.p);
  cat(d.won, e.won);
}

void finalize(backtest_result& r, std::size_t bins) {
  if (bins < 1) throw invalid_options("calibration_bins must be >= 1, got 0");
  const std::size_t n_methods = r.methods.size();
  backtest_metrics m;
  struct sums {
    double abs_error = 0, ape = 0, error = 0, covered = 0, pinball = 0, brier = 0, log_loss = 0;
    std::int64_t periods = 0, nonzero = 0, deals = 0;
  };
  std::vector<sums> s(n_methods);
  const auto& pr = r.periods;
  for (std::size_t i = 0; i < pr.method.size(); ++i) {
    auto& a = s.at(pr.method[i]);
    a.abs_error += std::abs(pr.error[i]);
    a.error += pr.error[i];
    a.covered += pr.covered[i];
    a.pinball += pr.pinball[i];
    ++a.periods;
    if (pr.actual[i] != 0.0) {
      a.ape += std::abs(pr.error[i]) / pr.actual[i];
      ++a.nonzero;
    }
  }
  const auto& dl = r.deals;
  for (std::size_t i = 0; i < dl.method.size(); ++i) {
    auto& a = s.at(dl.method[i]);
    const double p = std::clamp(dl.p[i], 1e-12, 1.0 - 1e-12), y = dl.won[i];
    a.brier += (p - y) * (p - y);
    a.log_loss += y * std::log(p) + (1.0 - y) * std::log(1.0 - p);
    ++a.deals;
  }
  for (const auto& a : s) {
    const auto np = static_cast<double>(a.periods), nd = static_cast<double>(a.deals);
    m.mae.push_back(a.periods ? a.abs_error / np : nan);
    m.mape.push_back(a.nonzero ? a.ape / static_cast<double>(a.nonzero) : nan);
    m.bias.push_back(a.periods ? a.error / np : nan);
    m.coverage_p10_p90.push_back(a.periods ? a.covered / np : nan);
    m.pinball.push_back(a.periods ? a.pinball / np : nan);
    m.brier.push_back(a.deals ? a.brier / nd : nan);
    m.log_loss.push_back(a.deals ? -a.log_loss / nd : nan);
    m.periods.push_back(a.periods);
    m.deals.push_back(a.deals);
  }
  r.metrics = std::move(m);

  // Calibration: bins of equal width, the edges of numpy's linspace (i * (1 / bins), last 1).
  std::vector<double> edges(bins + 1);
  const double width = 1.0 / static_cast<double>(bins);
  for (std::size_t i = 0; i < bins; ++i) edges[i] = static_cast<double>(i) * width;
  edges[bins] = 1.0;
  struct cell {
    double p = 0, won = 0;
    std::int64_t p_count = 0, won_count = 0, deals = 0;
  };
  std::vector<std::size_t> order; // cells in order of first appearance
  std::vector<std::size_t> slot(n_methods * bins, backtest_result::npos);
  std::vector<cell> cells;
  for (std::size_t i = 0; i < dl.method.size(); ++i) {
    const double p = dl.p[i];
    std::size_t b = bins - 1;
    if (!std::isnan(p)) {
      // Number of inner edges at or below p (numpy.digitize), clipped to the last bin.
      b = static_cast<std::size_t>(std::upper_bound(edges.begin() + 1, edges.end() - 1, p) -
                                   (edges.begin() + 1));
      b = std::min(b, bins - 1);
    }
    auto& k = slot[dl.method[i] * bins + b];
    if (k == backtest_result::npos) {
      k = cells.size();
      cells.emplace_back();
      order.push_back(dl.method[i] * bins + b);
    }
    auto& c = cells[k];
    ++c.deals;
    if (!std::isnan(p)) {
      c.p += p;
      ++c.p_count;
    }
    if (!std::isnan(dl.won[i])) {
      c.won += dl.won[i];
      ++c.won_count;
    }
  }
  backtest_calibration cal;
  for (std::size_t k = 0; k < cells.size(); ++k) {
    const auto method = order[k] / bins, b = order[k] % bins;
    const auto& c = cells[k];
    cal.method.push_back(method);
    cal.low.push_back(edges[b]);
    cal.high.push_back(edges[b + 1]);
    cal.predicted.push_back(c.p_count ? c.p / static_cast<double>(c.p_count) : nan);
    cal.observed.push_back(c.won_count ? c.won / static_cast<double>(c.won_count) : nan);
    cal.deals.push_back(c.deals);
  }
  r.calibration = std::move(cal);
}

backtest_result backtest(const event_log& log, const backtest_options& options) {
  options.validate();
  const auto& f = log.funnel();
  if (!options.ladder.empty() && options.ladder.size() != f.n_open())
    throw invalid_options("ladder has " + std::to_string(options.ladder.size()) +
                          " probabilities but the funnel has " + std::to_string(f.n_open()) + " open stages");
  const std::size_t n = options.as_of.size();
  detail::calibration_cache cache; // past periods shared by the dates' calibrations

  auto one_date = [&](std::size_t i) {
    const time_point t = options.as_of[i];
    time_point start = 0, end = 0;
    if (options.period_start.empty()) {
      start = floor_div(t, day_seconds) * day_seconds;
      end = start + options.horizon_days * day_seconds;
    } else {
      start = options.period_start[i];
      end = options.period_end[i];
    }
    fit_options fo = options.fit;
    fo.as_of = t;
    const auto model = fit(log, fo);
    forecast_options co = options.forecast;
    co.as_of = t;
    co.start = start;
    co.end = end;
    co.scenarios = 0;
    co.threads = 1;
    co.progress = nullptr;
    const bool calibrating = co.calibration.enabled;
    co.calibration.enabled = false;
    auto fc = forecast(model, log, co);
    revenue_distribution uncalibrated;
    if (calibrating) {
      uncalibrated = fc.exact;
      co.calibration = options.forecast.calibration;
      detail::calibrate(fc, model, log, co, &cache);
    }
    // What was won in the period, from the whole log.
    const auto wins = wins_in_period(log, start, end, std::max(t, end - 1));
    std::vector<std::uint8_t> is_won(log.n_opportunities(), 0);
    for (auto o : wins.opportunity) is_won[o] = 1;
    const auto& deals = fc.deals;
    std::vector<double> won(deals.opportunity.size());
    for (std::size_t k = 0; k < won.size(); ++k) won[k] = is_won[deals.opportunity[k]];
    replayed_period p;
    p.as_of = t;
    p.start = start;
    p.end = end;
    p.opportunity = deals.opportunity;
    p.stage = deals.stage;
    p.amount = deals.amount;
    p.p_win_period = deals.p_win_period;
    p.forecast = &fc.exact;
    p.realised = fc.realised;
    p.won = won;
    p.actual = wins.total;
    auto scored = score_period(model, p, options);
    if (calibrating) { // the forecast before calibration, as one more method
      scored.methods.emplace_back("smartfunnel_uncalibrated");
      add_period(scored, scored.methods.size() - 1, uncalibrated, p.actual, deals.opportunity.size());
      auto& d = scored.deals;
      const std::size_t n_deals = deals.opportunity.size();
      d.date.insert(d.date.end(), n_deals, 0);
      d.method.insert(d.method.end(), n_deals, scored.methods.size() - 1);
      d.opportunity.insert(d.opportunity.end(), deals.opportunity.begin(), deals.opportunity.end());
      d.p.insert(d.p.end(), deals.p_win_period.begin(), deals.p_win_period.end());
      d.won.insert(d.won.end(), won.begin(), won.end());
    }
    return scored;
  };

  std::vector<backtest_result> parts(n);
  std::mutex report_mutex;
  std::size_t done = 0;
  std::atomic<bool> stop{false};
  bool cancelled_by_user = false;
  // After a date: the fraction done to progress, never concurrently; false stops the others.
  auto finished = [&] {
    std::lock_guard lock(report_mutex);
    ++done;
    if (options.progress && !cancelled_by_user &&
        !options.progress(static_cast<double>(done) / static_cast<double>(std::max<std::size_t>(1, n)))) {
      cancelled_by_user = true;
      stop = true;
    }
  };
  const std::size_t threads = std::min(options.threads, n);
  if (threads <= 1) {
    for (std::size_t i = 0; i < n && !stop; ++i) {
      parts[i] = one_date(i);
      finished();
    }
  } else {
    std::atomic<std::size_t> next{0};
    std::vector<std::exception_ptr> errors(n);
    {
      std::vector<std::jthread> pool;
      for (std::size_t k = 0; k < threads; ++k)
        pool.emplace_back([&] {
          while (!stop) {
            const std::size_t i = next.fetch_add(1);
            if (i >= n) break;
            try {
              parts[i] = one_date(i);
              finished();
            } catch (...) {
              errors[i] = std::current_exception();
              stop = true;
            }
          }
        });
    }
    for (auto& e : errors)
      if (e) std::rethrow_exception(e);
  }
  if (cancelled_by_user) throw cancelled("backtest cancelled");

  backtest_result out;
  out.methods = {"smartfunnel", "weighted_pipeline", "closed_only"};
  if (!options.ladder.empty()) out.methods.emplace_back("static_ladder");
  if (options.forecast.calibration.enabled) out.methods.emplace_back("smartfunnel_uncalibrated");
  for (const auto& part : parts) append(out, part);
  finalize(out, options.calibration_bins);
  return out;
}

} // namespace smartfunnel
