// The grid of the time-bounded recursion, whatever the fit's tick: step-aligned histories give the
// same kernels, probabilities and forecast with a tick of one second and of one day; a fine tick
// forecasts a quarter, agrees with a day tick on timestamped data and keeps its kernels small.
#include "test_support.hpp"

#include <smartfunnel/error.hpp>
#include <smartfunnel/forecast.hpp>
#include <smartfunnel/funnel_model.hpp>
#include <smartfunnel/semi_markov.hpp>
#include <smartfunnel/simulate.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace sf = smartfunnel;
using sftest::day;
using sftest::table;

namespace {

constexpr double eps = 1e-12;
constexpr std::int64_t day_s = 86'400;

const sf::funnel& three_stages() {
  static const sf::funnel f({"Qualify", "Demo", "Propose"}, {"Won"}, {"Lost"});
  return f;
}

sf::simulation_spec spec_of(std::uint64_t seed) {
  sf::simulation_spec spec;
  // Rows Qualify, Demo, Propose over Qualify, Demo, Propose, Won, Lost; some fast moves (a mean
  // of half a day), so that stays shorter than a step are common.
  spec.transition = {0, .6, .05, .05, .3, /**/ .1, 0, .6, .05, .25, /**/ 0, .1, 0, .55, .35};
  spec.sojourn_mean_days = {1, 12, 0.5, 20, 25, /**/ 8, 1, 15, 30, 20, /**/ 1, 6, 1, 25, 35};
  spec.n_opportunities = 1500;
  spec.seed = seed;
  return spec;
}

// Every time moved to the midnight (UTC) at or before it: durations become whole days, moves on
// the same day become moves of zero length.
sf::simulated_events at_midnight(sf::simulated_events ev) {
  auto floor_day = [](sf::time_point t) { return t - (((t % day_s) + day_s) % day_s); };
  for (auto& t : ev.time) t = floor_day(t);
  for (auto& t : ev.created) t = floor_day(t);
  for (auto& t : ev.close_date) t = floor_day(t);
  return ev;
}

sf::fit_options options_with_tick(std::int64_t tick, sf::time_point as_of) {
  sf::fit_options o;
  o.tick_seconds = tick;
  o.as_of = as_of;
  o.groups = {"owner"};
  o.draws = 0;
  return o;
}

void expect_near_all(const std::vector<double>& a, const std::vector<double>& b, double tol,
                     const char* what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) || std::isnan(b[i])) {
      EXPECT_EQ(std::isnan(a[i]), std::isnan(b[i])) << what << " [" << i << "]";
      continue;
    }
    EXPECT_NEAR(a[i], b[i], tol) << what << " [" << i << "]";
  }
}

} // namespace

