// The walk-forward backtest: every method's rows and scores on a log worked by hand, the
// closed-only chain, identical results for any thread count, cancelling and named bad options.
#include "test_support.hpp"

#include <smartfunnel/backtest.hpp>
#include <smartfunnel/simulate.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

namespace sf = smartfunnel;
using sftest::day;
using sftest::table;

namespace {

// One stage A. Closed before day 10: deal 1 Won after 1 day, deals 2 and 5 Lost after 3 days.
// Open at day 10: deal 3 (300, entered day 8, Won day 11) and deal 4 (200, entered day 10, Lost
// day 12). Deal 6 is created on day 12 and won on day 13 (50). Everything is closed by day 20.
//
// As of day 10 deal 3 is a censored stay of 2 days, so the exits are Won at 1 (4 at risk), then
// Lost, Lost at 3 (2 at risk): censoring-aware P(Won) = 1/4, closed-only 1/3. A deal 2 days old
// can only be lost (nothing is won after day 1), one 0 days old is won within the period with 1/4.
sf::event_log hand_log() {
  table t;
  t.add(1, "A", day(0), 100, "ann").add(1, "Won", day(1), 100, "ann");
  t.add(2, "A", day(0), 100, "ann").add(2, "Lost", day(3), 100, "ann");
  t.add(5, "A", day(0), 100, "ann").add(5, "Lost", day(3), 100, "ann");
  t.add(3, "A", day(8), 300, "ann").add(3, "Won", day(11), 300, "ann");
  t.add(4, "A", day(10), 200, "ann").add(4, "Lost", day(12), 200, "ann");
  t.add(6, "A", day(12), 50, "ann").add(6, "Won", day(13), 50, "ann");
  static const sf::funnel f({"A"}, {"Won"}, {"Lost"});
  return t.log(f);
}

sf::backtest_options hand_options() {
  sf::backtest_options o;
  o.as_of = {day(10), day(20)};
  o.horizon_days = 5;
  o.fit.prior = 0.0;
  o.fit.draws = 0;
  o.fit.min_at_risk = 1;
  o.forecast.include_arrivals = false;
  o.ladder = {0.6};
  return o;
}

struct expected_row {
  double mean, p10, p50, p90, pinball;
  bool covered;
};

} // namespace

