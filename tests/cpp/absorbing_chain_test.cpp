// Tests of solve_chain on hand-solved chains: B = (I - Q)^-1 R, expected visits, expected ticks to
// close and to win (given a win), undefined rows and singular chains.
#include <smartfunnel/absorbing_chain.hpp>
#include <smartfunnel/error.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace sf = smartfunnel;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {
constexpr double eps = 1e-12;
constexpr double NaN = std::numeric_limits<double>::quiet_NaN();

void expect_values(const std::vector<double>& got, const std::vector<double>& want, const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (std::size_t i = 0; i < want.size(); ++i) {
    if (std::isnan(want[i]))
      EXPECT_TRUE(std::isnan(got[i])) << what << "[" << i << "] = " << got[i];
    else
      EXPECT_NEAR(got[i], want[i], eps) << what << "[" << i << "]";
  }
}
} // namespace

TEST(absorbing_chain, two_stages_with_a_regression) {
  // Columns: A, B, Won, Lost.
  //   A: B 1/2, Won 1/5, Lost 3/10     sojourns: B 2, Won 4, Lost 1
  //   B: A 1/4, Won 1/2, Lost 1/4      sojourns: A 3, Won 6, Lost 2
  const std::vector<double> p{0, 0.5, 0.2, 0.3, /**/ 0.25, 0, 0.5, 0.25};
  const std::vector<double> soj{NaN, 2, 4, 1, /**/ 3, NaN, 6, 2};
  const auto r = sf::solve_chain(2, p, soj, {"A", "B"});
  // w_A = 1/5 + w_B / 2, w_B = 1/2 + w_A / 4  =>  (7/8) w_A = 9/20  =>  w_A = 18/35, w_B = 22/35.
  expect_values(r.win, {18.0 / 35, 22.0 / 35}, "win");
  // N = (I - Q)^-1 = (8/7) [[1, 1/2], [1/4, 1]]; visits = N 1 = (12/7, 10/7).
  expect_values(r.visits, {12.0 / 7, 10.0 / 7}, "visits");
  // Mean ticks per visit: m_A = 1 + 0.8 + 0.3 = 2.1, m_B = 0.75 + 3 + 0.5 = 4.25;
  // T = N m = (8/7 * 2.1 + 4/7 * 4.25, 2/7 * 2.1 + 8/7 * 4.25) = (169/35, 191/35).
  expect_values(r.ticks_to_close, {169.0 / 35, 191.0 / 35}, "ticks_to_close");
  // Given a win: from A, B w.p. (1/2)(22/35)/(18/35) = 11/18, Won 7/18; from B, A w.p. 9/44,
  // Won 35/44. W_A = 11/18 (2 + W_B) + 7/18 * 4, W_B = 9/44 (3 + W_A) + 35/44 * 6
  //   => W_A = 437/63, W_B = 524/77.
  expect_values(r.ticks_to_win, {437.0 / 63, 524.0 / 77}, "ticks_to_win");
}

TEST(absorbing_chain, three_stages_with_skips) {
  // The chain of the hand log in funnel_model_test (columns A, B, C, Won, Lost):
  //   A: B 11/34, C 6/34, Won 6/34, Lost 11/34;  B: A 1/2, Won 1/2;  C: Lost 1.
  const std::vector<double> p{0,      11.0 / 34, 6.0 / 34, 6.0 / 34, 11.0 / 34, /**/ 0.5, 0, 0, 0.5, 0,
                              /**/ 0, 0,         0,        0,        1};
  const std::vector<double> soj{NaN, 40.0 / 11, 5,        7,   51.0 / 11, /**/ 5, NaN, NaN,
                                8,   NaN,       /**/ NaN, NaN, NaN,       NaN,    4};
  const auto r = sf::solve_chain(3, p, soj, {"A", "B", "C"});
  // (57/68) w_A = 23/68 (see funnel_model_test).
  expect_values(r.win, {23.0 / 57, 40.0 / 57, 0.0}, "win");
  expect_values(r.visits, {34.0 / 19, 36.0 / 19, 1.0}, "visits");
  expect_values(r.ticks_to_close, {517.0 / 57, 629.0 / 57, 4.0}, "ticks_to_close");
  expect_values(r.ticks_to_win, {14269.0 / 1311, 2926.0 / 285, NaN}, "ticks_to_win");
}

TEST(absorbing_chain, single_stage_closes_at_once) {
  // A: Won 0.3, Lost 0.7; 10 and 2 ticks. One visit, T = 0.3 * 10 + 0.7 * 2 = 4.4, T_win = 10.
  const auto r = sf::solve_chain(1, {0, 0.3, 0.7}, {NaN, 10, 2}, {"A"});
  expect_values(r.win, {0.3}, "win");
  expect_values(r.visits, {1.0}, "visits");
  expect_values(r.ticks_to_close, {4.4}, "ticks");
  expect_values(r.ticks_to_win, {10.0}, "ticks_to_win");
}

TEST(absorbing_chain, undefined_rows_propagate_to_the_stages_that_reach_them) {
  // A -> B 1/2, Lost 1/2; B has no data (NaN row); C -> Won. A reaches B, so A is undefined too.
  const std::vector<double> p{0, 0.5, 0, 0, 0.5, /**/ NaN, NaN, NaN, NaN, NaN, /**/ 0, 0, 0, 1, 0};
  const std::vector<double> soj{NaN, 1,   NaN,      NaN, 1,   /**/ NaN, NaN, NaN,
                                NaN, NaN, /**/ NaN, NaN, NaN, 3,        NaN};
  const auto r = sf::solve_chain(3, p, soj, {"A", "B", "C"});
  expect_values(r.win, {NaN, NaN, 1.0}, "win");
  expect_values(r.visits, {NaN, NaN, 1.0}, "visits");
  expect_values(r.ticks_to_close, {NaN, NaN, 3.0}, "ticks");
}

TEST(absorbing_chain, stages_that_never_close_make_it_singular) {
  // A <-> B only; C closes. The message names A and B, not C.
  const std::vector<double> p{0, 1, 0, 0, 0, /**/ 1, 0, 0, 0, 0, /**/ 0, 0, 0, 0.5, 0.5};
  const std::vector<double> soj(15, 1.0);
  try {
    (void)sf::solve_chain(3, p, soj, {"Alpha", "Beta", "Gamma"});
    FAIL() << "expected singular_chain";
  } catch (const sf::singular_chain& e) {
    EXPECT_THAT(e.what(), HasSubstr("'Alpha'"));
    EXPECT_THAT(e.what(), HasSubstr("'Beta'"));
    EXPECT_THAT(e.what(), Not(HasSubstr("'Gamma'")));
  }
  // A stage that only feeds the trap is trapped too: C -> A only.
  const std::vector<double> q{0, 1, 0, 0, 0, /**/ 1, 0, 0, 0, 0, /**/ 1, 0, 0, 0, 0};
  EXPECT_THROW((void)sf::solve_chain(3, q, soj, {"A", "B", "C"}), sf::singular_chain);
}
