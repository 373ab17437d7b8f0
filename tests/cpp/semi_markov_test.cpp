// The semi-Markov kernel and the tick-grid recursion on hand-worked logs.
#include "test_support.hpp"

#include <smartfunnel/error.hpp>
#include <smartfunnel/funnel_model.hpp>
#include <smartfunnel/semi_markov.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace sf = smartfunnel;
using sftest::day;
using sftest::table;

namespace {

constexpr double eps = 1e-12;

sf::fit_options unsmoothed(sf::time_point as_of) {
  sf::fit_options o;
  o.as_of = as_of;
  o.prior = 0.0;
  o.draws = 0;
  o.min_at_risk = 1;
  return o;
}

// One stage A; four stays: 1 -> Won, 2 -> Lost, 2 -> Won, 4 -> Won (no censoring).
sf::funnel one_stage() { return sf::funnel({"A"}, {"Won"}, {"Lost"}); }
table one_stage_log() {
  table t;
  t.add(1, "A", day(0)).add(1, "Won", day(1));
  t.add(2, "A", day(0)).add(2, "Lost", day(2));
  t.add(3, "A", day(0)).add(3, "Won", day(2));
  t.add(4, "A", day(0)).add(4, "Won", day(4));
  return t;
}

} // namespace

TEST(semi_markov, kernel_is_the_normalised_aalen_johansen_increments) {
  const auto model = sf::fit(one_stage_log().log(one_stage()), unsmoothed(day(10)));
  const auto& k = model.process().kernel(0);
  // Columns: A, Won, Lost. At risk 4, 3, 1 at durations 1, 2, 4: every tick up to 4 is supported.
  ASSERT_EQ(k.supported, 4);
  const std::size_t w = 3;
  EXPECT_NEAR(k.mass[1 * w + 1], 0.25, eps); // Won at 1: 1/4
  EXPECT_NEAR(k.mass[2 * w + 1], 0.25, eps); // Won at 2
  EXPECT_NEAR(k.mass[2 * w + 2], 0.25, eps); // Lost at 2
  EXPECT_NEAR(k.mass[4 * w + 1], 0.25, eps); // Won at 4
  EXPECT_NEAR(k.tail_mass[1] + k.tail_mass[2], 0.0, eps);
}

TEST(semi_markov, won_within_is_the_cumulative_win_mass) {
  const auto model = sf::fit(one_stage_log().log(one_stage()), unsmoothed(day(10)));
  const auto won = model.process().won_within(5);
  // W(h) = P(won within h ticks of entering A): 0, 1/4, 1/2, 1/2, 3/4, 3/4.
  const std::vector<double> want{0.0, 0.25, 0.5, 0.5, 0.75, 0.75};
  for (std::size_t h = 0; h < want.size(); ++h) EXPECT_NEAR(won[h], want[h], eps) << h;
}

TEST(semi_markov, age_conditions_destination_and_remaining_time) {
  const auto model = sf::fit(one_stage_log().log(one_stage()), unsmoothed(day(10)));
  const auto& proc = model.process();
  const auto won = proc.won_within(4);
  std::vector<double> scratch;
  // Still in A at age 2: ahead are Won at 2, Lost at 2, Won at 4 (1/4 each), so 1/3 each.
  EXPECT_NEAR(proc.p_win_within(0, 2, 0, won, scratch), 1.0 / 3, eps); // leaves today
  EXPECT_NEAR(proc.p_win_within(0, 2, 1, won, scratch), 1.0 / 3, eps);
  EXPECT_NEAR(proc.p_win_within(0, 2, 2, won, scratch), 2.0 / 3, eps); // by duration 4
  EXPECT_NEAR(proc.p_win_ever(0, 2), 2.0 / 3, eps);
  EXPECT_NEAR(proc.p_win_ever(0, 0), 0.75, eps);
  // Vectorised through the model, with a horizon.
  const std::vector<std::int32_t> stage{0, 0, 1, 2};
  const std::vector<double> age{2, 0, 0, 0}, horizon{2, 1, 0, 5};
  std::vector<double> out(4);
  model.p_win(stage, age, horizon, out);
  EXPECT_NEAR(out[0], 2.0 / 3, eps);
  EXPECT_NEAR(out[1], 0.25, eps);
  EXPECT_EQ(out[2], 1.0); // Won
  EXPECT_EQ(out[3], 0.0); // Lost
}

