// Issue 12, item 3: calibrated intervals. The estimator recovers a known common factor from
// simulated past periods, the calibrated P10-P90 covers about 80% of new periods where the
// independent-deals interval under-covers, calibration leaves the interval nearly unchanged when
// there is no factor, and forecast() replays only past periods whose outcome is known at as_of.
#include "test_support.hpp"

#include <smartfunnel/calibration.hpp>
#include <smartfunnel/smartfunnel.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <string>
#include <vector>

namespace sf = smartfunnel;

namespace {

constexpr std::int64_t day_s = 86'400;

// The uncertain part of a period: n deals of amount expected / (n p), each won with probability p
// (mean `expected`, relative sd sqrt((1 - p) / (n p))).
struct period_law {
  double expected;
  std::size_t n = 400;
  double p = 0.5;
  [[nodiscard]] double amount() const { return expected / (static_cast<double>(n) * p); }
  [[nodiscard]] double variance() const {
    return static_cast<double>(n) * amount() * amount() * p * (1.0 - p);
  }
  [[nodiscard]] sf::revenue_distribution distribution() const {
    const std::vector<double> a(n, amount()), q(n, p);
    return sf::exact_distribution(a, q);
  }
};

// Past periods with a common lognormal factor of log sd `sigma` (mean 1) on each total.
struct history {
  std::vector<period_law> law;
  std::vector<double> expected, variance, actual;
  std::vector<sf::time_point> as_of;
};

history simulate_history(std::size_t periods, double sigma, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> size(2e5, 2e6);
  std::normal_distribution<double> z;
  history h;
  for (std::size_t k = 0; k < periods; ++k) {
    period_law law{size(rng)};
    std::binomial_distribution<int> wins(static_cast<int>(law.n), law.p);
    const double s = std::exp(sigma * z(rng) - 0.5 * sigma * sigma);
    h.law.push_back(law);
    h.expected.push_back(law.expected);
    h.variance.push_back(law.variance());
    h.actual.push_back(s * law.amount() * wins(rng));
    // Non-overlapping 30-day periods, most recent first.
    h.as_of.push_back(sftest::t0 - static_cast<sf::time_point>(k) * 30 * day_s);
  }
  return h;
}

sf::calibration_options equal_weights() {
  sf::calibration_options o;
  o.enabled = true;
  o.half_life_periods = 0.0;
  return o;
}

double width(const sf::revenue_distribution& d) { return d.quantile(0.9) - d.quantile(0.1); }

// Lead -> Demo -> Won/Lost, created uniformly over `days` days from day 0, censored at day `days`.
sf::simulation_spec two_stage_spec(std::size_t deals, std::int64_t days, std::uint64_t seed) {
  sf::simulation_spec spec;
  spec.transition = {0, .6, 0, .4, 0, 0, .5, .5};
  spec.sojourn_mean_days = {1, 20, 1, 10, 1, 1, 25, 15};
  spec.n_opportunities = deals;
  spec.start = sftest::day(0);
  spec.as_of = sftest::day(days);
  spec.seed = seed;
  return spec;
}

sf::event_log simulated_log(const sf::simulation_spec& spec) {
  const sf::funnel f({"Lead", "Demo"}, {"Won"}, {"Lost"});
  return sf::event_log::from_columns(f, sf::simulate(f, spec).columns());
}

} // namespace

TEST(calibration, factors_have_the_level_as_mean_and_sigma_as_log_sd) {
  const auto s = sf::calibration_factors(1.3, 0.4, 200);
  ASSERT_EQ(s.size(), 200u);
  const double mean = std::accumulate(s.begin(), s.end(), 0.0) / 200.0;
  EXPECT_NEAR(mean, 1.3, 1e-12);
  double m = 0, m2 = 0;
  for (double x : s) m += std::log(x) / 200.0;
  for (double x : s) m2 += (std::log(x) - m) * (std::log(x) - m) / 200.0;
  EXPECT_NEAR(std::sqrt(m2), 0.4, 0.01); // midpoint nodes of N(0, 1): sd 0.99 of the continuous one
  EXPECT_EQ(sf::calibration_factors(0.8, 0.0, 16), std::vector<double>(16, 0.8));
}

TEST(calibration, distribution_is_the_mixture_of_the_scaled_uncertain_part) {
  // One deal of 100 won with p = 1/2 on top of 50 already booked; factors 0.5 and 1.5:
  // P(50) = 1/2, P(100) = 1/4, P(200) = 1/4: mean 100, variance 13,750 - 100^2 = 3,750.
  const std::vector<double> amount{100.0}, p{0.5};
  const auto d = sf::exact_distribution(amount, p, 50.0, 64);
  const auto c = sf::calibrated_distribution(d, 50.0, {0.5, 1.5}, 64);
  EXPECT_NEAR(c.mean, 100.0, 1e-9);
  EXPECT_NEAR(c.variance, 3750.0, 1e-6);
  double mass = 0.0, mean = 0.0;
  for (std::size_t i = 0; i < c.pmf.size(); ++i) {
    mass += c.pmf[i];
    mean += c.pmf[i] * (c.origin + static_cast<double>(i) * c.step);
  }
  EXPECT_NEAR(mass, 1.0, 1e-12);
  EXPECT_NEAR(mean, 100.0, 1e-9);
  EXPECT_NEAR(c.probability_at_least(150.0), 0.25, 1e-9);
  EXPECT_NEAR(c.quantile(0.4), 50.0, c.step);
  // One factor of 1: unchanged.
  const auto same = sf::calibrated_distribution(d, 50.0, {1.0}, 64);
  EXPECT_EQ(same.pmf, d.pmf);
}

