// Google Benchmark: the walk-forward backtest of 52 weekly dates (fit, forecast of the next 90
// days with arrivals, the baselines, what was won, the scores) on a simulated log of ~1M events.
//   build/release/benches/smartfunnel_benches --benchmark_filter=backtest
#include <smartfunnel/backtest.hpp>
#include <smartfunnel/simulate.hpp>

#include <benchmark/benchmark.h>

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

namespace {

using namespace smartfunnel;

constexpr time_point jan_2023 = 1'672'531'200, jan_2024 = 1'704'067'200, jan_2025 = 1'735'689'600;
constexpr std::int64_t day = 86'400;

const funnel& bench_funnel() {
  static const funnel f({"Prospecting", "Qualification", "Proposal", "Negotiation"}, {"Won"}, {"Lost"});
  return f;
}

// Two years of history (about 2.9 events per opportunity, 8 owners), cached per size.
const event_log& bench_log(std::size_t target_events) {
  static std::map<std::size_t, std::unique_ptr<event_log>> cache;
  auto& slot = cache[target_events];
  if (!slot) {
    simulation_spec s;
    s.transition = {0, .55, .05, 0,   0,   .40, .05, 0, .55, .05, 0,   .35,
                    0, .05, 0,   .60, .05, .30, 0,   0, .05, 0,   .65, .30};
    s.sojourn_mean_days = {1, 21, 30, 1,  1,  8,  20, 1, 28, 35, 1,  10,
                           1, 15, 1,  30, 20, 12, 1,  1, 15, 1,  25, 14};
    s.owners = {"a", "b", "c", "d", "e", "f", "g", "h"};
    s.n_opportunities = target_events * 10 / 29;
    s.start = jan_2023;
    s.as_of = jan_2025;
    s.seed = 1;
    const auto ev = simulate(bench_funnel(), s);
    slot = std::make_unique<event_log>(event_log::from_columns(bench_funnel(), ev.columns()));
  }
  return *slot;
}

// 52 weekly dates through 2024 (noon UTC), horizon 90 days, the default fit (2,000 posterior
// draws behind the win-probability intervals) and forecast (arrivals), a static ladder.
void BM_backtest(benchmark::State& state) {
  const auto& log = bench_log(static_cast<std::size_t>(state.range(0)));
  backtest_options o;
  for (std::int64_t k = 0; k < 52; ++k) o.as_of.push_back(jan_2024 + 7 * k * day + day / 2);
  o.horizon_days = 90;
  o.ladder = {0.1, 0.25, 0.5, 0.75};
  o.threads = static_cast<std::size_t>(state.range(1));
  std::size_t deals = 0;
  for (auto _ : state) {
    const auto r = backtest(log, o);
    deals = r.deals.p.size();
    benchmark::DoNotOptimize(r.metrics.pinball.data());
  }
  state.counters["events"] = static_cast<double>(log.n_events());
  state.counters["deal_rows"] = static_cast<double>(deals);
  state.counters["dates"] = 52;
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * 52); // dates per second
}
BENCHMARK(BM_backtest)
    ->Args({1'000'000, 1})
    ->Args({1'000'000, 2})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

} // namespace