TEST(semi_markov, unresolved_mass_waits_beyond_the_exits_seen) {
  // Ten deals enter A on day 0: one is won after a day, nine are still open on day 100. The
  // eventual estimate of the row is p(Won) = 1 (the only exit seen), but nine tenths of the stays
  // are known to last 100 days or more: within the data's reach P(won within h) is the
  // Aalen-Johansen F_Won(h) = 1/10, never the eventual 1 spread over the one exit's timing.
  table t;
  t.add(1, "A", day(0)).add(1, "Won", day(1));
  for (int i = 2; i <= 10; ++i) t.add(i, "A", day(0));
  const auto model = sf::fit(t.log(one_stage()), unsmoothed(day(100)));
  const auto& k = model.process().kernel(0);
  ASSERT_EQ(k.supported, 100); // nine at risk until 100
  EXPECT_NEAR(k.mass[1 * 3 + 1], 0.1, eps);
  // The mixture-cure tail, fitted from step 1 (the last min_at_risk = 1 exit): one exit at once,
  // (1 - pi) h, and nine stays open 100 steps on, pi + (1 - pi)(1 - h)^100 each. The likelihood
  // is largest at h = 1, where it is (1 - pi) pi^9: pi = 9/10. Past 100 steps nothing active is
  // left, the nine tenths are dead: P(won ever) = 1/10, the limit of P(won within h).
  EXPECT_EQ(k.tail_start, 1);
  EXPECT_NEAR(k.dead_share, 0.9, 1e-9);
  EXPECT_NEAR(k.tail_hazard, 1.0, 1e-9);
  EXPECT_NEAR(k.tail_mass[1], 0.0, 1e-9);
  EXPECT_NEAR(k.tail_dead, 0.9, 1e-9);
  EXPECT_LT(k.dead_low, 0.9);
  EXPECT_GT(k.dead_high, 0.9);
  const auto won = model.process().won_within(101);
  EXPECT_NEAR(won[2], 0.1, eps);
  EXPECT_NEAR(won[100], 0.1, eps);
  EXPECT_NEAR(won[101], 0.1, 1e-9);
  EXPECT_NEAR(model.process().p_win_ever(0, 0), 0.1, 1e-9);
  EXPECT_NEAR(model.process().win_ever()[0], 0.1, 1e-9);
  // A deal already 50 days in A: the one exit is behind it, and it is dead.
  std::vector<double> scratch;
  EXPECT_NEAR(model.process().p_win_within(0, 50, 30, won, scratch), 0.0, eps);
  EXPECT_NEAR(model.process().p_win_ever(0, 50), 0.0, 1e-9);
}

TEST(semi_markov, stale_policy_loses_deals_at_the_cap) {
  const auto model = sf::fit(one_stage_log().log(one_stage()), unsmoothed(day(10)));
  // Stale after 3 ticks: the Won at duration 4 becomes Lost at 3, so P(ever) = 1/2.
  const auto proc = sf::semi_markov::from_group(model.funnel(), model.overall(), model.options(), 3);
  EXPECT_NEAR(proc.p_win_ever(0, 0), 0.5, eps);
  EXPECT_NEAR(proc.p_win_ever(0, 3), 0.0, eps); // already stale
  EXPECT_NEAR(proc.win_ever()[0], 0.5, eps);
}

TEST(semi_markov, zero_tick_moves_are_solved_within_the_tick) {
  // A moves to B the same day; B is won the next day; also A -> B -> A -> B on one day.
  const sf::funnel f({"A", "B"}, {"Won"}, {"Lost"});
  table t;
  t.add(1, "A", day(0)).add(1, "B", day(0, 1)).add(1, "Won", day(1, 2));
  t.add(2, "A", day(0)).add(2, "B", day(0, 1)).add(2, "Won", day(1, 2));
  const auto model = sf::fit(t.log(f), unsmoothed(day(10)));
  const auto won = model.process().won_within(2);
  // W_A(0) = 0 (B still needs a day), W_A(1) = 1; W_B(1) = 1.
  EXPECT_NEAR(won[0 * 2 + 0], 0.0, eps);
  EXPECT_NEAR(won[1 * 2 + 0], 1.0, eps);
  EXPECT_NEAR(won[1 * 2 + 1], 1.0, eps);
}

