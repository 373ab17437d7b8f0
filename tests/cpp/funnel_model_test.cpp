// Tests of fit() / funnel_model against small logs worked out by hand.
//
// Conventions used in every hand computation below: tick = 1 day, durations are floor((end -
// entry) / tick), a stay ends at the next event in another stage (consecutive events in the same
// stage merge into one stay), stays still open at as_of are censored there, and at tied durations
// exits are counted before censorings:
//   n(t)   = stays with duration >= t (at risk),
//   S(t)   = prod_{u <= t} (1 - d(u) / n(u))            (Kaplan-Meier, all causes),
//   F_k(t) = sum_{u <= t} S(u-) d_k(u) / n(u)           (Aalen-Johansen),
//   p_k    = F_k(tau) / (1 - S(tau)),  tau the last exit, unresolved = S(tau),
//   naive_k = d_k / sum d.
#include "test_support.hpp"

#include <smartfunnel/error.hpp>
#include <smartfunnel/funnel_model.hpp>
#include <smartfunnel/simulate.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

namespace sf = smartfunnel;
using sftest::day;
using sftest::table;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

constexpr double eps = 1e-12;
constexpr double NaN = std::numeric_limits<double>::quiet_NaN();

// Codes: A 0, B 1, C 2, Won 3, Lost 4, Disq 5. Outcome columns: A 0, B 1, C 2, Won 3, Lost/Disq 4.
sf::funnel hand_funnel() { return sf::funnel({"A", "B", "C"}, {"Won"}, {"Lost", "Disq"}, "hand"); }
constexpr std::size_t A = 0, B = 1, C = 2, WON = 3, LOST = 4, DISQ = 5;

void expect_row(const std::vector<double>& got, const std::vector<double>& want, const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (std::size_t k = 0; k < want.size(); ++k) {
    if (std::isnan(want[k]))
      EXPECT_TRUE(std::isnan(got[k])) << what << "[" << k << "] = " << got[k];
    else
      EXPECT_NEAR(got[k], want[k], eps) << what << "[" << k << "]";
  }
}

// The main hand-worked log, as of day 100:
//   o1: A@0, B@2, Won@10                     A: 2 -> B          B: 8 -> Won
//   o2: A@0, Lost@3d5h                       A: 3 -> Lost (3 days 5 hours floors to 3)
//   o3: A@97                                 A: 3 censored (tied with o2's exit at 3)
//   o4: A@10, A@12, B@15, A@20, Lost@26      A: 5 -> B (A@12 merges into the stay)
//                                            B: 5 -> A (regression)
//                                            A: 6 -> Lost (re-entry)
//   o5: A@99                                 A: 1 censored (shorter than every exit)
//   o6: A@0, Won@7d23h                       A: 7 -> Won (skips B and C)
//   o7: A@0, C@5, Disq@9                     A: 5 -> C (skip)   C: 4 -> Disq
//   o8: A@90                                 A: 10 censored (after the last exit)
table main_table() {
  table t;
  t.add(1, "A", day(0)).add(1, "B", day(2)).add(1, "Won", day(10));
  t.add(2, "A", day(0)).add(2, "Lost", day(3, 5));
  t.add(3, "A", day(97));
  t.add(4, "A", day(10))
      .add(4, "A", day(12))
      .add(4, "B", day(15))
      .add(4, "A", day(20))
      .add(4, "Lost", day(26));
  t.add(5, "A", day(99));
  t.add(6, "A", day(0)).add(6, "Won", day(7, 23));
  t.add(7, "A", day(0)).add(7, "C", day(5)).add(7, "Disq", day(9));
  t.add(8, "A", day(90));
  return t;
}

sf::fit_options unsmoothed(sf::time_point as_of) {
  sf::fit_options o;
  o.as_of = as_of;
  o.prior = 0.0;
  o.draws = 0;
  return o;
}

} // namespace

// ---------------------------------------------------------------------------------------------
// Sufficient statistics

TEST(fit_statistics, stays_of_the_hand_log) {
  const auto stats = sf::collect_statistics(main_table().log(hand_funnel()), unsmoothed(day(100)));
  EXPECT_EQ(stats.n_opportunities, 8u);
  EXPECT_EQ(stats.n_stays, 12u); // A 9, B 2, C 1
  ASSERT_EQ(stats.cells.size(), 1u);
  const auto& cells = stats.cells.at({});
  const std::size_t w = 7; // 6 codes + censored
  const std::size_t cens = 6;
  // Stage A: (1,c) (2,B) (3,Lost) (3,c) (5,B) (5,C) (6,Lost) (7,Won) (10,c)
  EXPECT_EQ(cells[A].duration, (std::vector<std::int64_t>{1, 2, 3, 5, 6, 7, 10}));
  std::vector<std::int64_t> want(7 * w, 0);
  want[0 * w + cens] = 1;
  want[1 * w + B] = 1;
  want[2 * w + LOST] = 1;
  want[2 * w + cens] = 1;
  want[3 * w + B] = 1;
  want[3 * w + C] = 1;
  want[4 * w + LOST] = 1;
  want[5 * w + WON] = 1;
  want[6 * w + cens] = 1;
  EXPECT_EQ(cells[A].count, want);
  std::vector<double> want_w(want.begin(), want.end());
  EXPECT_EQ(cells[A].weight, want_w);
  EXPECT_EQ(cells[A].weight_sq, want_w);
  // Stage B: (5, A) (8, Won). Stage C: (4, Disq).
  EXPECT_EQ(cells[B].duration, (std::vector<std::int64_t>{5, 8}));
  EXPECT_EQ(cells[B].count, (std::vector<std::int64_t>{1, 0, 0, 0, 0, 0, 0, /**/ 0, 0, 0, 1, 0, 0, 0}));
  EXPECT_EQ(cells[C].duration, (std::vector<std::int64_t>{4}));
  EXPECT_EQ(cells[C].count, (std::vector<std::int64_t>{0, 0, 0, 0, 0, 1, 0}));
}

TEST(fit_statistics, tick_length_sets_the_duration_unit) {
  // With hourly ticks o2's A stay lasts 3 * 24 + 5 = 77 ticks.
  table t;
  t.add(2, "A", day(0)).add(2, "Lost", day(3, 5));
  auto o = unsmoothed(day(3, 5));
  o.tick_seconds = 3600;
  const auto stats = sf::collect_statistics(t.log(hand_funnel()), o);
  EXPECT_EQ(stats.cells.at({})[A].duration, (std::vector<std::int64_t>{77}));
}

TEST(fit_options, invalid_values_are_rejected_naming_the_field) {
  const auto log = main_table().log(hand_funnel());
  auto bad = [&](auto change, const char* field) {
    sf::fit_options o;
    change(o);
    try {
      (void)sf::fit(log, o);
      ADD_FAILURE() << field;
    } catch (const sf::invalid_options& e) {
      EXPECT_THAT(e.what(), HasSubstr(field));
    }
  };
  bad([](sf::fit_options& o) { o.tick_seconds = 0; }, "tick_seconds");
  bad([](sf::fit_options& o) { o.prior = -1; }, "prior");
  bad([](sf::fit_options& o) { o.prior = NaN; }, "prior");
  bad([](sf::fit_options& o) { o.half_life_seconds = 0.0; }, "half_life");
  bad([](sf::fit_options& o) { o.level = 1.0; }, "level");
  bad([](sf::fit_options& o) { o.level = 0.0; }, "level");
  bad([](sf::fit_options& o) { o.groups = {"owner", "owner"}; }, "owner");
  bad([](sf::fit_options& o) { o.groups = {"segment"}; }, "segment"); // no such attribute
  bad([](sf::fit_options& o) { o.groups = {"owner"}; }, "owner");     // log has no owners
}

