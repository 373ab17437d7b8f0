// The program every consumer project builds (find_package, add_subdirectory, FetchContent): it
// includes the public headers, links smartfunnel::smartfunnel, fits a tiny log and checks values
// worked out by hand. Exit code 0 on success, 1 on any mismatch.

#include <smartfunnel/smartfunnel.hpp>
#ifdef SMARTFUNNEL_CONSUMER_SERIALIZATION
#include <smartfunnel/serialization.hpp>

#include <sstream>
#endif

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#ifndef SMARTFUNNEL_CONSUMER_EXPECTED_VERSION
#error "the consumer project must define SMARTFUNNEL_CONSUMER_EXPECTED_VERSION (the version CMake found)"
#endif

namespace {

int failures = 0;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "consumer: FAILED %s\n", what);
    ++failures;
  }
}

bool near(double a, double b) { return std::fabs(a - b) < 1e-12; }

} // namespace

int main() try {
  constexpr smartfunnel::time_point day = 86400;
  // Codes: A = 0, B = 1, Won = 2, Lost = 3.
  const smartfunnel::funnel f({"A", "B"}, {"Won"}, {"Lost"});
  check(f.n_open() == 2 && f.n_codes() == 4, "funnel has 2 open stages and 4 codes");

  // o1: A -> B -> Won, one day in each stage; o2: A -> Lost after one day. Nothing is censored at
  // as_of (the last event, day 2).
  smartfunnel::event_log_builder builder(f);
  builder.add("o1", "A", 0).add("o1", "B", day).add("o1", "Won", 2 * day);
  builder.add("o2", "A", 0).add("o2", "Lost", day);
  const smartfunnel::event_log log = builder.build();
  check(log.n_opportunities() == 2, "log has 2 opportunities");
  check(log.n_events() == 5, "log has 5 events");

  smartfunnel::fit_options options;
  options.prior = 0.0; // unsmoothed, so the rows are the observed exit shares
  const smartfunnel::funnel_model model = smartfunnel::fit(log, options);
  const smartfunnel::group_fit& overall = model.overall();

  check(overall.stages.size() == 2, "one estimate per open stage");
  check(overall.stages.size() == 2 && overall.stages[0].exits == std::vector<std::int64_t>{0, 1, 0, 1},
        "stage A exits: one to B, one to Lost");
  check(overall.stages.size() == 2 && overall.stages[1].exits == std::vector<std::int64_t>{0, 0, 1, 0},
        "stage B exits: one to Won");
  check(overall.stages.size() == 2 && overall.stages[0].n_stays == 2 && overall.stages[0].n_censored == 0,
        "stage A: 2 stays, none censored");
  // From B every deal was won; from A half went to B (then won) and half were lost.
  check(overall.chain.win.size() == 2, "win probability per open stage");
  check(overall.chain.win.size() == 2 && near(overall.chain.win[0], 0.5) && near(overall.chain.win[1], 1.0),
        "P(win | A) = 0.5 and P(win | B) = 1");

#ifdef SMARTFUNNEL_CONSUMER_SERIALIZATION
  // find_package(smartfunnel COMPONENTS serialization): the model survives a text archive.
  std::stringstream archive;
  smartfunnel::save(model, archive, smartfunnel::archive_format::text);
  const auto again = smartfunnel::load<smartfunnel::funnel_model>(archive);
  check(again.overall().chain.win == overall.chain.win, "the model loads back from its archive");
#endif

  check(std::strcmp(smartfunnel::version_string, SMARTFUNNEL_CONSUMER_EXPECTED_VERSION) == 0,
        "version.hpp matches the version CMake reported");

  if (failures != 0) return 1;
  std::printf("consumer: ok (smartfunnel %s)\n", smartfunnel::version_string);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "consumer: unexpected exception: %s\n", e.what());
  return 1;
}