TEST(semi_markov, horizons_and_dense_kernels_are_bounded) {
  const auto model = sf::fit(one_stage_log().log(one_stage()), unsmoothed(day(10)));
  EXPECT_THROW((void)model.process().won_within(sf::semi_markov::max_horizon_ticks + 1), sf::invalid_options);
  EXPECT_NO_THROW((void)model.process().won_within(1000));
  EXPECT_LT(model.process().kernel(0).supported, sf::semi_markov::max_kernel_ticks);
}

TEST(semi_markov, zombie_deals_are_recovered_as_the_dead_share) {
  // Simulated: 4000 deals enter A uniformly over two years; three in ten are zombies (never
  // leave), the rest leave after D = 1 + Geometric(h0) days (h0 = 1/20), won with probability 0.6.
  // As of day 730.
  constexpr double pi0 = 0.3, h0 = 0.05, p_won = 0.6;
  std::mt19937_64 rng(12345);
  std::uniform_int_distribution<int> entry(0, 719);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::geometric_distribution<int> geo(h0);
  table t;
  int longest_closed = 0;
  for (int i = 1; i <= 4000; ++i) {
    const int start = entry(rng);
    t.add(i, "A", day(start));
    if (u(rng) < pi0) continue;
    const int d = 1 + geo(rng);
    const bool won = u(rng) < p_won;
    if (start + d > 730) continue; // still open as of day 730
    t.add(i, won ? "Won" : "Lost", day(start + d));
    longest_closed = std::max(longest_closed, d);
  }
  auto o = unsmoothed(day(730));
  o.min_at_risk = 10;
  const auto model = sf::fit(t.log(one_stage()), o);
  const auto& proc = model.process();
  const auto& k = proc.kernel(0);
  // The true dead share among the stays still in A at the window's first step lo:
  // pi0 / (pi0 + (1 - pi0)(1 - h0)^(lo - 1)) (an active stay is there with (1 - h0)^(lo - 1)).
  const double lo = static_cast<double>(k.tail_start);
  const double true_pi = pi0 / (pi0 + (1 - pi0) * std::pow(1 - h0, lo - 1));
  EXPECT_GE(true_pi, k.dead_low);
  EXPECT_LE(true_pi, k.dead_high);
  EXPECT_LT(k.dead_high - k.dead_low, 0.15);
  EXPECT_NEAR(k.tail_hazard, h0, 0.01);
  // Fresh deals: 0.7 * 0.6 are won eventually (the zombies never).
  EXPECT_NEAR(proc.win_ever()[0], (1 - pi0) * p_won, 0.03);
  EXPECT_NEAR(model.overall().chain.win[0], proc.win_ever()[0], 1e-9);
  // Deals older than every closed stay, and at the tail's start: P(won ever) against the truth
  // p_won (1 - pi0)(1 - h0)^(a - 1) / (pi0 + (1 - pi0)(1 - h0)^(a - 1)), and its consistency with
  // the time-bounded probabilities (monotone in the horizon, the year's probability its limit).
  const auto won = proc.won_within(3650);
  std::vector<double> scratch;
  for (const std::int64_t a : {k.tail_start, static_cast<std::int64_t>(longest_closed) + 1}) {
    const double s = (1 - pi0) * std::pow(1 - h0, static_cast<double>(a - 1));
    const double truth = p_won * s / (pi0 + s);
    const double ever = proc.p_win_ever(0, a);
    EXPECT_NEAR(ever, truth, 0.05) << a;
    double prev = 0.0;
    for (const std::int64_t h : {0, 30, 90, 365, 3650}) {
      const double p = proc.p_win_within(0, a, h, won, scratch);
      EXPECT_GE(p, prev - 1e-15) << a << " " << h;
      EXPECT_LE(p, ever + 1e-12) << a << " " << h;
      prev = p;
    }
    EXPECT_NEAR(ever - proc.p_win_within(0, a, 365, won, scratch), 0.0, 1e-3) << a;
  }
}