// ---------------------------------------------------------------------------------------------
// Kaplan-Meier / Aalen-Johansen on the hand log

TEST(fit, stage_with_skips_regressions_reentries_censoring_and_ties) {
  const auto model = sf::fit(main_table().log(hand_funnel()), unsmoothed(day(100)));
  const auto& e = model.overall().stages[A];
  // Distinct durations and at risk: 9 stays; 1 leaves the risk set at 1, 1 at 2, 2 at 3, 2 at 5...
  EXPECT_EQ(e.duration, (std::vector<std::int64_t>{1, 2, 3, 5, 6, 7, 10}));
  expect_row(e.at_risk, {9, 8, 7, 5, 3, 2, 1}, "at_risk");
  // t=1: censoring only, S=1.            t=2: 1 exit (B) of 8:   S = 7/8,      F_B  = 1/8
  // t=3: 1 exit (Lost) of 7, and the censoring at 3 still counts as at risk (exits first):
  //      S = 7/8 * 6/7 = 3/4,  F_Lost = 7/8 * 1/7 = 1/8
  // t=5: 2 exits (B, C) of 5:  S = 3/4 * 3/5 = 9/20,  F_B += 3/4 * 1/5 = 3/20, F_C = 3/20
  // t=6: 1 exit (Lost) of 3:   S = 9/20 * 2/3 = 3/10, F_Lost += 9/20 * 1/3 = 3/20
  // t=7: 1 exit (Won) of 2:    S = 3/10 * 1/2 = 3/20, F_Won = 3/10 * 1/2 = 3/20
  // t=10: censoring only.
  expect_row(e.survival, {1.0, 7.0 / 8, 3.0 / 4, 9.0 / 20, 3.0 / 10, 3.0 / 20, 3.0 / 20}, "survival");
  // Incidence rows (A, B, C, Won, Lost, Disq).
  const std::vector<std::vector<double>> F{{0, 0, 0, 0, 0, 0},
                                           {0, 1.0 / 8, 0, 0, 0, 0},
                                           {0, 1.0 / 8, 0, 0, 1.0 / 8, 0},
                                           {0, 11.0 / 40, 3.0 / 20, 0, 1.0 / 8, 0},
                                           {0, 11.0 / 40, 3.0 / 20, 0, 11.0 / 40, 0},
                                           {0, 11.0 / 40, 3.0 / 20, 3.0 / 20, 11.0 / 40, 0},
                                           {0, 11.0 / 40, 3.0 / 20, 3.0 / 20, 11.0 / 40, 0}};
  ASSERT_EQ(e.incidence.size(), 7u * 6u);
  for (std::size_t r = 0; r < F.size(); ++r)
    expect_row(std::vector<double>(e.incidence.begin() + static_cast<std::ptrdiff_t>(r * 6),
                                   e.incidence.begin() + static_cast<std::ptrdiff_t>((r + 1) * 6)),
               F[r], "incidence");
  // tau = 7, S(tau) = 3/20, 1 - S(tau) = 17/20:
  // p_B = (11/40) / (17/20) = 11/34, p_C = (3/20) / (17/20) = 3/17, p_Won = 3/17, p_Lost = 11/34.
  EXPECT_NEAR(e.unresolved, 3.0 / 20, eps);
  expect_row(e.p, {0, 11.0 / 34, 3.0 / 17, 3.0 / 17, 11.0 / 34, 0}, "p");
  // Naive closed-only: exits B 2, C 1, Won 1, Lost 2 of 6.
  expect_row(e.naive, {0, 1.0 / 3, 1.0 / 6, 1.0 / 6, 1.0 / 3, 0}, "naive");
  EXPECT_EQ(e.exits, (std::vector<std::int64_t>{0, 2, 1, 1, 2, 0}));
  EXPECT_EQ(e.n_stays, 9);
  EXPECT_EQ(e.n_exits, 6);
  EXPECT_EQ(e.n_censored, 3);
  // Unsmoothed: the chain's row is p itself.
  expect_row(e.probability, e.p, "probability");
  EXPECT_TRUE(e.alpha.empty());
  // Kish effective size of the exits' IPCW weights S(u-)/n(u): 1/8, 1/8, 3/20 (x4):
  // (sum w)^2 / sum w^2 = (17/20)^2 / (2/64 + 4 * 9/400) = (289/400) / (97/800) = 578/97.
  EXPECT_NEAR(e.effective_n, 578.0 / 97, 1e-10);
  // Mean sojourn given the destination, sum_u u dF_k(u) / F_k(tau):
  // B: (2 * 1/8 + 5 * 3/20) / (11/40) = 40/11;  Lost: (3 * 1/8 + 6 * 3/20) / (11/40) = 51/11.
  expect_row(e.mean_sojourn, {NaN, 40.0 / 11, 5, 7, 51.0 / 11, NaN}, "mean_sojourn");
}

TEST(fit, quantiles_and_curve_lookups) {
  const auto model = sf::fit(main_table().log(hand_funnel()), unsmoothed(day(100)));
  const auto& e = model.overall().stages[A];
  // Median: the first t with S(t) <= 1/2: S(3) = 3/4, S(5) = 9/20 -> 5.
  EXPECT_EQ(e.quantile(0.5), 5.0);
  // 25%: S(t) <= 3/4, reached exactly at t = 3.
  EXPECT_EQ(e.quantile(0.25), 3.0);
  // 80%: S(t) <= 1/5: S(7) = 3/20 -> 7.   90%: S never gets to 1/10 -> NaN.
  EXPECT_EQ(e.quantile(0.8), 7.0);
  EXPECT_TRUE(std::isnan(e.quantile(0.9)));
  // S just before t.
  EXPECT_EQ(e.survival_before(0), 1.0);
  EXPECT_EQ(e.survival_before(1), 1.0);
  EXPECT_NEAR(e.survival_before(4), 3.0 / 4, eps);
  EXPECT_NEAR(e.survival_before(5), 3.0 / 4, eps);
  EXPECT_NEAR(e.survival_before(6), 9.0 / 20, eps);
  EXPECT_NEAR(e.survival_before(100), 3.0 / 20, eps);
  EXPECT_NEAR(e.incidence_before(B, 5), 1.0 / 8, eps);
  EXPECT_NEAR(e.incidence_before(B, 6), 11.0 / 40, eps);
  EXPECT_EQ(e.incidence_before(B, 2), 0.0);
  // Stays with duration >= t.
  EXPECT_EQ(e.at_risk_at(0), 9.0);
  EXPECT_EQ(e.at_risk_at(4), 5.0);
  EXPECT_EQ(e.at_risk_at(10), 1.0);
  EXPECT_EQ(e.at_risk_at(11), 0.0);
  // Stage B: exits at 5 (to A) and 8 (to Won) of 2: S(5) = 1/2 -> median 5.
  EXPECT_EQ(model.overall().stages[B].quantile(0.5), 5.0);
}

TEST(fit, uncensored_stages_give_plain_proportions) {
  const auto model = sf::fit(main_table().log(hand_funnel()), unsmoothed(day(100)));
  const auto& b = model.overall().stages[B];
  // B: 5 -> A, 8 -> Won, nothing censored: p = naive = 1/2 each; weights 1/2, 1/2 -> n_eff 2.
  expect_row(b.p, {0.5, 0, 0, 0.5, 0, 0}, "B.p");
  expect_row(b.naive, {0.5, 0, 0, 0.5, 0, 0}, "B.naive");
  EXPECT_NEAR(b.unresolved, 0.0, eps);
  EXPECT_NEAR(b.effective_n, 2.0, eps);
  const auto& c = model.overall().stages[C];
  expect_row(c.p, {0, 0, 0, 0, 0, 1}, "C.p");
  EXPECT_NEAR(c.effective_n, 1.0, eps);
}