TEST(grid, step_counts_and_limits) {
  EXPECT_EQ(sf::semi_markov::default_grid_ticks(86'400), 1);
  EXPECT_EQ(sf::semi_markov::default_grid_ticks(1), 86'400);
  EXPECT_EQ(sf::semi_markov::default_grid_ticks(3600), 24);
  EXPECT_EQ(sf::semi_markov::default_grid_ticks(7 * 86'400), 1); // a coarser tick is the grid
  EXPECT_EQ(sf::semi_markov::grid_ticks_for(1.0 / 24, 1), 3600);
  EXPECT_EQ(sf::semi_markov::grid_ticks_for(7, 86'400), 7);
  EXPECT_EQ(sf::semi_markov::grid_ticks_for(0.25, 86'400), 1); // never finer than the tick
  EXPECT_THROW((void)sf::semi_markov::grid_ticks_for(0.0, 1), sf::invalid_options);
  EXPECT_THROW((void)sf::semi_markov::grid_ticks_for(std::nan(""), 1), sf::invalid_options);
  EXPECT_THROW((void)sf::semi_markov::grid_ticks_for(400, 1), sf::invalid_options);
}

TEST(grid, fine_tick_kernel_adds_up_each_day) {
  // One stage A; stays of 1.5 d -> Won, 2.2 d -> Lost, 2.9 d -> Won, 4.1 d -> Won, in seconds.
  // On the day grid they last 1, 2, 2 and 4 whole days: the kernel of the day-tick test
  // (semi_markov.kernel_is_the_normalised_aalen_johansen_increments), from a one-second fit.
  const sf::funnel f({"A"}, {"Won"}, {"Lost"});
  table t;
  t.add(1, "A", day(0)).add(1, "Won", day(1, 12));
  t.add(2, "A", day(0)).add(2, "Lost", day(2) + 2 * 8640);
  t.add(3, "A", day(0)).add(3, "Won", day(2) + 9 * 8640);
  t.add(4, "A", day(0)).add(4, "Won", day(4) + 8640);
  sf::fit_options o;
  o.as_of = day(10);
  o.prior = 0.0;
  o.draws = 0;
  o.min_at_risk = 1;
  o.tick_seconds = 1;
  const auto model = sf::fit(t.log(f), o);
  const auto& proc = model.process();
  EXPECT_EQ(proc.grid_ticks(), day_s);
  EXPECT_EQ(model.grid_ticks(), day_s);
  const auto& k = proc.kernel(0);
  ASSERT_EQ(k.supported, 4); // at risk at the start of day 4: the 4.1-day stay
  const std::size_t w = 3;
  ASSERT_EQ(k.mass.size(), 5 * w); // five days, not 4.1 * 86400 ticks
  EXPECT_NEAR(k.mass[1 * w + 1], 0.25, eps);
  EXPECT_NEAR(k.mass[2 * w + 1], 0.25, eps);
  EXPECT_NEAR(k.mass[2 * w + 2], 0.25, eps);
  EXPECT_NEAR(k.mass[4 * w + 1], 0.25, eps);
  const auto won = proc.won_within(5);
  const std::vector<double> want{0.0, 0.25, 0.5, 0.5, 0.75, 0.75};
  for (std::size_t h = 0; h < want.size(); ++h) EXPECT_NEAR(won[h], want[h], eps) << h;

  // funnel_model::p_win takes ticks and floors them to days: a deal 2.5 days old (in A since at
  // least day 2: stays 2.2 -> Lost, 2.9 -> Won, 4.1 -> Won) is won within 1.9 days (one whole day,
  // to day 3 of its stay) with 1/3, within 2 days with 2/3 (by day 4).
  const std::vector<std::int32_t> stage{0, 0, 0, 0};
  const std::vector<double> age{2.5 * day_s, 2.5 * day_s, 2.5 * day_s, 0.0};
  const std::vector<double> horizon{1.9 * day_s, 2.0 * day_s, std::nan(""), 90.0 * day_s};
  std::vector<double> out(4);
  model.p_win(stage, age, horizon, out);
  EXPECT_NEAR(out[0], 1.0 / 3, eps);
  EXPECT_NEAR(out[1], 2.0 / 3, eps);
  EXPECT_NEAR(out[2], 2.0 / 3, eps); // eventually
  EXPECT_NEAR(out[3], 0.75, eps);    // 90 days: 7.8 M ticks, no longer refused

  // A grid of half a day: the stays last 3, 4, 5 and 8 half days; within 2 days (4 steps) from
  // entry only the 1.5-day win is done (the day grid counted the 2.9-day win as 2 days).
  std::vector<double> one(1);
  model.p_win(std::vector<std::int32_t>{0}, std::vector<double>{0.0}, std::vector<double>{2.0 * day_s}, one,
              0, day_s / 2);
  EXPECT_NEAR(one[0], 0.25, eps);
  model.p_win(std::vector<std::int32_t>{0}, std::vector<double>{0.0}, std::vector<double>{2.0 * day_s}, one);
  EXPECT_NEAR(one[0], 0.5, eps);
}

TEST(grid, moves_within_a_step_are_solved_within_the_step) {
  // A -> B after 3 hours, B -> Won after 5 hours: on the day grid both take no whole day, so a
  // deal entering A is won within day 0 (the linear system of zero-step moves).
  const sf::funnel f({"A", "B"}, {"Won"}, {"Lost"});
  table t;
  for (int i = 0; i < 4; ++i) {
    const auto o = static_cast<std::int64_t>(i);
    t.add(o, "A", day(i)).add(o, "B", day(i, 3));
    t.add(o, "Won", day(i, 8));
  }
  sf::fit_options o;
  o.as_of = day(10);
  o.prior = 0.0;
  o.draws = 0;
  o.min_at_risk = 1;
  o.tick_seconds = 1;
  const auto model = sf::fit(t.log(f), o);
  const auto won = model.process().won_within(2);
  EXPECT_NEAR(won[0 * 2 + 0], 1.0, eps); // from A, within step 0
  EXPECT_NEAR(won[0 * 2 + 1], 1.0, eps); // from B
  // On an hourly grid it takes 8 hours from A and 5 from B.
  std::vector<double> out(2);
  const std::vector<std::int32_t> st{0, 0};
  model.p_win(st, std::vector<double>{0, 0}, std::vector<double>{7 * 3600.0, 8 * 3600.0}, out, 0, 3600);
  EXPECT_NEAR(out[0], 0.0, eps);
  EXPECT_NEAR(out[1], 1.0, eps);
}

TEST(grid, midnight_histories_give_the_same_results_with_a_one_second_and_a_one_day_tick) {
  const auto spec = spec_of(5);
  const auto ev = at_midnight(sf::simulate(three_stages(), spec));
  const auto log = sf::event_log::from_columns(three_stages(), ev.columns());
  const auto fine = sf::fit(log, options_with_tick(1, spec.as_of));
  const auto days = sf::fit(log, options_with_tick(day_s, spec.as_of));
  ASSERT_EQ(fine.groups().size(), days.groups().size());
  ASSERT_GT(fine.groups().size(), 3u);
  const std::size_t n = three_stages().n_open();
  for (std::size_t g = 0; g < fine.groups().size(); ++g) {
    const auto& a = fine.process(g);
    const auto& b = days.process(g);
    EXPECT_EQ(a.grid_ticks(), day_s);
    EXPECT_EQ(b.grid_ticks(), 1);
    for (std::size_t s = 0; s < n; ++s) {
      const auto& ka = a.kernel(s);
      const auto& kb = b.kernel(s);
      EXPECT_EQ(ka.supported, kb.supported) << g << "/" << s;
      expect_near_all(ka.mass, kb.mass, eps, "mass");
      expect_near_all(ka.tail_mass, kb.tail_mass, eps, "tail_mass");
      expect_near_all(ka.tail_mix, kb.tail_mix, eps, "tail_mix");
      EXPECT_NEAR(ka.tail_hazard, kb.tail_hazard, eps);
    }
    expect_near_all(a.won_within(120), b.won_within(120), eps, "won_within");
  }
  // Some stays end on the day they start (zero-step moves: Qualify -> Demo on day 0).
  EXPECT_GT(days.process().kernel(0).mass[1], 0.0);

  // Time-bounded probabilities through funnel_model::p_win, ages and horizons in each fit's ticks
  // (fractional days floor to whole days on both).
  std::vector<std::int32_t> stage;
  std::vector<double> age_days, horizon_days;
  for (std::int32_t s = 0; s < static_cast<std::int32_t>(n); ++s)
    for (double a : {0.0, 3.5, 17.0, 45.0, 200.0})
      for (double h : {0.0, 1.0, 29.9, 90.0, 400.0}) {
        stage.push_back(s);
        age_days.push_back(a);
        horizon_days.push_back(h);
      }
  auto scaled = [](std::vector<double> v, double k) {
    for (double& x : v) x *= k;
    return v;
  };
  std::vector<double> pa(stage.size()), pb(stage.size());
  fine.p_win(stage, scaled(age_days, day_s), scaled(horizon_days, day_s), pa, 1);
  days.p_win(stage, age_days, horizon_days, pb, 1);
  expect_near_all(pa, pb, eps, "p_win");

  // The forecast: a quarter from as_of, with wins booked in the ten days before it, arrivals by
  // owner, a stale policy, and parameter draws.
  sf::forecast_options fo;
  fo.start = spec.as_of - 10 * day_s;
  fo.end = spec.as_of + 90 * day_s;
  fo.stale_after_days = 75.5;
  fo.arrivals_by = "owner";
  fo.scenarios = 2000;
  fo.parameter_draws = 3;
  fo.seed = 11;
  const auto ra = sf::forecast(fine, log, fo);
  const auto rb = sf::forecast(days, log, fo);
  EXPECT_EQ(ra.grid_ticks, day_s);
  EXPECT_EQ(rb.grid_ticks, 1);
  ASSERT_EQ(ra.deals.opportunity, rb.deals.opportunity);
  ASSERT_GT(ra.deals.opportunity.size(), 100u);
  for (std::size_t i = 0; i < ra.deals.age_ticks.size(); ++i)
    EXPECT_EQ(ra.deals.age_ticks[i], rb.deals.age_ticks[i] * day_s);
  expect_near_all(ra.deals.p_win_period, rb.deals.p_win_period, eps, "p_win_period");
  expect_near_all(ra.deals.p_win_ever, rb.deals.p_win_ever, eps, "p_win_ever");
  expect_near_all(ra.deals.p_win_period_draws, rb.deals.p_win_period_draws, eps, "p_win_period_draws");
  expect_near_all(ra.arrivals.rate_per_day, rb.arrivals.rate_per_day, eps, "rate_per_day");
  expect_near_all(ra.arrivals.expected_wins, rb.arrivals.expected_wins, eps, "expected_wins");
  EXPECT_GT(ra.realised, 0.0);
  EXPECT_EQ(ra.realised, rb.realised);
  EXPECT_NEAR(ra.exact.mean, rb.exact.mean, eps * rb.exact.mean);
  EXPECT_NEAR(ra.exact.step, rb.exact.step, eps * rb.exact.step);
  expect_near_all(ra.exact.pmf, rb.exact.pmf, eps, "exact pmf");
  expect_near_all(ra.exact_pipeline.pmf, rb.exact_pipeline.pmf, eps, "pipeline pmf");
  // Monte Carlo: probabilities equal to 1e-12 almost never straddle a uniform.
  std::size_t same = 0;
  for (std::size_t sc = 0; sc < ra.scenario_cents.size(); ++sc)
    same += ra.scenario_cents[sc] == rb.scenario_cents[sc];
  EXPECT_GE(same, ra.scenario_cents.size() - 1);
  EXPECT_EQ(ra.arrival_cents, rb.arrival_cents);
}

TEST(grid, a_one_second_tick_forecasts_a_quarter_like_a_one_day_tick) {
  // Timestamped histories: the one-second fit differs from the day fit only where exits and
  // censorings (at as_of) fall on the same day: the day fit counts the censored stays at risk
  // for those exits, the one-second fit only when they are censored later in the day. With
  // ~n = 300..1500 stays at risk per stage and a few censored stays per day, each daily hazard
  // moves by a relative ~1/n: probabilities by a few 0.001 at most, the expected total by far
  // less than its own uncertainty (the Python test checks both fits against the simulated
  // future).
  const auto spec = spec_of(8);
  const auto ev = sf::simulate(three_stages(), spec);
  const auto log = sf::event_log::from_columns(three_stages(), ev.columns());
  const auto fine = sf::fit(log, options_with_tick(1, spec.as_of));
  const auto days = sf::fit(log, options_with_tick(day_s, spec.as_of));
  sf::forecast_options fo;
  fo.start = spec.as_of;
  fo.end = spec.as_of + 90 * day_s;
  fo.scenarios = 0;
  const auto ra = sf::forecast(fine, log, fo);
  const auto rb = sf::forecast(days, log, fo);
  ASSERT_EQ(ra.deals.opportunity, rb.deals.opportunity);
  double worst = 0.0;
  for (std::size_t i = 0; i < ra.deals.p_win_period.size(); ++i)
    worst = std::max(worst, std::abs(ra.deals.p_win_period[i] - rb.deals.p_win_period[i]));
  EXPECT_LT(worst, 0.005); // measured: 0.0012
  EXPECT_GT(worst, 0.0);   // the fits are not the same: the comparison is not vacuous
  // The expected total within a twentieth of the forecast's own standard deviation (measured: a
  // 0.06% difference, 1/170 of it).
  EXPECT_NEAR(ra.exact.mean, rb.exact.mean, 0.05 * std::sqrt(rb.exact.variance));
  EXPECT_NEAR(ra.arrivals.rate_per_day[0], rb.arrivals.rate_per_day[0], eps * rb.arrivals.rate_per_day[0]);
}

TEST(grid, a_one_second_tick_with_year_long_stays_keeps_kernels_in_days) {
  // Stays of about a year (up to ~3 years), in seconds: 31 M ticks a year. The kernels are dense
  // in days only, and the empirical part reaches as far as the data supports (the former
  // per-tick kernels stopped at 65,536 ticks: 18 hours).
  const sf::funnel f({"Qualify", "Propose"}, {"Won"}, {"Lost"});
  sf::simulation_spec spec;
  spec.transition = {0, .6, 0, .4, 0, 0, .5, .5};
  spec.sojourn_mean_days = {1, 300, 1, 365, 1, 1, 365, 400};
  spec.n_opportunities = 800;
  spec.start = spec.as_of - 3 * 365 * day_s;
  spec.seed = 3;
  const auto ev = sf::simulate(f, spec);
  const auto log = sf::event_log::from_columns(f, ev.columns());
  auto o = options_with_tick(1, spec.as_of);
  o.groups.clear();
  const auto model = sf::fit(log, o);
  const std::size_t w = f.n_open() + 2;
  for (std::size_t s = 0; s < f.n_open(); ++s) {
    const auto& k = model.process().kernel(s);
    EXPECT_GT(k.supported, 200) << s;     // months of supported days
    EXPECT_LT(k.supported, 3 * 366) << s; // never more days than the data spans
    EXPECT_EQ(k.mass.size(), static_cast<std::size_t>(k.supported + 1) * w);
  }
  sf::forecast_options fo;
  fo.start = spec.as_of;
  fo.end = spec.as_of + 365 * day_s;
  fo.scenarios = 100;
  fo.stale_after_days = 700;
  const auto r = sf::forecast(model, log, fo);
  EXPECT_GT(r.exact.mean, 0.0);
}

TEST(grid, forecast_grid_option_and_bounds) {
  const auto spec = spec_of(4);
  const auto ev = at_midnight(sf::simulate(three_stages(), spec));
  const auto log = sf::event_log::from_columns(three_stages(), ev.columns());
  const auto fine = sf::fit(log, options_with_tick(1, spec.as_of));
  const auto days = sf::fit(log, options_with_tick(day_s, spec.as_of));
  sf::forecast_options fo;
  fo.start = spec.as_of;
  fo.end = spec.as_of + 91 * day_s;
  fo.scenarios = 0;
  fo.include_arrivals = false;
  // A grid of one week on both: the same weekly kernels (durations in whole weeks).
  fo.grid_days = 7.0;
  const auto wa = sf::forecast(fine, log, fo);
  const auto wb = sf::forecast(days, log, fo);
  EXPECT_EQ(wa.grid_ticks, 7 * day_s);
  EXPECT_EQ(wb.grid_ticks, 7);
  expect_near_all(wa.deals.p_win_period, wb.deals.p_win_period, eps, "weekly");
  // A coarser rounding of the same process: close to the daily forecast, not equal to it.
  fo.grid_days.reset();
  const auto daily = sf::forecast(days, log, fo);
  EXPECT_NEAR(wa.exact.mean, daily.exact.mean, 0.1 * daily.exact.mean);
  EXPECT_NE(wa.exact.mean, daily.exact.mean);
  // Hourly on the one-second fit of midnight data: every duration is whole days, so the hourly
  // kernels' empirical mass is the daily mass at every 24th hour and nothing in between.
  const auto hourly_proc =
      sf::semi_markov::from_group(three_stages(), fine.overall(), fine.options(), std::nullopt, 3600);
  const std::size_t w = three_stages().n_open() + 2;
  for (std::size_t s = 0; s < three_stages().n_open(); ++s) {
    const auto& kh = hourly_proc.kernel(s);
    const auto& kd = days.process().kernel(s);
    ASSERT_EQ(kh.supported, 24 * kd.supported);
    for (std::int64_t t = 0; t <= kh.supported; ++t)
      for (std::size_t j = 0; j < w; ++j) {
        const double want = t % 24 == 0 ? kd.mass[static_cast<std::size_t>(t / 24) * w + j] : 0.0;
        EXPECT_NEAR(kh.mass[static_cast<std::size_t>(t) * w + j], want, eps);
      }
  }
  fo.grid_days = 1.0 / 24;
  const auto hourly = sf::forecast(fine, log, fo);
  EXPECT_EQ(hourly.grid_ticks, 3600);
  EXPECT_NEAR(hourly.exact.mean, daily.exact.mean, 0.05 * daily.exact.mean);

  fo.grid_days = 0.0;
  EXPECT_THROW((void)sf::forecast(fine, log, fo), sf::invalid_options);
  fo.grid_days.reset();
  fo.end = spec.as_of + 200 * 366 * day_s; // past 65,536 days
  EXPECT_THROW((void)sf::forecast(fine, log, fo), sf::invalid_options);
  fo.end = spec.as_of + 90 * day_s;
  fo.stale_after_days = 1e300;
  EXPECT_THROW((void)sf::forecast(fine, log, fo), sf::invalid_options);
  fo.stale_after_days = std::numeric_limits<double>::infinity();
  EXPECT_THROW((void)sf::forecast(fine, log, fo), sf::invalid_options);
}