TEST(backtest, every_method_by_hand) {
  const auto log = hand_log();
  const auto r = sf::backtest(log, hand_options());
  ASSERT_EQ(r.methods,
            (std::vector<std::string>{"smartfunnel", "weighted_pipeline", "closed_only", "static_ladder"}));
  ASSERT_EQ(r.as_of.size(), 2u);
  EXPECT_EQ(r.start[0], day(10)); // the UTC day rule: [as_of day, + 5 days)
  EXPECT_EQ(r.end[0], day(15));
  ASSERT_EQ(r.periods.method.size(), 8u);
  // Actual in [day 10, day 15): deal 3 (300) and deal 6, created after as_of (50).
  const double actual = 350.0;
  // Per method, p = (deal 3, deal 4) with amounts (300, 200), and the four totals 0, 200, 300, 500:
  //  smartfunnel (0, 1/4): 0 w.p. 3/4, 200 w.p. 1/4;
  //  weighted (1/4, 1/4): cdf 9/16, 12/16, 15/16, 1;   closed-only (1/3, 1/3): cdf 4/9, 6/9, 8/9, 1;
  //  ladder (0.6, 0.6): cdf 0.16, 0.40, 0.64, 1.
  // Pinball: mean over q of max(q (a - v), (q - 1)(a - v)) with a = 350.
  auto pin = [&](double p10, double p50, double p90) {
    auto one = [&](double q, double v) { return std::max(q * (actual - v), (q - 1) * (actual - v)); };
    return (one(0.1, p10) + one(0.5, p50) + one(0.9, p90)) / 3.0;
  };
  const expected_row want[4] = {
      {0.25 * 200, 0, 0, 200, pin(0, 0, 200), false},
      {0.25 * 500, 0, 0, 300, pin(0, 0, 300), false},
      {500.0 / 3, 0, 200, 500, pin(0, 200, 500), true},
      {0.6 * 500, 0, 300, 500, pin(0, 300, 500), true},
  };
  EXPECT_NEAR(want[0].pinball, 115.0, 1e-12); // (35 + 175 + 135) / 3, by hand
  for (std::size_t m = 0; m < 4; ++m) {
    SCOPED_TRACE(r.methods[m]);
    EXPECT_EQ(r.periods.date[m], 0u);
    EXPECT_EQ(r.periods.method[m], m);
    const double tol = 2.0; // the lattice splits each amount between points about 0.4 apart
    EXPECT_NEAR(r.periods.expected[m], want[m].mean, 1e-9); // the lattice keeps the mean
    EXPECT_NEAR(r.periods.p10[m], want[m].p10, tol);
    EXPECT_NEAR(r.periods.p50[m], want[m].p50, tol);
    EXPECT_NEAR(r.periods.p90[m], want[m].p90, tol);
    EXPECT_EQ(r.periods.actual[m], actual);
    EXPECT_NEAR(r.periods.error[m], want[m].mean - actual, 1e-9);
    EXPECT_EQ(r.periods.covered[m] != 0, want[m].covered);
    EXPECT_NEAR(r.periods.pinball[m], want[m].pinball, tol);
    EXPECT_EQ(r.periods.open_deals[m], 2);
  }
  // Day 20: nothing open, nothing won in [day 20, day 25): every method is the point 0, covered.
  for (std::size_t m = 4; m < 8; ++m) {
    EXPECT_EQ(r.periods.date[m], 1u);
    EXPECT_EQ(r.periods.expected[m], 0.0);
    EXPECT_EQ(r.periods.actual[m], 0.0);
    EXPECT_EQ(r.periods.covered[m], 1);
    EXPECT_EQ(r.periods.pinball[m], 0.0);
    EXPECT_EQ(r.periods.open_deals[m], 0);
  }

  // Deal rows: deal 3 won, deal 4 not, with each method's p.
  const double p[4][2] = {{0, 0.25}, {0.25, 0.25}, {1.0 / 3, 1.0 / 3}, {0.6, 0.6}};
  ASSERT_EQ(r.deals.p.size(), 8u);
  for (std::size_t m = 0; m < 4; ++m)
    for (std::size_t k = 0; k < 2; ++k) {
      const auto i = 2 * m + k;
      EXPECT_EQ(r.deals.method[i], m);
      EXPECT_EQ(r.deals.date[i], 0u);
      EXPECT_EQ(log.id_label(r.deals.opportunity[i]), k == 0 ? "3" : "4");
      EXPECT_NEAR(r.deals.p[i], p[m][k], 1e-12);
      EXPECT_EQ(r.deals.won[i], k == 0 ? 1.0 : 0.0);
    }

  // Metrics over the two dates (the second has error 0, covered, pinball 0, actual 0).
  for (std::size_t m = 0; m < 4; ++m) {
    SCOPED_TRACE(r.methods[m]);
    const double err = want[m].mean - actual;
    EXPECT_NEAR(r.metrics.mae[m], std::abs(err) / 2, 1e-9);
    EXPECT_NEAR(r.metrics.bias[m], err / 2, 1e-9);
    EXPECT_NEAR(r.metrics.mape[m], std::abs(err) / actual, 1e-12); // the zero actual left out
    EXPECT_EQ(r.metrics.coverage_p10_p90[m], want[m].covered ? 1.0 : 0.5);
    EXPECT_NEAR(r.metrics.pinball[m], want[m].pinball / 2, 1.0);
    const double p3 = std::max(p[m][0], 1e-12), p4 = p[m][1];
    EXPECT_NEAR(r.metrics.brier[m], ((1 - p3) * (1 - p3) + p4 * p4) / 2, 1e-12);
    EXPECT_NEAR(r.metrics.log_loss[m], -(std::log(p3) + std::log(1 - p4)) / 2, 1e-9);
    EXPECT_EQ(r.metrics.periods[m], 2);
    EXPECT_EQ(r.metrics.deals[m], 2);
  }

  // Calibration, bins of 0.1 as numpy.linspace makes them: 0.6 falls in [0.5, 6 * 0.1) since
  // 6 * 0.1 = 0.6000000000000001, and 1/3 in [3 * 0.1, 0.4).
  const auto& c = r.calibration;
  ASSERT_EQ(c.method, (std::vector<std::size_t>{0, 0, 1, 2, 3}));
  const double low[5] = {0.0, 2 * 0.1, 2 * 0.1, 3 * 0.1, 5 * 0.1};
  const double high[5] = {0.1, 3 * 0.1, 3 * 0.1, 4 * 0.1, 6 * 0.1};
  const double predicted[5] = {0.0, 0.25, 0.25, 1.0 / 3, 0.6};
  const double observed[5] = {1.0, 0.0, 0.5, 0.5, 0.5};
  const std::int64_t deals[5] = {1, 1, 2, 2, 2};
  for (std::size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(c.low[i], low[i]) << i;
    EXPECT_EQ(c.high[i], high[i]) << i;
    EXPECT_NEAR(c.predicted[i], predicted[i], 1e-12) << i;
    EXPECT_EQ(c.observed[i], observed[i]) << i;
    EXPECT_EQ(c.deals[i], deals[i]) << i;
  }
}