TEST(fit, flags_follow_the_thresholds) {
  auto o = unsmoothed(day(100));
  o.min_exits = 6;
  o.unresolved_threshold = 0.2;
  auto model = sf::fit(main_table().log(hand_funnel()), o);
  // A has 6 exits, unresolved 3/20 = 0.15.
  EXPECT_FALSE(model.overall().stages[A].insufficient_history);
  EXPECT_FALSE(model.overall().stages[A].unresolved_high);
  EXPECT_TRUE(model.overall().stages[B].insufficient_history); // 2 exits
  EXPECT_TRUE(model.overall().insufficient_history());
  o.min_exits = 7;
  o.unresolved_threshold = 0.1;
  model = sf::fit(main_table().log(hand_funnel()), o);
  EXPECT_TRUE(model.overall().stages[A].insufficient_history);
  EXPECT_TRUE(model.overall().stages[A].unresolved_high);
  EXPECT_FALSE(model.overall().stages[B].unresolved_high); // unresolved 0
}

TEST(fit, wilson_interval_without_prior) {
  const auto model = sf::fit(main_table().log(hand_funnel()), unsmoothed(day(100)));
  const auto& b = model.overall().stages[B];
  // Wilson bounds x solve (p - x)^2 = z^2 x (1 - x) / n with p = 1/2, n = 2, z = z_{0.95}.
  const double z = 1.6448536269514722, n = 2.0, p = 0.5;
  for (double x : {b.low[WON], b.high[WON]}) EXPECT_NEAR((p - x) * (p - x) * n, z * z * x * (1 - x), 1e-12);
  EXPECT_LT(b.low[WON], 0.5);
  EXPECT_GT(b.high[WON], 0.5);
  // The interval of p = 1/2 is symmetric about 1/2.
  EXPECT_NEAR(b.low[WON] + b.high[WON], 1.0, 1e-12);
  // A destination never taken: p = 0, lower bound 0.
  EXPECT_NEAR(b.low[LOST], 0.0, 1e-15);
}

// ---------------------------------------------------------------------------------------------
// Absorbing chain of the hand log

TEST(fit, win_probability_visits_and_time_to_close_of_the_hand_log) {
  const auto model = sf::fit(main_table().log(hand_funnel()), unsmoothed(day(100)));
  const auto& g = model.overall();
  // Aggregated rows (A, B, C, Won, Lost):
  //   A: B 11/34, C 6/34, Won 6/34, Lost 11/34     B: A 1/2, Won 1/2     C: Lost 1 (Disq)
  const auto P = g.transition_matrix(model.funnel());
  expect_row(P,
             {0, 11.0 / 34, 6.0 / 34, 6.0 / 34, 11.0 / 34, //
              0.5, 0, 0, 0.5, 0,                           //
              0, 0, 0, 0, 1},
             "transition_matrix");
  // Win: w_C = 0; w_B = 1/2 + w_A / 2; w_A = 6/34 + 11/34 w_B + 6/34 w_C
  //   => w_A = 6/34 + 11/68 + 11/68 w_A  => (57/68) w_A = 23/68  => w_A = 23/57, w_B = 40/57.
  expect_row(g.chain.win, {23.0 / 57, 40.0 / 57, 0.0}, "win");
  // Visits: v_C = 1; v_B = 1 + v_A / 2; v_A = 1 + 11/34 v_B + 6/34 v_C
  //   => (57/68) v_A = 3/2  => v_A = 34/19, v_B = 36/19.
  expect_row(g.chain.visits, {34.0 / 19, 36.0 / 19, 1.0}, "visits");
  // Ticks: mean sojourn of a visit m_A = sum_k p_k * mean_k = (11*40/11 + 6*5 + 6*7 + 11*51/11)/34
  //   = 163/34, m_B = (5 + 8)/2 = 13/2, m_C = 4.  T_C = 4; T_B = 13/2 + T_A/2;
  //   T_A = 163/34 + 11/34 T_B + 6/34 * 4  => (57/68) T_A = 517/68 => T_A = 517/57, T_B = 629/57.
  expect_row(g.chain.ticks_to_close, {517.0 / 57, 629.0 / 57, 4.0}, "ticks_to_close");
  // Given a win (Doob transform p~_sj = p_sj w_j / w_s):
  //   from A: Won 171/391 (sojourn 7), B 220/391 (sojourn 40/11);
  //   from B: Won 57/80 (sojourn 8), A 23/80 (sojourn 5).
  //   W_A = 1997/391 + 220/391 W_B, W_B = 571/80 + 23/80 W_A => W_A = 14269/1311, W_B = 2926/285.
  //   C never wins: NaN.
  expect_row(g.chain.ticks_to_win, {14269.0 / 1311, 2926.0 / 285, NaN}, "ticks_to_win");
}

TEST(fit, p_win_at_age_zero_and_for_terminal_codes) {
  const auto model = sf::fit(main_table().log(hand_funnel()), unsmoothed(day(100)));
  EXPECT_NEAR(model.p_win(static_cast<sf::stage_code>(A), 0.0), 23.0 / 57, eps);
  EXPECT_NEAR(model.p_win(static_cast<sf::stage_code>(B), 0.0), 40.0 / 57, eps);
  EXPECT_NEAR(model.p_win(static_cast<sf::stage_code>(C), 0.0), 0.0, eps);
  EXPECT_EQ(model.p_win(static_cast<sf::stage_code>(WON), 0.0), 1.0);
  EXPECT_EQ(model.p_win(static_cast<sf::stage_code>(LOST), 3.0), 0.0);
  EXPECT_EQ(model.p_win(static_cast<sf::stage_code>(DISQ), 0.0), 0.0);
  EXPECT_TRUE(std::isnan(model.p_win(static_cast<sf::stage_code>(A), NaN)));
  // Vectorised: codes past the end or negative give NaN.
  const std::vector<std::int32_t> codes{0, 1, 3, 4, 5, 6, -1};
  const std::vector<double> ages(codes.size(), 0.0);
  std::vector<double> out(codes.size());
  model.p_win(codes, ages, out);
  expect_row(out, {23.0 / 57, 40.0 / 57, 1.0, 0.0, 0.0, NaN, NaN}, "p_win vector");
  std::vector<double> short_out(2);
  EXPECT_THROW(model.p_win(codes, ages, short_out), std::invalid_argument);
}

