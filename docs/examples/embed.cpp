// Embedding smartfunnel in a C++ program: built and run by ctest (docs_example_embed), and shown in
// README.md and docs/cpp.md, so the snippet there always compiles.
#include <smartfunnel/smartfunnel.hpp>

#include <cmath>
#include <cstdio>

int main() {
  using namespace smartfunnel;
  const time_point day = 86400, t0 = 1'735'689'600; // 2025-01-01 UTC
  funnel f({"Prospecting", "Qualification", "Proposal"}, {"Won"}, {"Lost"});
  event_log_builder b(f);
  b.add("opp-1", "Prospecting", t0)
      .add("opp-1", "Qualification", t0 + 3 * day)
      .add("opp-1", "Won", t0 + 9 * day);
  b.add("opp-2", "Prospecting", t0).add("opp-2", "Lost", t0 + 2 * day);
  b.add("opp-3", "Prospecting", t0 + 5 * day); // still open: censored, never counted as lost
  fit_options options;
  options.prior = 0.0; // unsmoothed, to check by hand below
  auto model = fit(b.build(), options);
  double p = model.p_win(/*stage=*/0, /*age in ticks (days)=*/0.0);
  std::printf("P(win from Prospecting) = %.3f\n", p);
  // By hand: Prospecting exits to Qualification once and to Lost once, and Qualification always
  // wins, so P(win from Prospecting) = 1/2.
  return std::abs(p - 0.5) < 1e-12 ? 0 : 1;
}