TEST(backtest, closed_only_through_the_chain_by_hand) {
  // A -> B for half of A's closed exits, A -> Lost for the other half; B -> Won 2 of 3. Naive:
  // B wins 2/3, A wins 1/2 * 2/3 = 1/3. A stage C without exits is never won.
  table t;
  t.add(1, "A", day(0)).add(1, "B", day(1)).add(1, "Won", day(2));
  t.add(2, "A", day(0)).add(2, "Lost", day(1));
  t.add(3, "B", day(0)).add(3, "Won", day(4));
  t.add(4, "B", day(0)).add(4, "Lost", day(4));
  t.add(5, "A", day(3)); // open in A: censored, not in the naive rate
  const sf::funnel f({"A", "B", "C"}, {"Won"}, {"Lost"});
  const auto log = t.log(f);
  sf::fit_options o;
  o.draws = 0;
  const auto model = sf::fit(log, o);
  const auto win = sf::closed_only_win(model);
  ASSERT_EQ(win.size(), 3u);
  EXPECT_NEAR(win[0], 1.0 / 3, 1e-12);
  EXPECT_NEAR(win[1], 2.0 / 3, 1e-12);
  EXPECT_EQ(win[2], 0.0);
}

TEST(backtest, period_bounds_from_the_caller) {
  auto o = hand_options();
  o.as_of = {day(10)};
  o.period_start = {day(11)};
  o.period_end = {day(12)}; // only day 11: deal 3's win
  const auto r = sf::backtest(hand_log(), o);
  EXPECT_EQ(r.start[0], day(11));
  EXPECT_EQ(r.periods.actual[0], 300.0);
  const auto w = sf::wins_in_period(hand_log(), day(11), day(14), day(14) - 1);
  EXPECT_EQ(w.total, 350.0);
  EXPECT_EQ(w.opportunity.size(), 2u);
  // As the log stood on day 12, deal 6 was not won yet.
  EXPECT_EQ(sf::wins_in_period(hand_log(), day(11), day(14), day(12)).total, 300.0);
}

namespace {
const sf::event_log& simulated_log() {
  static const sf::funnel f({"Qualify", "Propose"}, {"Won"}, {"Lost"});
  static const sf::event_log log = [] {
    sf::simulation_spec spec;
    spec.transition = {0, .6, 0, .4, 0, 0, .5, .5};
    spec.sojourn_mean_days = {1, 10, 1, 5, 1, 1, 20, 8};
    spec.n_opportunities = 600;
    spec.seed = 3;
    const auto ev = sf::simulate(f, spec);
    return sf::event_log::from_columns(f, ev.columns());
  }();
  return log;
}

sf::backtest_options simulated_options() {
  sf::backtest_options o;
  for (int k = 0; k < 7; ++k) o.as_of.push_back(1'704'067'200 + (120 + 30 * k) * 86'400 + 3600 * k);
  o.horizon_days = 30;
  o.fit.draws = 0;
  o.fit.groups = {"owner"};
  o.forecast.parameter_draws = 3;
  o.ladder = {0.2, 0.5};
  return o;
}
} // namespace