TEST(fit, p_win_conditions_on_the_age_in_stage) {
  auto o = unsmoothed(day(100));
  o.min_at_risk = 1;
  auto model = sf::fit(main_table().log(hand_funnel()), o);
  const auto a = static_cast<sf::stage_code>(A);
  // Age 4: the stays still in A are those with duration >= 5 (5B, 5C, 6Lost, 7Won, 10c). The
  // kernel holds the Aalen-Johansen increments still ahead, 3/20 for each of B, C, Lost and Won,
  // and the unresolved mass S(tau) = 3/20 in its tail, with the row's mix p = (B 11/34, C 6/34,
  // Lost 11/34, Won 6/34). Ahead, in units of 3/20 / 34: B 34 + 11, C 34 + 6, Lost 45, Won 40
  // (170 in all), so P(win) = (45 w_B + 40 w_C + 40) / 170 = (45 * 40/57 + 40) / 170 = 8/19.
  EXPECT_NEAR(model.p_win(a, 4.0), 8.0 / 19, eps);
  EXPECT_NEAR(model.p_win(a, 4.9), 8.0 / 19, eps); // ages are floored to whole ticks
  // Age 6: ahead are Lost (6) and Won (7), 3/20 each, and the tail: B 11, C 6, Lost 34 + 11,
  // Won 34 + 6 (102 in all): P(win) = (11 * 40/57 + 40) / 102 = 80/171.
  EXPECT_NEAR(model.p_win(a, 6.0), 80.0 / 171, eps);
  // Age 1: nothing has left yet; the unconditional mix.
  EXPECT_NEAR(model.p_win(a, 1.0), 23.0 / 57, eps);

  // With min_at_risk = 5 the last supported age is 5 (at risk 5 there, 3 at 6). The kernel holds
  // the increments up to 5 (B 1/8 + 3/20, C 3/20, Lost 1/8); the tail holds p minus them:
  // (B 33, C 18, Lost 135, Won 120) / 680, in all S(5) = 9/20. Past age 5 the mix is the tail's,
  // weighted by the 2 exits the data shows after age 5, smoothed toward the row with 5
  // pseudo-exits: P(win) = (2 * (33 * 40/57 + 120) / 306 + 5 * 23/57) / 7 = 505/1197.
  o.min_at_risk = 5;
  model = sf::fit(main_table().log(hand_funnel()), o);
  EXPECT_NEAR(model.p_win(a, 6.0), 505.0 / 1197, eps);
  EXPECT_NEAR(model.p_win(a, 50.0), 505.0 / 1197, eps);
  // With the default (10) no age has enough stays at risk: every age uses the unconditional mix.
  model = sf::fit(main_table().log(hand_funnel()), unsmoothed(day(100)));
  EXPECT_NEAR(model.p_win(a, 6.0), 23.0 / 57, eps);
}

// ---------------------------------------------------------------------------------------------
// as_of

TEST(fit, as_of_censors_at_the_analysis_date) {
  // As of day 8: o1 A: 2 -> B, then B censored at 6; o2 A: 3 -> Lost; o6 A: 7 -> Won (7d23h);
  // o7 A: 5 -> C, then C censored at 3. o3, o4, o5, o8 are not created yet.
  const auto model = sf::fit(main_table().log(hand_funnel()), unsmoothed(day(8)));
  EXPECT_EQ(model.statistics().n_opportunities, 4u);
  EXPECT_EQ(model.statistics().n_stays, 6u);
  EXPECT_EQ(model.as_of(), day(8));
  const auto& a = model.overall().stages[A];
  expect_row(a.p, {0, 0.25, 0.25, 0.25, 0.25, 0}, "A.p");
  EXPECT_EQ(a.n_censored, 0);
  EXPECT_EQ(model.overall().stages[B].n_censored, 1);
  EXPECT_EQ(model.overall().stages[B].n_exits, 0);
  EXPECT_EQ(model.overall().stages[C].n_censored, 1);
  EXPECT_EQ(model.overall().stages[C].duration, (std::vector<std::int64_t>{3}));
}

TEST(fit, as_of_equals_a_fit_of_the_truncated_log) {
  const auto f = hand_funnel();
  const auto full = main_table();
  for (std::int64_t cut : {3, 8, 12, 26, 95}) {
    table truncated;
    for (std::size_t r = 0; r < full.opp.size(); ++r)
      if (full.time[r] <= day(cut))
        truncated.add(full.opp[r], full.stage_names[static_cast<std::size_t>(full.stage[r])], full.time[r]);
    auto o = unsmoothed(day(cut));
    o.prior = 1.0; // a smoothed fit so that no stage row is undefined
    const auto a = sf::fit(full.log(f), o);
    const auto b = sf::fit(truncated.log(f), o);
    EXPECT_TRUE(a.statistics() == b.statistics()) << "as of day " << cut;
    for (std::size_t s = 0; s < 3; ++s)
      expect_row(a.overall().stages[s].probability, b.overall().stages[s].probability, "probability");
  }
}

TEST(fit, events_after_as_of_cannot_change_the_fit) {
  const auto f = hand_funnel();
  auto changed = main_table();
  // After day 8: o1 now loses on day 10 instead of winning; a new deal appears on day 9; o7's
  // Disq on day 9 becomes a move to B.
  changed.stage[2] = table::intern(changed.stage_names, "Lost");
  changed.add(9, "A", day(9)).add(9, "Won", day(30));
  for (std::size_t r = 0; r < changed.opp.size(); ++r)
    if (changed.opp[r] == 7 && changed.time[r] == day(9))
      changed.stage[r] = table::intern(changed.stage_names, "B");
  auto o = unsmoothed(day(8));
  o.prior = 1.0;
  const auto a = sf::fit(main_table().log(f), o);
  const auto b = sf::fit(changed.log(f), o);
  EXPECT_TRUE(a.statistics() == b.statistics());
  // ...while a later as_of sees the change.
  o.as_of = day(100);
  EXPECT_FALSE(sf::fit(main_table().log(f), o).statistics() == sf::fit(changed.log(f), o).statistics());
}

TEST(fit, default_as_of_is_the_last_event) {
  const auto model = sf::fit(main_table().log(hand_funnel()), {});
  EXPECT_EQ(model.as_of(), day(99));
}

// ---------------------------------------------------------------------------------------------
// Prior

namespace {
// Uncensored log as of day 50:
//   p1: A@0, B@3, Won@10   A: 3 -> B   B: 7 -> Won
//   p2: A@0, B@4, Lost@6   A: 4 -> B   B: 2 -> Lost
//   p3: A@0, Won@5         A: 5 -> Won
//   p4: A@0, Lost@1        A: 1 -> Lost
//   p5: A@0, B@2, Won@4    A: 2 -> B   B: 2 -> Won
//   p6: A@0, Won@8         A: 8 -> Won
// A: 6 exits: B 3, Won 2, Lost 1 -> p = (B 1/2, Won 1/3, Lost 1/6), n_eff 6.
// B: 3 exits: Won 2, Lost 1      -> p = (Won 2/3, Lost 1/3), n_eff 3.   C: no stays.
table prior_table() {
  table t;
  t.add(1, "A", day(0)).add(1, "B", day(3)).add(1, "Won", day(10));
  t.add(2, "A", day(0)).add(2, "B", day(4)).add(2, "Lost", day(6));
  t.add(3, "A", day(0)).add(3, "Won", day(5));
  t.add(4, "A", day(0)).add(4, "Lost", day(1));
  t.add(5, "A", day(0)).add(5, "B", day(2)).add(5, "Won", day(4));
  t.add(6, "A", day(0)).add(6, "Won", day(8));
  return t;
}
} // namespace