TEST(calibration, recovers_a_known_common_factor) {
  const double sigma = 0.3, rel_sd = std::sqrt(std::expm1(sigma * sigma)); // 0.307
  const auto h = simulate_history(400, sigma, 7);
  const auto c =
      sf::estimate_calibration(h.expected, h.variance, h.actual, h.as_of, 30 * day_s, equal_weights());
  EXPECT_EQ(c.method, "common_factor");
  EXPECT_NEAR(c.tau, rel_sd, 0.04);
  EXPECT_NEAR(c.observed_level, 1.0, 0.05);
  EXPECT_EQ(c.level, 1.0); // the level is not applied by default
  EXPECT_NEAR(c.model_cv, 0.05, 1e-9);
  EXPECT_NEAR(c.independent_periods, 400.0, 1e-9);
}

TEST(calibration, calibrated_interval_covers_where_independent_deals_do_not) {
  // Learn from 120 past periods, then check the P10-P90 of 300 new ones.
  const double sigma = 0.25;
  const auto past = simulate_history(120, sigma, 11);
  const auto c = sf::estimate_calibration(past.expected, past.variance, past.actual, past.as_of, 30 * day_s,
                                          equal_weights());
  ASSERT_EQ(c.method, "common_factor");
  const auto fresh = simulate_history(300, sigma, 12);
  const auto factors = sf::calibration_factors(c.level, c.sigma, 48);
  int covered = 0, covered_raw = 0;
  for (std::size_t k = 0; k < fresh.law.size(); ++k) {
    const auto d = fresh.law[k].distribution();
    const auto cal = sf::calibrated_distribution(d, 0.0, factors);
    const double y = fresh.actual[k];
    covered += cal.quantile(0.1) <= y && y <= cal.quantile(0.9);
    covered_raw += d.quantile(0.1) <= y && y <= d.quantile(0.9);
  }
  EXPECT_NEAR(covered / 300.0, 0.80, 0.07);
  EXPECT_LT(covered_raw / 300.0, 0.40);
}

TEST(calibration, without_a_common_factor_the_interval_changes_little) {
  const auto h = simulate_history(120, 0.0, 5);
  const auto c =
      sf::estimate_calibration(h.expected, h.variance, h.actual, h.as_of, 30 * day_s, equal_weights());
  ASSERT_EQ(c.method, "common_factor");
  const auto d = period_law{1e6}.distribution();
  const auto cal = sf::calibrated_distribution(d, 0.0, sf::calibration_factors(c.level, c.sigma, 48));
  EXPECT_LT(std::abs(width(cal) / width(d) - 1.0), 0.10) << "tau " << c.tau << " sigma " << c.sigma;
}

TEST(calibration, too_short_a_history_is_said_not_hidden) {
  const auto h = simulate_history(4, 0.3, 3);
  auto o = equal_weights();
  const auto c = sf::estimate_calibration(h.expected, h.variance, h.actual, h.as_of, 30 * day_s, o);
  EXPECT_EQ(c.method, "none");
  EXPECT_NE(c.reason.find("too short a history"), std::string::npos) << c.reason;
  // Enough periods, but all within one period's length of each other: one observation.
  std::vector<sf::time_point> close(20);
  for (std::size_t k = 0; k < close.size(); ++k)
    close[k] = sftest::t0 - static_cast<sf::time_point>(k) * day_s;
  const auto many = simulate_history(20, 0.3, 4);
  const auto c2 = sf::estimate_calibration(many.expected, many.variance, many.actual, close, 90 * day_s, o);
  EXPECT_EQ(c2.method, "none");
  EXPECT_NEAR(c2.independent_periods, 1.0 + 19.0 / 90.0, 1e-9);
}

TEST(calibration, a_spread_from_few_periods_is_widened_like_a_t_interval) {
  // Six non-overlapping periods: 5 degrees of freedom, t_5(0.9) = 1.475884 against z(0.9) = 1.281552.
  const auto h = simulate_history(6, 0.3, 8);
  const auto c =
      sf::estimate_calibration(h.expected, h.variance, h.actual, h.as_of, 30 * day_s, equal_weights());
  ASSERT_EQ(c.method, "common_factor");
  EXPECT_NEAR(c.degrees_of_freedom, 5.0, 1e-12);
  EXPECT_NEAR(c.small_sample_factor, 1.475884 / 1.281552, 1e-5);
  EXPECT_NEAR(c.sigma, std::sqrt(std::log1p(c.tau * c.tau)) * c.small_sample_factor, 1e-12);
}

