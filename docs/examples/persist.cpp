// Saving and loading with smartfunnel::serialization (docs/guide/persistence.md); built and run by
// ctest in the build tree's tests/ directory.
#include <smartfunnel/error.hpp>
#include <smartfunnel/serialization.hpp>
#include <smartfunnel/smartfunnel.hpp>

#include <cstdio>
#include <fstream>

int main() {
  using namespace smartfunnel;
  const time_point day = 86400, t0 = 1'735'689'600; // 2025-01-01 UTC
  funnel f({"Prospecting", "Qualification"}, {"Won"}, {"Lost"});
  event_log_builder b(f);
  b.add("opp-1", "Prospecting", t0)
      .add("opp-1", "Qualification", t0 + 3 * day)
      .add("opp-1", "Won", t0 + 9 * day);
  b.add("opp-2", "Prospecting", t0).add("opp-2", "Lost", t0 + 2 * day);
  const event_log log = b.build();
  const funnel_model model = fit(log);

  // Binary for speed on one machine; text or XML for files that move between machines.
  save(log, "pipeline.sfnl");
  save(model, "model.sfnl", archive_format::text);

  const auto log_again = load<event_log>("pipeline.sfnl");
  const auto model_again = load<funnel_model>("model.sfnl");
  std::printf("log equal: %d, P(win) equal: %d\n", log_again == log,
              model_again.overall().chain.win == model.overall().chain.win);

  // A file of another type, a newer format, a truncated or damaged file: a typed error.
  try {
    (void)load<funnel_model>("pipeline.sfnl");
  } catch (const wrong_archive_type& e) {
    std::printf("%s\n", e.what()); // ...holds a smartfunnel event_log, not the funnel_model asked for
  }
  std::ofstream("model.sfnl", std::ios::binary | std::ios::app) << "x"; // damage it
  try {
    (void)load<funnel_model>("model.sfnl");
  } catch (const corrupt_archive& e) {
    std::printf("%s\n", e.what());
  }
  return log_again == log ? 0 : 1;
}