TEST(fit, prior_row_is_the_posterior_mean_over_the_feasible_destinations) {
  auto o = unsmoothed(day(50));
  o.prior = 3.0;
  o.draws = 400; // posterior draws for the interval of the win probability
  const auto model = sf::fit(prior_table().log(hand_funnel()), o);
  const auto& g = model.overall();
  // Feasible sets (seen destinations, the forward step, and the first lost name):
  //   A: {B, Won, Lost} -> m = 1/3 each;  B: {C, Won, Lost} -> 1/3 each;  C: {Won, Lost} -> 1/2.
  // probability_k = (prior m_k + n_eff p_k) / (prior + n_eff):
  //   A: (1 + 6 p_k) / 9 -> B 4/9, Won 3/9, Lost 2/9.
  //   B: (1 + 3 p_k) / 6 -> C 1/6, Won 3/6, Lost 2/6.
  //   C: no data -> the prior mean: Won 1/2, Lost 1/2.
  EXPECT_NEAR(g.stages[A].effective_n, 6.0, eps);
  EXPECT_NEAR(g.stages[B].effective_n, 3.0, eps);
  EXPECT_EQ(g.stages[C].effective_n, 0.0);
  expect_row(g.stages[A].probability, {0, 4.0 / 9, 0, 1.0 / 3, 2.0 / 9, 0}, "A");
  expect_row(g.stages[B].probability, {0, 0, 1.0 / 6, 1.0 / 2, 1.0 / 3, 0}, "B");
  expect_row(g.stages[C].probability, {0, 0, 0, 0.5, 0.5, 0}, "C");
  // Dirichlet parameters prior m + n_eff p.
  expect_row(g.stages[A].alpha, {0, 4, 0, 3, 2, 0}, "A.alpha");
  expect_row(g.stages[C].alpha, {0, 0, 0, 1.5, 1.5, 0}, "C.alpha");
  EXPECT_EQ(g.stages[A].concentration, 3.0);
  // p and naive stay unsmoothed.
  expect_row(g.stages[A].p, {0, 0.5, 0, 1.0 / 3, 1.0 / 6, 0}, "A.p");
  // Chain: w_C = 1/2; w_B = 1/2 + 1/6 * 1/2 = 7/12; w_A = 1/3 + 4/9 * 7/12 = 16/27.
  expect_row(g.chain.win, {16.0 / 27, 7.0 / 12, 0.5}, "win");
  EXPECT_NEAR(model.p_win(0, 0.0), 16.0 / 27, eps);
  EXPECT_NEAR(model.p_win(1, 0.0), 7.0 / 12, eps);
  // Intervals contain the point and stay in [0, 1]; a destination outside the feasible set has
  // alpha 0 and the degenerate interval [0, 0].
  for (std::size_t s = 0; s < 3; ++s)
    for (std::size_t k = 0; k < 6; ++k) {
      EXPECT_LE(g.stages[s].low[k], g.stages[s].probability[k] + eps);
      EXPECT_GE(g.stages[s].high[k], g.stages[s].probability[k] - eps);
    }
  EXPECT_EQ(g.stages[A].low[DISQ], 0.0);
  EXPECT_EQ(g.stages[A].high[DISQ], 0.0);
  for (std::size_t s = 0; s < 3; ++s) {
    EXPECT_LE(g.win_low[s], g.chain.win[s]);
    EXPECT_GE(g.win_high[s], g.chain.win[s]);
  }
}

TEST(fit, prior_interval_of_a_uniform_posterior) {
  // prior 2 on C (no data, feasible {Won, Lost}): alpha = (1, 1), a Beta(1, 1) marginal, i.e.
  // uniform: the 90% interval is [0.05, 0.95].
  auto o = unsmoothed(day(50));
  o.prior = 2.0;
  const auto model = sf::fit(prior_table().log(hand_funnel()), o);
  const auto& c = model.overall().stages[C];
  EXPECT_NEAR(c.low[WON], 0.05, 1e-9);
  EXPECT_NEAR(c.high[WON], 0.95, 1e-9);
  EXPECT_NEAR(c.low[LOST], 0.05, 1e-9);
  // A: alpha = 2/3 m + 6 p = (B 2/3 + 3, Won 2/3 + 2, Lost 2/3 + 1); Beta(a, a0 - a) with a0 = 8.
  // For Won: Beta(8/3, 16/3); the probability is its mean 1/3.
  EXPECT_NEAR(model.overall().stages[A].probability[WON], (2.0 / 3 + 2) / 8, eps);
}

TEST(fit, prior_with_censoring_uses_the_kish_effective_size) {
  auto o = unsmoothed(day(100));
  o.prior = 1.0;
  const auto model = sf::fit(main_table().log(hand_funnel()), o);
  const auto& a = model.overall().stages[A];
  // Feasible for A: {B, C, Won, Lost} (all seen) -> m = 1/4. n_eff = 578/97 (see above):
  //   B: (1/4 + 578/97 * 11/34) / (1 + 578/97) = (1/4 + 187/97) / (675/97) = 845/2700 = 169/540
  //   C: (1/4 + 578/97 * 3/17) / (675/97) = (1/4 + 102/97) / (675/97) = 505/2700 = 101/540
  expect_row(a.probability, {0, 169.0 / 540, 101.0 / 540, 101.0 / 540, 169.0 / 540, 0}, "A");
}

TEST(fit, prior_chain_and_age_conditioning_together) {
  auto o = unsmoothed(day(100));
  o.prior = 1.0;
  o.min_at_risk = 1;
  const auto model = sf::fit(main_table().log(hand_funnel()), o);
  // Rows with prior 1 (feasible sets: A {B, C, Won, Lost}; B {A, C, Won, Lost}; C {Disq, Won, Lost}):
  //   A: B 169/540, C 101/540, Won 101/540, Lost 169/540 (previous test)
  //   B: p (A 1/2, Won 1/2), n_eff 2, m 1/4: (1/4 + 2 p) / 3 -> A 5/12, Won 5/12, C 1/12, Lost 1/12
  //   C: p (Disq 1), n_eff 1, m 1/3: (1/3 + p) / 2 -> Disq 2/3, Won 1/6, Lost 1/6
  expect_row(model.overall().stages[B].probability, {5.0 / 12, 0, 1.0 / 12, 5.0 / 12, 1.0 / 12, 0}, "B");
  expect_row(model.overall().stages[C].probability, {0, 0, 0, 1.0 / 6, 1.0 / 6, 2.0 / 3}, "C");
  // w_C = 1/6; w_B = 5/12 + 5/12 w_A + 1/12 * 1/6 = 31/72 + 5/12 w_A;
  // w_A = 101/540 + 169/540 w_B + 101/540 * 1/6 = 707/3240 + 169/540 w_B
  //   => w_A (1 - 845/6480) = 13723/38880 => w_A = 13723/33810, w_B = 4055/6762.
  expect_row(model.overall().chain.win, {13723.0 / 33810, 4055.0 / 6762, 1.0 / 6}, "win");
  // Age 4: in the semi-Markov kernel destination c's resolved mass, probability_c * (1 - S(tau))
  // with 1 - S(tau) = 17/20, follows its own Aalen-Johansen increments, and its unresolved mass
  // probability_c * 3/20 waits in the tail. A's increments: B 1/8 at 2 and 3/20 at 5
  // (F_B = 11/40, share ahead 6/11); C 3/20 at 5 (share 1); Lost 1/8 at 3 and 3/20 at 6 (share
  // 6/11); Won 3/20 at 7 (share 1). Ahead, x 1/(540 * 220): B 169 * (102 + 33) = 22815,
  // C 101 * 220 = 22220, Lost 22815, Won 22220 (90070 in all), so
  // P(win) = (22815 w_B + 22220 w_C + 22220) / 90070 = 53561681/121810668.
  EXPECT_NEAR(model.p_win(0, 4.0), 53561681.0 / 121810668, eps);
  EXPECT_NEAR(model.p_win(0, 0.0), 13723.0 / 33810, eps);
}

// ---------------------------------------------------------------------------------------------
// Recency weights