TEST(backtest, identical_for_any_thread_count) {
  auto o = simulated_options();
  const auto one = sf::backtest(simulated_log(), o);
  ASSERT_EQ(one.periods.method.size(), 7u * 4);
  EXPECT_GT(one.deals.p.size(), 100u);
  for (std::size_t threads : {2u, 4u}) {
    o.threads = threads;
    std::vector<double> seen;
    o.progress = [&](double f) {
      seen.push_back(f);
      return true;
    };
    const auto r = sf::backtest(simulated_log(), o);
    EXPECT_EQ(r.as_of, one.as_of);
    EXPECT_EQ(r.periods.expected, one.periods.expected);
    EXPECT_EQ(r.periods.p10, one.periods.p10);
    EXPECT_EQ(r.periods.p90, one.periods.p90);
    EXPECT_EQ(r.periods.pinball, one.periods.pinball);
    EXPECT_EQ(r.periods.actual, one.periods.actual);
    EXPECT_EQ(r.deals.opportunity, one.deals.opportunity);
    EXPECT_EQ(r.deals.p, one.deals.p);
    EXPECT_EQ(r.deals.won, one.deals.won);
    EXPECT_EQ(r.metrics.pinball, one.metrics.pinball);
    EXPECT_EQ(r.metrics.brier, one.metrics.brier);
    EXPECT_EQ(r.calibration.predicted, one.calibration.predicted);
    // progress: the fraction of dates done, each once, in increasing order.
    ASSERT_EQ(seen.size(), 7u);
    for (std::size_t i = 0; i < 7; ++i) EXPECT_DOUBLE_EQ(seen[i], static_cast<double>(i + 1) / 7);
  }
  // The pieces: score_period of each date appended and finalized is the whole.
  sf::backtest_result parts;
  for (std::size_t d = 0; d < o.as_of.size(); ++d) {
    auto one_date = o;
    one_date.as_of = {o.as_of[d]};
    one_date.progress = nullptr;
    sf::append(parts, sf::backtest(simulated_log(), one_date));
  }
  sf::finalize(parts, o.calibration_bins);
  EXPECT_EQ(parts.periods.expected, one.periods.expected);
  EXPECT_EQ(parts.metrics.mae, one.metrics.mae);
  EXPECT_EQ(parts.calibration.deals, one.calibration.deals);
}

TEST(backtest, progress_cancels) {
  for (std::size_t threads : {1u, 3u}) {
    auto o = simulated_options();
    o.threads = threads;
    o.progress = [](double f) { return f < 0.5; };
    EXPECT_THROW((void)sf::backtest(simulated_log(), o), sf::cancelled);
  }
}

TEST(backtest, bad_options_are_named) {
  auto expect_named = [](const sf::backtest_options& o, const std::string& name) {
    try {
      (void)sf::backtest(hand_log(), o);
      ADD_FAILURE() << "no error for " << name;
    } catch (const sf::invalid_options& e) {
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    }
  };
  auto o = hand_options();
  o.horizon_days = 0;
  expect_named(o, "horizon_days");
  o = hand_options();
  o.ladder = {0.1, 0.2};
  expect_named(o, "ladder has 2 probabilities but the funnel has 1 open stages");
  o = hand_options();
  o.ladder = {1.5};
  expect_named(o, "ladder[0]");
  o = hand_options();
  o.forecast.scenarios = 100;
  expect_named(o, "forecast.scenarios");
  o = hand_options();
  o.forecast.lattice_cells = 4;
  expect_named(o, "forecast.lattice_cells");
  o = hand_options();
  o.period_start = {day(10)};
  expect_named(o, "period_start and period_end");
  o.period_end = {day(9)};
  expect_named(o, "period_start must have one time per as_of");
  o = hand_options();
  o.calibration_bins = 0;
  expect_named(o, "calibration_bins");
  o = hand_options();
  o.threads = 0;
  expect_named(o, "threads");
  o = hand_options();
  o.fit.prior = -1;
  expect_named(o, "prior");
}
