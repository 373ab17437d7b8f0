// Google Benchmark: ingestion and fit on simulated logs of 1M and 10M events.
//   build/release/benches/smartfunnel_benches --benchmark_filter=fit
#include <smartfunnel/smartfunnel.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

namespace {

using namespace smartfunnel;

const funnel& bench_funnel() {
  static const funnel f({"Prospecting", "Qualification", "Proposal", "Negotiation"}, {"Won"}, {"Lost"});
  return f;
}

simulation_spec bench_spec(std::size_t opportunities) {
  simulation_spec s;
  s.transition = {0, .55, .05, 0,   0,   .40, .05, 0, .55, .05, 0,   .35,
                  0, .05, 0,   .60, .05, .30, 0,   0, .05, 0,   .65, .30};
  s.sojourn_mean_days = {1, 21, 30, 1, 1, 8, 20, 1, 28, 35, 1, 10, 1, 15, 1, 30, 20, 12, 1, 1, 15, 1, 25, 14};
  s.owners = {"a", "b", "c", "d", "e", "f", "g", "h"};
  s.n_opportunities = opportunities;
  s.seed = 1;
  return s;
}

// Simulated events (about 2.9 events per opportunity) and their log, cached per size.
struct fixture {
  simulated_events events;
  event_log log;
};
const fixture& data(std::size_t target_events) {
  static std::map<std::size_t, std::unique_ptr<fixture>> cache;
  auto& slot = cache[target_events];
  if (!slot) {
    auto ev = simulate(bench_funnel(), bench_spec(target_events * 10 / 29));
    auto log = event_log::from_columns(bench_funnel(), ev.columns());
    slot = std::make_unique<fixture>(fixture{std::move(ev), std::move(log)});
  }
  return *slot;
}

void set_counters(benchmark::State& state, const event_log& log) {
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(log.n_events()));
  state.counters["events"] = static_cast<double>(log.n_events());
  const auto n = static_cast<double>(std::max<std::size_t>(1, log.n_events()));
  state.counters["event_bytes_per_event"] = static_cast<double>(log.event_bytes()) / n;
  state.counters["opp_bytes_per_event"] = static_cast<double>(log.opportunity_bytes()) / n;
}

// The fit pass: one sweep of the log into sufficient statistics (what scales with events).
void BM_fit_pass(benchmark::State& state) {
  const auto& d = data(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) benchmark::DoNotOptimize(collect_statistics(d.log));
  set_counters(state, d.log);
}
BENCHMARK(BM_fit_pass)->Arg(1'000'000)->Arg(10'000'000)->Unit(benchmark::kMillisecond);

// The whole fit: the pass plus estimates, priors, chain and 2000 posterior draws for intervals.
void BM_fit(benchmark::State& state) {
  const auto& d = data(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) benchmark::DoNotOptimize(fit(d.log));
  set_counters(state, d.log);
}
BENCHMARK(BM_fit)->Arg(1'000'000)->Arg(10'000'000)->Unit(benchmark::kMillisecond);

// Grouped by owner (time-varying: the owner when each stay ended).
void BM_fit_by_owner(benchmark::State& state) {
  const auto& d = data(static_cast<std::size_t>(state.range(0)));
  fit_options o;
  o.groups = {"owner"};
  for (auto _ : state) benchmark::DoNotOptimize(fit(d.log, o));
  set_counters(state, d.log);
}
BENCHMARK(BM_fit_by_owner)->Arg(1'000'000)->Unit(benchmark::kMillisecond);

// Ingestion: validate, intern, sort and build field histories from columns.
void BM_ingest(benchmark::State& state) {
  const auto& d = data(static_cast<std::size_t>(state.range(0)));
  const auto cols = d.events.columns();
  for (auto _ : state) benchmark::DoNotOptimize(event_log::from_columns(bench_funnel(), cols));
  set_counters(state, d.log);
}
BENCHMARK(BM_ingest)->Arg(1'000'000)->Arg(10'000'000)->Unit(benchmark::kMillisecond);

// Ingestion of the rows in random order, opportunity, stage and time only: what
// EventLog.from_frame hands over for benches/python/bench_fit.py (rows in arrival order).
// Argument 1: the ids spread over the whole int64 range (the hash table instead of the direct one).
void BM_ingest_shuffled(benchmark::State& state) {
  const auto& d = data(static_cast<std::size_t>(state.range(0)));
  std::vector<std::size_t> perm(d.events.opportunity.size());
  std::iota(perm.begin(), perm.end(), std::size_t{0});
  std::shuffle(perm.begin(), perm.end(), std::mt19937_64(0));
  std::vector<std::int64_t> opp(perm.size());
  std::vector<std::int32_t> stage(perm.size());
  std::vector<time_point> time(perm.size());
  for (std::size_t i = 0; i < perm.size(); ++i) {
    const auto id = static_cast<std::uint64_t>(d.events.opportunity[perm[i]]);
    opp[i] = static_cast<std::int64_t>(state.range(1) ? id * 0x9E3779B97F4A7C15ull : id);
    stage[i] = d.events.stage[perm[i]];
    time[i] = d.events.time[perm[i]];
  }
  event_columns cols;
  cols.opportunity = opp;
  cols.stage = stage;
  cols.stage_names = d.events.stage_names;
  cols.time = time;
  for (auto _ : state) benchmark::DoNotOptimize(event_log::from_columns(bench_funnel(), cols));
  set_counters(state, d.log);
}
BENCHMARK(BM_ingest_shuffled)
    ->ArgsProduct({{1'000'000, 10'000'000}, {0, 1}})
    ->ArgNames({"events", "sparse_ids"})
    ->Unit(benchmark::kMillisecond);

} // namespace