TEST(fit, decay_weights_halve_every_half_life) {
  // As of day 100 with a half-life of 10 days; weights 2^-(100 - end)/10 for exits, 1 if censored.
  //   d1: A@99, Won@100   A: 1 -> Won,  w = 1
  //   d2: A@88, Lost@90   A: 2 -> Lost, w = 1/2
  //   d3: A@77, Lost@80   A: 3 -> Lost, w = 1/4
  //   d4: A@99            A: 1 censored, w = 1 (tied with d1's exit: the exit counts first)
  table t;
  t.add(1, "A", day(99)).add(1, "Won", day(100));
  t.add(2, "A", day(88)).add(2, "Lost", day(90));
  t.add(3, "A", day(77)).add(3, "Lost", day(80));
  t.add(4, "A", day(99));
  auto o = unsmoothed(day(100));
  o.half_life_seconds = 10.0 * 86400;
  const auto model = sf::fit(t.log(hand_funnel()), o);
  const auto& cell = model.statistics().cells.at({})[A];
  EXPECT_EQ(cell.duration, (std::vector<std::int64_t>{1, 2, 3}));
  EXPECT_NEAR(cell.weight[0 * 7 + WON], 1.0, eps);
  EXPECT_NEAR(cell.weight[0 * 7 + 6], 1.0, eps);
  EXPECT_NEAR(cell.weight[1 * 7 + LOST], 0.5, eps);
  EXPECT_NEAR(cell.weight[2 * 7 + LOST], 0.25, eps);
  EXPECT_NEAR(cell.weight_sq[2 * 7 + LOST], 0.0625, eps);
  EXPECT_EQ(cell.count[2 * 7 + LOST], 1);
  const auto& e = model.overall().stages[A];
  // Weighted: n = 1 + 1 + 1/2 + 1/4 = 11/4.
  // t=1: exit weight 1 of 11/4: F_Won = 4/11, S = 7/11; then 2 leave: at risk 3/4.
  // t=2: 1/2 of 3/4: F_Lost = 7/11 * 2/3 = 14/33, S = 7/33.
  // t=3: 1/4 of 1/4: F_Lost += 7/33 -> 21/33 = 7/11, S = 0.
  expect_row(e.at_risk, {11.0 / 4, 3.0 / 4, 1.0 / 4}, "at_risk");
  expect_row(e.survival, {7.0 / 11, 7.0 / 33, 0.0}, "survival");
  expect_row(e.p, {0, 0, 0, 4.0 / 11, 7.0 / 11, 0}, "p");
  // Naive (weighted, closed only): Won 1, Lost 3/4 -> 4/7, 3/7.
  expect_row(e.naive, {0, 0, 0, 4.0 / 7, 3.0 / 7, 0}, "naive");
  EXPECT_EQ(e.exits, (std::vector<std::int64_t>{0, 0, 0, 1, 2, 0}));
  // Kish: unit weights S(u-) w / n(u) = 4/11, 14/33, 7/33 (sum 1): n_eff = 1 / (389/1089).
  EXPECT_NEAR(e.effective_n, 1089.0 / 389, 1e-10);
}

// ---------------------------------------------------------------------------------------------
// Groups

namespace {
// Owners, as of day 10 (owner given per event; the owner of a stay is the one at its END):
//   g1: A@0 ann, Won@5 bob            A: 5 -> Won   owner at end: bob
//   g2: A@0 ann, Lost@3 ann           A: 3 -> Lost  ann
//   g3: A@1 ann, B@4 ann, B@6 bob     A: 3 -> B     ann;  B: 6 censored, owner at as_of: bob
//   g4: A@2 bob, Lost@4 ann           A: 2 -> Lost  ann
//   g5: A@0 ann, B@1 ann, Won@2 ann   A: 1 -> B     ann;  B: 1 -> Won ann
table owner_table() {
  table t;
  t.add(1, "A", day(0), 10, "ann").add(1, "Won", day(5), 10, "bob");
  t.add(2, "A", day(0), 10, "ann").add(2, "Lost", day(3), 10, "ann");
  t.add(3, "A", day(1), 10, "ann").add(3, "B", day(4), 10, "ann").add(3, "B", day(6), 10, "bob");
  t.add(4, "A", day(2), 10, "bob").add(4, "Lost", day(4), 10, "ann");
  t.add(5, "A", day(0), 10, "ann").add(5, "B", day(1), 10, "ann").add(5, "Won", day(2), 10, "ann");
  return t;
}
} // namespace

TEST(fit, groups_by_owner_at_the_end_of_each_stay) {
  auto o = unsmoothed(day(10));
  o.groups = {"owner"};
  const auto model = sf::fit(owner_table().log(hand_funnel()), o);
  const auto& stats = model.statistics();
  ASSERT_EQ(stats.cells.size(), 2u);
  const auto& ann = stats.cells.at({"ann"});
  const auto& bob = stats.cells.at({"bob"});
  // ann A: (1, B) (2, Lost) (3, B) (3, Lost);  bob A: (5, Won);  ann B: (1, Won);  bob B: (6, c).
  EXPECT_EQ(ann[A].duration, (std::vector<std::int64_t>{1, 2, 3}));
  EXPECT_EQ(ann[A].count, (std::vector<std::int64_t>{0,      1, 0, 0, 0, 0, 0, /**/ 0, 0, 0, 0, 1, 0, 0,
                                                     /**/ 0, 1, 0, 0, 1, 0, 0}));
  EXPECT_EQ(bob[A].duration, (std::vector<std::int64_t>{5}));
  EXPECT_EQ(bob[A].count, (std::vector<std::int64_t>{0, 0, 0, 1, 0, 0, 0}));
  EXPECT_EQ(ann[B].count, (std::vector<std::int64_t>{0, 0, 0, 1, 0, 0, 0}));
  EXPECT_EQ(bob[B].duration, (std::vector<std::int64_t>{6}));
  EXPECT_EQ(bob[B].count, (std::vector<std::int64_t>{0, 0, 0, 0, 0, 0, 1}));

  ASSERT_EQ(model.groups().size(), 3u);
  const auto ia = model.find_group({"ann"}), ib = model.find_group({"bob"});
  ASSERT_TRUE(ia && ib);
  EXPECT_EQ(model.find_group({"cid"}), std::nullopt);
  EXPECT_EQ(model.find_group({}), 0u);
  const auto& ga = model.groups()[*ia];
  const auto& gb = model.groups()[*ib];
  EXPECT_EQ(ga.level, 1u);
  EXPECT_EQ(ga.parent, 0u);
  EXPECT_EQ(ga.key, (std::vector<std::string>{"ann"}));
  // Overall A (no censoring): B 2/5, Lost 2/5, Won 1/5; overall B: Won at 1 of 2, then a
  // censoring: p_Won = 1, unresolved 1/2.
  expect_row(model.overall().stages[A].p, {0, 0.4, 0, 0.2, 0.4, 0}, "overall A");
  expect_row(model.overall().stages[B].p, {0, 0, 0, 1, 0, 0}, "overall B");
  EXPECT_NEAR(model.overall().stages[B].unresolved, 0.5, eps);
  // Group rows, unsmoothed: ann A: B 1/2, Lost 1/2 (n_eff 4); bob A: Won 1 (n_eff 1).
  expect_row(ga.stages[A].p, {0, 0.5, 0, 0, 0.5, 0}, "ann A");
  expect_row(gb.stages[A].p, {0, 0, 0, 1, 0, 0}, "bob A");
  EXPECT_EQ(gb.stages[B].n_censored, 1);
  EXPECT_EQ(gb.stages[B].n_exits, 0);
  // Shrinkage toward the parent row with the fallback concentration 10 (fewer than 5 siblings):
  //   ann A: (10 (B 2/5, Lost 2/5, Won 1/5) + 4 (B 1/2, Lost 1/2)) / 14 = B 3/7, Lost 3/7, Won 1/7
  //   bob A: (10 (...) + 1 (Won 1)) / 11                        = B 4/11, Lost 4/11, Won 3/11
  EXPECT_EQ(ga.stages[A].concentration, 10.0);
  expect_row(ga.stages[A].probability, {0, 3.0 / 7, 0, 1.0 / 7, 3.0 / 7, 0}, "ann A smoothed");
  expect_row(gb.stages[A].probability, {0, 4.0 / 11, 0, 3.0 / 11, 4.0 / 11, 0}, "bob A smoothed");
  // B rows: the parent's B row is (Won 1), so both groups' B rows are (Won 1): w_B = 1 and
  //   overall w_A = 1/5 + 2/5 = 3/5, ann w_A = 1/7 + 3/7 = 4/7, bob w_A = 3/11 + 4/11 = 7/11.
  EXPECT_NEAR(model.overall().chain.win[A], 3.0 / 5, eps);
  EXPECT_NEAR(ga.chain.win[A], 4.0 / 7, eps);
  EXPECT_NEAR(gb.chain.win[A], 7.0 / 11, eps);
  EXPECT_NEAR(model.p_win(0, 0.0, *ib), 7.0 / 11, eps);
}

