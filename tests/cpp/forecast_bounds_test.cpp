// Issue 13, items 2 and 7: the exact distribution's work and memory are bounded by its lattice
// whatever the probabilities, amounts or arrival rates, and Monte Carlo totals never wrap around.
#include "test_support.hpp"

#include <smartfunnel/forecast.hpp>
#include <smartfunnel/smartfunnel.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

namespace sf = smartfunnel;
using sftest::day;
using sftest::table;

namespace {

double pmf_mean(const sf::revenue_distribution& d) {
  double m = 0.0;
  for (std::size_t i = 0; i < d.pmf.size(); ++i) m += d.pmf[i] * (d.origin + static_cast<double>(i) * d.step);
  return m;
}

double pmf_mass(const sf::revenue_distribution& d) {
  return std::accumulate(d.pmf.begin(), d.pmf.end(), 0.0);
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

} // namespace

TEST(exact_distribution_bounds, one_deal_with_a_tiny_probability_stays_on_the_lattice) {
  // sd of the total 1000 sqrt(1e-12) = 1e-3: a step of 2 * 8 * 1e-3 / 4096 would put the win at
  // 2.6e8 cells (2 GB, the one deal forecast 5 days ahead). The step is at least 1000 / 4096.
  const std::vector<double> amount{1000.0}, p{1e-12};
  const auto t = std::chrono::steady_clock::now();
  const auto d = sf::exact_distribution(amount, p);
  EXPECT_LT(seconds_since(t), 1.0);
  EXPECT_DOUBLE_EQ(d.step, 1000.0 / 4096.0);
  EXPECT_LE(d.pmf.size(), 4096u + 2u);
  EXPECT_DOUBLE_EQ(d.mean, 1000.0 * 1e-12); // the exact mean, worked out by hand
  EXPECT_NEAR(pmf_mass(d), 1.0, 1e-15);
  // The two outcomes, on lattice points: nothing with 1 - p, 1000 (4096 steps) with p; the
  // lattice's mean is the exact mean.
  EXPECT_NEAR(d.pmf.front(), 1.0 - 1e-12, 1e-15);
  EXPECT_NEAR(d.probability_at_least(999.0), 1e-12, 1e-20);
  EXPECT_NEAR(d.quantile(1.0), 1000.0, 1e-9);
  EXPECT_NEAR(pmf_mean(d), 1e-9, 1e-18 + d.w1_bound);
  // Smaller still (1e-22): the win's cell is below the lattice's 1e-18 floor and is reported as
  // truncated mass; the mean stays exact.
  const std::vector<double> q{1e-22};
  const auto e = sf::exact_distribution(amount, q);
  EXPECT_LE(e.pmf.size(), 4096u + 2u);
  EXPECT_DOUBLE_EQ(e.mean, 1e-19);
  EXPECT_NEAR(e.truncated_mass, 1e-22, 1e-30);
}

TEST(exact_distribution_bounds, many_unlikely_deals_are_bounded_by_the_lattice) {
  // 2,000 deals of 1,000 to 2,999 each won with p = 1e-9: sd ~ 0.1, far below the amounts.
  std::vector<double> amount(2000), p(2000, 1e-9);
  double mean = 0.0;
  for (std::size_t i = 0; i < amount.size(); ++i) {
    amount[i] = 1000.0 + static_cast<double>(i);
    mean += amount[i] * 1e-9;
  }
  const std::size_t cells = 1024;
  const auto t = std::chrono::steady_clock::now();
  const auto d = sf::exact_distribution(amount, p, 0.0, cells);
  EXPECT_LT(seconds_since(t), 5.0);
  EXPECT_GE(d.step, 2999.0 / static_cast<double>(cells));
  EXPECT_LE(d.pmf.size(), 4 * cells + 2);
  EXPECT_NEAR(d.mean, mean, 1e-15 * mean);
  // Mass cut from the window (mean +- 8 sd) lies at or above the smallest amount; what is kept
  // has the exact mean up to that mass times the largest total kept.
  EXPECT_NEAR(pmf_mass(d) + d.truncated_mass, 1.0, 1e-9);
  EXPECT_LT(d.truncated_mass, 2000 * 1e-9 * 1.0001);
  EXPECT_NEAR(pmf_mean(d), mean, d.w1_bound + d.truncated_mass * 3000.0 * 2 + 1e-12);
}

TEST(exact_distribution_bounds, a_step_finer_than_the_largest_amount_over_the_lattice_is_refused) {
  const std::vector<double> amount{1000.0, 10.0}, p{0.5, 0.5};
  EXPECT_THROW((void)sf::exact_distribution_with_step(amount, p, 1000.0 / 4096.0 / 2.0),
               std::invalid_argument);
  EXPECT_NO_THROW((void)sf::exact_distribution_with_step(amount, p, 1000.0 / 4096.0));
  // The step exact_distribution chooses is lattice_step of the variance and the largest amount.
  const double var = 1000.0 * 1000.0 * 0.25 + 10.0 * 10.0 * 0.25;
  EXPECT_DOUBLE_EQ(sf::lattice_step(var, 1000.0, 4096, 8.0), 2.0 * 8.0 * std::sqrt(var) / 4096.0);
  EXPECT_DOUBLE_EQ(sf::lattice_step(1e-20, 1000.0, 4096, 8.0), 1000.0 / 4096.0);
  EXPECT_DOUBLE_EQ(sf::largest_uncertain_amount(amount, p), 1000.0);
  const std::vector<double> sure{1.0, 0.5};
  EXPECT_DOUBLE_EQ(sf::largest_uncertain_amount(amount, sure), 10.0); // p = 1 is no leaf
}

TEST(exact_distribution_bounds, compound_poisson_with_a_huge_rate_is_bounded_by_the_lattice) {
  // 1e8 new wins of 1 or 2 (equal weights): mean 1.5e8, variance 1e8 * 2.5. On [0, 2 (mean +
  // 8 sd)) the grid was 2^23 cells (~0.4 GB with the FFT's buffers); on the window around the
  // mean it does not grow with the mean.
  sf::compound_poisson cp{1e8, {1.0, 2.0}, {0.5, 0.5}};
  const auto t = std::chrono::steady_clock::now();
  const auto d = sf::exact_distribution({}, {}, 0.0, 4096, 8.0, &cp);
  EXPECT_LT(seconds_since(t), 2.0);
  const double lambda = 1.5e8 / d.step;
  EXPECT_LE(static_cast<double>(d.pmf.size()), 2.0 * (8.0 * std::sqrt(lambda) + 20.0));
  EXPECT_LT(d.pmf.size(), 100'000u);
  EXPECT_DOUBLE_EQ(d.mean, 1.5e8);
  EXPECT_DOUBLE_EQ(d.variance, 2.5e8);
  // FFT round-off at a rate of 1e8 is ~1e-9 of the mass.
  EXPECT_NEAR(pmf_mass(d), 1.0, 1e-8);
  EXPECT_NEAR(pmf_mean(d), 1.5e8, 1e-8 * 1.5e8);
  // Both amounts are below one step (~62), so each new win is split between 0 and one step: on
  // the lattice the total is exactly Poisson(lambda) steps, lambda = mean / step, whose sd is
  // sqrt(lambda) steps and median lambda (to within a step), worked out independently.
  double m2 = 0.0;
  for (std::size_t i = 0; i < d.pmf.size(); ++i) {
    const double x = (d.origin - 0.0) / d.step + static_cast<double>(i) - lambda;
    m2 += d.pmf[i] * x * x;
  }
  EXPECT_NEAR(std::sqrt(m2), std::sqrt(lambda), 0.01 * std::sqrt(lambda));
  EXPECT_NEAR(d.quantile(0.5), 1.5e8, 2.0 * d.step);
}

TEST(exact_distribution_bounds, mixture_of_parts_with_tiny_variances_is_bounded) {
  // Two parts of one unlikely deal each, far apart: the mixture's sd (~5e5) needs a step of ~2e3,
  // but each part's lattice step is at least its amount / cells (1e6 / 4096 = 244): the mixture
  // never holds more than 8 * cells cells.
  const std::vector<double> a1{1e6}, a2{1e7}, p{1e-20};
  const std::vector<sf::revenue_distribution> parts{sf::exact_distribution(a1, p, 0.0),
                                                    sf::exact_distribution(a2, p, 1e6)};
  const auto d = sf::mixture(parts, 4096, 8.0, sf::lattice_step(0.0, 1e7, 4096, 8.0));
  EXPECT_LE(d.pmf.size(), 8u * 4096u + 2u);
  EXPECT_NEAR(pmf_mass(d), 1.0, 1e-12);
  EXPECT_NEAR(d.mean, 0.5 * (1e6 * 1e-20) + 0.5 * (1e6 + 1e7 * 1e-20), 1e-6);
  EXPECT_NEAR(pmf_mean(d), d.mean, d.w1_bound + 1e-6);
}

TEST(monte_carlo_bounds, totals_that_could_wrap_around_are_refused) {
  constexpr std::int64_t big = std::numeric_limits<std::int64_t>::max() / 2 + 1;
  const std::vector<std::int64_t> cents{big, big};
  const std::vector<double> p{0.5, 0.5};
  const std::vector<std::uint64_t> keys{1, 2};
  EXPECT_THROW((void)sf::monte_carlo_cents(cents, p, keys, 10, 0), std::overflow_error);
  EXPECT_THROW((void)sf::monte_carlo_cents(cents, p, keys, 10, 0, 2), std::overflow_error);
  const std::vector<double> pd{0.5, 0.0, 0.5, 0.5};
  EXPECT_THROW((void)sf::monte_carlo_cents_draws(cents, pd, 2, keys, 10, 0), std::overflow_error);
  // A deal that cannot win does not count; the largest total that fits is summed exactly.
  const std::vector<double> one{1.0, 0.0};
  const auto t = sf::monte_carlo_cents(cents, one, keys, 4, 0);
  for (auto x : t) EXPECT_EQ(x, big);
  const std::vector<std::int64_t> fit{big - 1, big - 1}; // 2^63 - 2: the most two deals can hold
  const std::vector<double> both{1.0, 1.0};
  for (auto x : sf::monte_carlo_cents(fit, both, keys, 3, 0))
    EXPECT_EQ(x, std::numeric_limits<std::int64_t>::max() - 1);
}

namespace {

// One stage A: Won at 1 day or Lost at 2 days, half each; two open deals of `amount` at day 10.
struct two_open_deals {
  sf::funnel f = sf::funnel({"A"}, {"Won"}, {"Lost"});
  sf::event_log log;
  sf::funnel_model model;
  explicit two_open_deals(double amount)
      : log(table()
                .add(1, "A", day(0), 100, "ann")
                .add(1, "Won", day(1), 100, "ann")
                .add(2, "A", day(0), 100, "ann")
                .add(2, "Lost", day(2), 100, "ann")
                .add(3, "A", day(10), amount, "ann")
                .add(4, "A", day(10), amount, "ann")
                .log(f)),
        model(sf::fit(log, options())) {}
  static sf::fit_options options() {
    sf::fit_options o;
    o.as_of = day(10);
    o.prior = 0.0;
    o.draws = 0;
    o.min_at_risk = 1;
    return o;
  }
};

} // namespace

TEST(forecast_bounds, monte_carlo_refuses_amounts_beyond_int64_cents_and_never_goes_negative) {
  sf::forecast_options fo;
  fo.start = day(10);
  fo.end = day(15);
  fo.include_arrivals = false;
  fo.scenarios = 2000;
  {
    // Each deal 4e16 (4e18 cents): the two together are 8e18 cents, below 2^63 = 9.22e18.
    const two_open_deals d(4e16);
    const auto fc = sf::forecast(d.model, d.log, fo);
    ASSERT_EQ(fc.scenario_cents.size(), 2000u);
    for (auto c : fc.scenario_cents) {
      EXPECT_GE(c, 0);
      EXPECT_EQ(c % 4'000'000'000'000'000'000LL, 0); // none, one or both deals won
    }
    // Each deal is won with probability 1/2 (by hand): the scenarios' mean is 4e16 within 4 sd.
    double m = 0.0;
    for (auto c : fc.scenario_cents) m += static_cast<double>(c) / 100.0 / 2000.0;
    EXPECT_NEAR(m, 4e16, 4.0 * std::sqrt(2.0 * 0.25) * 4e16 / std::sqrt(2000.0));
    EXPECT_NEAR(fc.expected(), 4e16, 1e4);
  }
  {
    // Each deal 5e16: 1e19 cents do not fit; refused with a message naming scenarios and the sum.
    const two_open_deals d(5e16);
    try {
      (void)sf::forecast(d.model, d.log, fo);
      ADD_FAILURE() << "no error";
    } catch (const sf::invalid_options& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("scenarios"), std::string::npos) << what;
      EXPECT_NE(what.find("1e+17"), std::string::npos) << what;
    }
    fo.scenarios = 0; // the exact distribution has no such limit
    EXPECT_NEAR(sf::forecast(d.model, d.log, fo).expected(), 5e16, 1e4);
  }
}

TEST(forecast_bounds, a_grid_step_longer_than_the_period_is_refused) {
  const two_open_deals d(100.0);
  sf::forecast_options fo;
  fo.start = day(20);
  fo.end = day(30);
  fo.include_arrivals = false;
  fo.scenarios = 0;
  fo.grid_days = 365.0;
  EXPECT_THROW((void)sf::forecast(d.model, d.log, fo), sf::invalid_options);
  fo.grid_days = 10.0; // as long as the period: accepted
  EXPECT_NO_THROW((void)sf::forecast(d.model, d.log, fo));
}

TEST(forecast_bounds, a_quarter_two_years_ahead_is_bounded_by_the_lattice) {
  // The reproduction on a simulated pipeline: the quarter two years after as_of (117 s
  // and 4.3 GB on the bundled sample before the step's floor; the next quarter took 0.05 s).
  const sf::funnel f({"Qualify", "Propose"}, {"Won"}, {"Lost"});
  sf::simulation_spec spec;
  spec.transition = {0, .6, 0, .4, 0, 0, .5, .5};
  spec.sojourn_mean_days = {1, 30, 1, 20, 1, 1, 40, 30};
  spec.n_opportunities = 2000;
  spec.seed = 21;
  const auto log = sf::event_log::from_columns(f, sf::simulate(f, spec).columns());
  sf::fit_options o;
  o.draws = 0;
  const auto model = sf::fit(log, o);
  sf::forecast_options fo;
  fo.start = spec.as_of + 730 * 86'400;
  fo.end = spec.as_of + 821 * 86'400;
  fo.scenarios = 0;
  const auto t = std::chrono::steady_clock::now();
  const auto fc = sf::forecast(model, log, fo);
  EXPECT_LT(seconds_since(t), 5.0);
  // The pipeline is so unlikely to win in that quarter that 16 sd are less than its largest
  const auto& pipe = fc.exact_pipeline;
  const double widest = sf::largest_uncertain_amount(fc.deals.amount, fc.deals.p_win_period);
  ASSERT_GT(widest, 0.0);
  // amount: the floor of the step is what bounds the lattice here (by 4e4 here: the step of
  // 2 * 8 * sd / 4096 would put the largest deal's win 1.7e8 cells up, 1.4 GB).
  EXPECT_LT(1000.0 * 2.0 * 8.0 * std::sqrt(pipe.variance), widest);
  EXPECT_DOUBLE_EQ(pipe.step, widest / 4096.0);
  EXPECT_LE(pipe.pmf.size(), 4u * 4096u + 2u);
  // Means: realised + sum p * amount (+ the arrivals' expected), added up here.
  double want = fc.realised;
  for (std::size_t i = 0; i < fc.deals.amount.size(); ++i)
    if (fc.deals.p_win_period[i] > 0.0) want += fc.deals.amount[i] * fc.deals.p_win_period[i];
  EXPECT_NEAR(pipe.mean, want, 1e-9 * std::max(1.0, want));
  double arrivals = 0.0;
  for (double x : fc.arrivals.expected) arrivals += x;
  EXPECT_NEAR(fc.exact.mean, want + arrivals, 1e-9 * std::max(1.0, want + arrivals));
  double total = 0.0;
  for (double a : fc.deals.amount) total += a;
  EXPECT_NEAR(pmf_mean(pipe), pipe.mean, pipe.w1_bound + pipe.truncated_mass * (total + fc.realised) + 1e-9);
  EXPECT_NEAR(pmf_mass(pipe) + pipe.truncated_mass, 1.0, 1e-9);
}

TEST(forecast_bounds, parameter_draws_times_open_deals_are_capped) {
  // 10,001 open deals x 10,000 draws would hold 1.0001e8 probabilities (800 MB): refused before
  // the draws are computed, naming parameter_draws; 100 draws of the same deals are fine.
  table t;
  t.add(1, "A", day(0), 100, "ann").add(1, "Won", day(1), 100, "ann");
  t.add(2, "A", day(0), 100, "ann").add(2, "Lost", day(2), 100, "ann");
  for (std::int64_t i = 0; i < 10'001; ++i) t.add(10 + i, "A", day(10), 100, "ann");
  const sf::funnel f({"A"}, {"Won"}, {"Lost"});
  const auto log = t.log(f);
  const auto model = sf::fit(log, two_open_deals::options());
  sf::forecast_options fo;
  fo.start = day(10);
  fo.end = day(15);
  fo.include_arrivals = false;
  fo.scenarios = 0;
  fo.exact = false;
  fo.parameter_draws = 10'000;
  const auto t0 = std::chrono::steady_clock::now();
  try {
    (void)sf::forecast(model, log, fo);
    ADD_FAILURE() << "no error";
  } catch (const sf::invalid_options& e) {
    EXPECT_EQ(std::string(e.what()).rfind("parameter_draws: 10000 draws of 10001 open deals", 0), 0u)
        << e.what();
  }
  EXPECT_LT(seconds_since(t0), 5.0);
  fo.parameter_draws = 100;
  EXPECT_EQ(sf::forecast(model, log, fo).deals.p_win_period_draws.size(), 10'001u * 100u);
}