TEST(calibration, past_dates_lie_on_a_weekly_grid_and_end_before_as_of) {
  sf::calibration_options o;
  o.max_periods = 10;
  const sf::time_point as_of = sftest::day(400, 5), length = 30 * day_s;
  const auto dates = sf::calibration_dates(as_of, length, sftest::day(300), o);
  ASSERT_FALSE(dates.empty());
  EXPECT_LE(dates.size(), 10u);
  for (std::size_t k = 0; k < dates.size(); ++k) {
    EXPECT_EQ(dates[k] % (7 * day_s), 0);
    EXPECT_LE(dates[k] + length, as_of);
    EXPECT_GE(dates[k], sftest::day(300));
    if (k) {
      EXPECT_EQ(dates[k - 1] - dates[k], 7 * day_s);
    }
  }
  EXPECT_GT(dates[0] + length + 7 * day_s, as_of); // the latest such grid point
  // Nearby as_of dates share their past dates (a backtest's weekly replay reuses them).
  const auto later = sf::calibration_dates(as_of + 7 * day_s, length, sftest::day(300), o);
  EXPECT_EQ(later[1], dates[0]);
  // Automatic spacing: a quarter of the length in whole weeks (90 days: 3 weeks), at most eight
  // lengths back.
  EXPECT_EQ(sf::calibration_spacing(90 * day_s, o), 21 * day_s);
  const auto quarter = sf::calibration_dates(as_of + 2000 * day_s, 90 * day_s, 0, sf::calibration_options{});
  ASSERT_EQ(quarter.size(), 35u); // 0, 21, ..., 714 days back: 720 / 21 = 34.3
  EXPECT_LE(quarter.front() - quarter.back(), 8 * 90 * day_s);
}

TEST(calibration, forecast_replays_past_periods_known_at_as_of) {
  const auto spec = two_stage_spec(1500, 730, 3);
  const auto log = simulated_log(spec);
  const auto model = sf::fit(log);
  sf::forecast_options o;
  o.start = spec.as_of;
  o.end = spec.as_of + 60 * day_s;
  o.scenarios = 2000;
  const auto plain = sf::forecast(model, log, o);
  EXPECT_EQ(plain.calibration.method, "none");
  o.calibration.enabled = true;
  o.calibration.max_periods = 20;
  const auto cal = sf::forecast(model, log, o);
  ASSERT_EQ(cal.calibration.method, "common_factor") << cal.calibration.reason;
  const auto& c = cal.calibration;
  ASSERT_EQ(c.as_of.size(), 20u);
  for (std::size_t k = 0; k < c.as_of.size(); ++k) {
    EXPECT_LE(c.end[k], spec.as_of);
    EXPECT_EQ(c.end[k] - c.start[k], 60 * day_s);
  }
  // The level is not applied: the mean stays, the spread grows by the factor.
  EXPECT_NEAR(cal.exact.mean, plain.exact.mean, 1e-6 * plain.exact.mean);
  EXPECT_GE(cal.exact.variance, plain.exact.variance * (1.0 + c.sigma * c.sigma * 0.5));
  EXPECT_EQ(c.record.methods.size(), 4u);
  // Monte Carlo: the factor of scenario s comes from (seed, s), the same for any thread count.
  o.threads = 2;
  const auto two = sf::forecast(model, log, o);
  EXPECT_EQ(two.scenario_cents, cal.scenario_cents);
  EXPECT_EQ(two.calibration.sigma, c.sigma);
  // Two years of log hold no past period of 400 days after the first close: said, nothing widened.
  sf::forecast_options q = o;
  q.end = spec.as_of + 400 * day_s;
  const auto short_history = sf::forecast(model, log, q);
  EXPECT_EQ(short_history.calibration.method, "none");
  EXPECT_NE(short_history.calibration.reason.find("too short"), std::string::npos);
}

TEST(calibration, options_are_checked) {
  sf::forecast_options o;
  o.start = 0;
  o.end = 1;
  o.calibration.nodes = 1;
  EXPECT_THROW(o.validate(), sf::invalid_options);
  o.calibration.nodes = 48;
  o.calibration.spacing_days = 0.5; // 0 is automatic, else at least a day
  EXPECT_THROW(o.validate(), sf::invalid_options);
  o.calibration.spacing_days = 7.0;
  o.calibration.max_periods = 10'000;
  EXPECT_THROW(o.validate(), sf::invalid_options);
}

TEST(recency, options_are_checked_and_a_short_history_keeps_no_decay) {
  sf::recency_options o;
  o.candidates_days = {0.0, -5.0};
  EXPECT_THROW(o.validate(), sf::invalid_options);
  o.candidates_days = {};
  EXPECT_THROW(o.validate(), sf::invalid_options);
  // Four months of a simulated log: no five past quarters to score on.
  const auto log = simulated_log(two_stage_spec(300, 120, 0));
  const sf::recency_options r;
  const auto choice = sf::choose_half_life(log, sf::fit_options{}, r);
  EXPECT_EQ(choice.chosen, 0u); // candidates_days[0] is no decay
  EXPECT_NE(choice.reason.find("too short a history to choose"), std::string::npos) << choice.reason;
  EXPECT_EQ(choice.half_life_days.size(), r.candidates_days.size());
}