TEST(fit, groups_by_a_static_attribute) {
  table t = owner_table();
  const std::vector<std::string> names{"SMB", "ENT"};
  // Opportunities 1, 2, 5 are SMB; 3 and 4 ENT (one code per row).
  std::vector<std::int32_t> seg;
  for (auto id : t.opp) seg.push_back(id == 3 || id == 4 ? 1 : 0);
  auto c = t.columns();
  c.attributes.push_back({"segment", seg, names});
  auto o = unsmoothed(day(10));
  o.groups = {"segment"};
  const auto model = sf::fit(sf::event_log::from_columns(hand_funnel(), c), o);
  // SMB A: (5, Won) (3, Lost) (1, B) -> 1/3 each.  ENT A: (3, B) (2, Lost).
  const auto ismb = model.find_group({"SMB"}), ient = model.find_group({"ENT"});
  ASSERT_TRUE(ismb && ient);
  expect_row(model.groups()[*ismb].stages[A].p, {0, 1.0 / 3, 0, 1.0 / 3, 1.0 / 3, 0}, "SMB");
  expect_row(model.groups()[*ient].stages[A].p, {0, 0.5, 0, 0, 0.5, 0}, "ENT");
}

// ---------------------------------------------------------------------------------------------
// Merge

namespace {
sf::simulated_events sample_events(std::uint64_t seed) {
  const sf::funnel f = hand_funnel();
  sf::simulation_spec spec;
  // Rows: A, B, C, Won, Lost over columns A, B, C, Won, Lost.
  spec.transition = {0, 0.5, 0.1, 0.1, 0.3, /**/ 0.2, 0, 0.4, 0.1, 0.3, /**/ 0, 0.1, 0, 0.5, 0.4};
  spec.sojourn_mean_days = {1, 20, 30, 40, 10, /**/ 15, 1, 25, 35, 10, /**/ 1, 20, 1, 30, 15};
  spec.n_opportunities = 300;
  spec.seed = seed;
  return sf::simulate(f, spec);
}

// Rows of `ev` whose opportunity id satisfies `keep`.
table subset(const sf::simulated_events& ev, bool (*keep)(std::int64_t)) {
  table t;
  for (std::size_t r = 0; r < ev.opportunity.size(); ++r)
    if (keep(ev.opportunity[r]))
      t.add(ev.opportunity[r], ev.stage_names[static_cast<std::size_t>(ev.stage[r])], ev.time[r],
            ev.amount[r], ev.owner_names[static_cast<std::size_t>(ev.owner[r])]);
  return t;
}

void expect_same_model(const sf::funnel_model& a, const sf::funnel_model& b) {
  ASSERT_EQ(a.groups().size(), b.groups().size());
  for (std::size_t g = 0; g < a.groups().size(); ++g) {
    EXPECT_EQ(a.groups()[g].key, b.groups()[g].key);
    for (std::size_t s = 0; s < a.funnel().n_open(); ++s)
      expect_row(a.groups()[g].stages[s].probability, b.groups()[g].stages[s].probability, "probability");
    expect_row(a.groups()[g].chain.win, b.groups()[g].chain.win, "win");
  }
}
} // namespace

TEST(fit, merge_of_disjoint_partial_fits_equals_the_fit_of_the_union) {
  const auto ev = sample_events(11);
  const auto f = hand_funnel();
  const auto all = subset(ev, [](std::int64_t) { return true; }).log(f);
  const auto odd = subset(ev, [](std::int64_t id) { return id % 2 == 1; }).log(f);
  const auto even = subset(ev, [](std::int64_t id) { return id % 2 == 0; }).log(f);
  ASSERT_GT(odd.n_events(), 0u);
  ASSERT_GT(even.n_events(), 0u);
  sf::fit_options o;
  o.as_of = sf::simulation_spec{}.as_of;
  o.groups = {"owner"};
  o.prior = 2.0;
  o.draws = 50;
  const auto whole = sf::fit(all, o);
  const auto merged = merge(sf::fit(odd, o), sf::fit(even, o));
  EXPECT_TRUE(merged.statistics() == whole.statistics());
  EXPECT_EQ(merged.statistics().n_opportunities, 300u);
  expect_same_model(merged, whole);
  // Merging is symmetric.
  EXPECT_TRUE(merge(sf::fit(even, o), sf::fit(odd, o)).statistics() == whole.statistics());
}

TEST(fit, merge_with_decay_weights) {
  const auto ev = sample_events(12);
  const auto f = hand_funnel();
  const auto all = subset(ev, [](std::int64_t) { return true; }).log(f);
  const auto low = subset(ev, [](std::int64_t id) { return id <= 100; }).log(f);
  const auto high = subset(ev, [](std::int64_t id) { return id > 100; }).log(f);
  sf::fit_options o;
  o.as_of = sf::simulation_spec{}.as_of;
  o.half_life_seconds = 90.0 * 86400;
  o.draws = 0;
  const auto whole = sf::fit(all, o);
  const auto merged = merge(sf::fit(low, o), sf::fit(high, o));
  // Sums of weights may differ in the last bit with the order of addition.
  const auto& cw = whole.statistics().cells.at({});
  const auto& cm = merged.statistics().cells.at({});
  for (std::size_t s = 0; s < 3; ++s) {
    EXPECT_EQ(cm[s].duration, cw[s].duration);
    EXPECT_EQ(cm[s].count, cw[s].count);
    ASSERT_EQ(cm[s].weight.size(), cw[s].weight.size());
    for (std::size_t i = 0; i < cw[s].weight.size(); ++i)
      EXPECT_NEAR(cm[s].weight[i], cw[s].weight[i], 1e-12);
    for (std::size_t k = 0; k < 6; ++k) {
      const double x = merged.overall().stages[s].probability[k],
                   y = whole.overall().stages[s].probability[k];
      if (std::isnan(y))
        EXPECT_TRUE(std::isnan(x));
      else
        EXPECT_NEAR(x, y, 1e-12);
    }
  }
}

TEST(fit, merge_rejects_incompatible_fits) {
  const auto log = main_table().log(hand_funnel());
  auto a = unsmoothed(day(100));
  a.prior = 1.0;
  auto b = a;
  b.as_of = day(99);
  EXPECT_THROW((void)merge(sf::fit(log, a), sf::fit(log, b)), sf::incompatible_merge);
  b = a;
  b.prior = 2.0;
  EXPECT_THROW((void)merge(sf::fit(log, a), sf::fit(log, b)), sf::incompatible_merge);
  table t;
  t.add(1, "A", day(0)).add(1, "Won", day(3));
  const sf::funnel other({"A", "B", "C"}, {"Won"}, {"Lost", "Disq"}, "other");
  EXPECT_THROW((void)merge(sf::fit(log, a), sf::fit(t.log(other), a)), sf::incompatible_merge);
}

// ---------------------------------------------------------------------------------------------
// Singular chain

TEST(fit, stages_that_only_move_to_each_other_make_the_chain_singular) {
  // s1: A@0, B@1, A@2, B@3, as of day 5: A -> B twice, B -> A once, B censored. C has no data
  // (and nothing reaches it). Without a prior A and B never reach Won or Lost.
  table t;
  t.add(1, "A", day(0)).add(1, "B", day(1)).add(1, "A", day(2)).add(1, "B", day(3));
  const auto log = t.log(hand_funnel());
  try {
    (void)sf::fit(log, unsmoothed(day(5)));
    FAIL() << "expected singular_chain";
  } catch (const sf::singular_chain& e) {
    EXPECT_THAT(e.what(), HasSubstr("'A'"));
    EXPECT_THAT(e.what(), HasSubstr("'B'"));
    EXPECT_THAT(e.what(), Not(HasSubstr("'C'")));
  }
  // A prior opens the way to Lost for both.
  auto o = unsmoothed(day(5));
  o.prior = 1.0;
  EXPECT_NO_THROW((void)sf::fit(log, o));
}

TEST(fit, stage_without_data_gives_nan_for_every_stage_that_reaches_it) {
  // A -> B once, B censored, nothing else: B's row is undefined, so A's win probability is too,
  // while C (no data, unreachable) is undefined on its own.
  table t;
  t.add(1, "A", day(0)).add(1, "B", day(1)).add(2, "A", day(0)).add(2, "Lost", day(2));
  const auto model = sf::fit(t.log(hand_funnel()), unsmoothed(day(5)));
  EXPECT_TRUE(std::isnan(model.overall().chain.win[A]));
  EXPECT_TRUE(std::isnan(model.overall().chain.win[B]));
  EXPECT_TRUE(std::isnan(model.p_win(0, 0.0)));
}

// ---------------------------------------------------------------------------------------------
// Consecutive events in one stage

TEST(fit, consecutive_events_in_one_stage_are_one_stay) {
  // A@0, A@3, A@4, B@6: one A stay of 6 days (not three of 3, 1 and 2).
  table t;
  t.add(1, "A", day(0)).add(1, "A", day(3)).add(1, "A", day(4)).add(1, "B", day(6)).add(1, "Won", day(7));
  const auto model = sf::fit(t.log(hand_funnel()), unsmoothed(day(7)));
  EXPECT_EQ(model.statistics().n_stays, 2u);
  EXPECT_EQ(model.overall().stages[A].duration, (std::vector<std::int64_t>{6}));
  EXPECT_EQ(model.overall().stages[A].n_stays, 1);
}

TEST(fit, reopened_deals_contribute_the_stays_after_reopening) {
  // r1: A@0, Lost@2, B@5 (reopened), Won@9: A: 2 -> Lost; B: 4 -> Won.
  table t;
  t.add(1, "A", day(0)).add(1, "Lost", day(2)).add(1, "B", day(5)).add(1, "Won", day(9));
  const auto log = t.log(hand_funnel(), {sf::validation::strict, sf::after_terminal::reopen});
  const auto model = sf::fit(log, unsmoothed(day(9)));
  EXPECT_EQ(model.statistics().n_stays, 2u);
  expect_row(model.overall().stages[A].p, {0, 0, 0, 0, 1, 0}, "A");
  expect_row(model.overall().stages[B].p, {0, 0, 0, 1, 0, 0}, "B");
  EXPECT_EQ(model.overall().stages[B].duration, (std::vector<std::int64_t>{4}));
}

TEST(fit, two_grouping_levels_nest_under_their_parents) {
  // Segment (static) outside, owner (at the end of each stay) inside; owner_table as above with
  // opportunities 1, 2, 5 SMB and 3, 4 ENT. Leaves: SMB/ann (g2, g5 stays), SMB/bob (g1's A stay),
  // ENT/ann (g3's A stay, g4), ENT/bob (g3's B stay).
  table t = owner_table();
  const std::vector<std::string> names{"SMB", "ENT"};
  std::vector<std::int32_t> seg;
  for (auto id : t.opp) seg.push_back(id == 3 || id == 4 ? 1 : 0);
  auto c = t.columns();
  c.attributes.push_back({"segment", seg, names});
  auto o = unsmoothed(day(10));
  o.groups = {"segment", "owner"};
  const auto model = sf::fit(sf::event_log::from_columns(hand_funnel(), c), o);
  // 1 + 2 segments + 4 (segment, owner) leaves.
  ASSERT_EQ(model.groups().size(), 7u);
  const auto smb = model.find_group({"SMB"}), ent_bob = model.find_group({"ENT", "bob"});
  ASSERT_TRUE(smb && ent_bob);
  EXPECT_EQ(model.groups()[*ent_bob].level, 2u);
  EXPECT_EQ(model.groups()[*ent_bob].parent, *model.find_group({"ENT"}));
  EXPECT_EQ(model.groups()[*smb].parent, 0u);
  // ENT/bob holds only g3's censored B stay; SMB holds 3 A stays and 1 B stay (g5).
  EXPECT_EQ(model.groups()[*ent_bob].stages[B].n_censored, 1);
  EXPECT_EQ(model.groups()[*ent_bob].stages[A].n_stays, 0);
  EXPECT_EQ(model.groups()[*smb].stages[A].n_stays, 3);
  EXPECT_EQ(model.groups()[*smb].stages[B].n_stays, 1);
  // Every parent's stays are the sum of its children's.
  for (std::size_t g = 1; g < model.groups().size(); ++g) {
    std::int64_t children = 0;
    bool any = false;
    for (const auto& h : model.groups())
      if (h.level == model.groups()[g].level + 1 && &model.groups()[h.parent] == &model.groups()[g]) {
        children += h.stages[A].n_stays;
        any = true;
      }
    if (any) {
      EXPECT_EQ(children, model.groups()[g].stages[A].n_stays) << g;
    }
  }
}

TEST(fit, statistics_without_as_of_are_rejected) {
  auto s = sf::collect_statistics(main_table().log(hand_funnel()), unsmoothed(day(100)));
  EXPECT_EQ(s.options.as_of, day(100));
  s.options.as_of.reset();
  EXPECT_THROW((void)sf::funnel_model::from_statistics(s), sf::invalid_options);
}

TEST(fit, grouped_fit_of_a_log_without_stays_has_only_the_whole_funnel) {
  // No event is visible at as_of, so there is no stay and no group value: the statistics hold one
  // empty key, and the model only the whole funnel (every stage without data: NaN).
  table t;
  t.add(1, "A", day(10), 100.0, "ann");
  sf::fit_options o = unsmoothed(day(5));
  o.groups = {"owner"};
  const auto model = sf::fit(t.log(hand_funnel()), o);
  ASSERT_EQ(model.groups().size(), 1u);
  EXPECT_TRUE(model.overall().key.empty());
  EXPECT_EQ(model.overall().stages[A].n_stays, 0);
  EXPECT_TRUE(std::isnan(model.overall().chain.win[A]));
}
