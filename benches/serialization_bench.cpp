// Google Benchmark: save and load of a 10M-event log and of a fitted model, binary and text
// archives, in memory and (binary) through a file with fsync and rename. Bytes are the archive's.
//   build/release/benches/smartfunnel_benches --benchmark_filter=archive
#include <smartfunnel/serialization.hpp>
#include <smartfunnel/smartfunnel.hpp>

#include <benchmark/benchmark.h>

#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

namespace {

using namespace smartfunnel;

const funnel& bench_funnel() {
  static const funnel f({"Prospecting", "Qualification", "Proposal", "Negotiation"}, {"Won"}, {"Lost"});
  return f;
}

// The simulated data of fit_bench.cpp: about 2.9 events per opportunity, 8 owners, field changes.
const event_log& log_10m() {
  static const auto log = [] {
    simulation_spec s;
    s.transition = {0, .55, .05, 0,   0,   .40, .05, 0, .55, .05, 0,   .35,
                    0, .05, 0,   .60, .05, .30, 0,   0, .05, 0,   .65, .30};
    s.sojourn_mean_days = {1, 21, 30, 1,  1,  8,  20, 1, 28, 35, 1,  10,
                           1, 15, 1,  30, 20, 12, 1,  1, 15, 1,  25, 14};
    s.owners = {"a", "b", "c", "d", "e", "f", "g", "h"};
    s.n_opportunities = 10'000'000 * 10 / 29;
    s.seed = 1;
    const auto ev = simulate(bench_funnel(), s);
    return std::make_unique<event_log>(event_log::from_columns(bench_funnel(), ev.columns()));
  }();
  return *log;
}

// A model fitted by owner on the 10M-event log (9 row sets, 2,000 posterior draws each).
const funnel_model& model() {
  static const auto m = [] {
    fit_options o;
    o.groups = {"owner"};
    return std::make_unique<funnel_model>(fit(log_10m(), o));
  }();
  return *m;
}

template <class T>
void bench_save(benchmark::State& state, const T& object, archive_format format) {
  std::size_t bytes = 0;
  for (auto _ : state) {
    const auto s = save_to_string(object, format);
    bytes = s.size();
    benchmark::DoNotOptimize(s.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
  state.counters["MB"] = static_cast<double>(bytes) / 1e6;
}

template <class T>
void bench_load(benchmark::State& state, const T& object, archive_format format) {
  const auto s = save_to_string(object, format);
  for (auto _ : state) benchmark::DoNotOptimize(load_from_string<T>(s));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * s.size()));
  state.counters["MB"] = static_cast<double>(s.size()) / 1e6;
}

std::filesystem::path bench_file() {
  return std::filesystem::temp_directory_path() /
         ("smartfunnel-bench-" + std::to_string(::getpid()) + ".sfnl");
}

void BM_archive_log_save(benchmark::State& state) {
  bench_save(state, log_10m(), static_cast<archive_format>(state.range(0)));
  state.counters["events"] = static_cast<double>(log_10m().n_events());
}
void BM_archive_log_load(benchmark::State& state) {
  bench_load(state, log_10m(), static_cast<archive_format>(state.range(0)));
  state.counters["events"] = static_cast<double>(log_10m().n_events());
}
void BM_archive_model_save(benchmark::State& state) {
  bench_save(state, model(), static_cast<archive_format>(state.range(0)));
}
void BM_archive_model_load(benchmark::State& state) {
  bench_load(state, model(), static_cast<archive_format>(state.range(0)));
}

// Through a file: save writes a temporary file, fsyncs and renames; load reads and checks it.
void BM_archive_log_file_save(benchmark::State& state) {
  const auto path = bench_file();
  for (auto _ : state) save(log_10m(), path);
  const auto bytes = std::filesystem::file_size(path);
  std::filesystem::remove(path);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
}
void BM_archive_log_file_load(benchmark::State& state) {
  const auto path = bench_file();
  save(log_10m(), path);
  for (auto _ : state) benchmark::DoNotOptimize(load<event_log>(path));
  const auto bytes = std::filesystem::file_size(path);
  std::filesystem::remove(path);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
}

constexpr auto binary = static_cast<std::int64_t>(archive_format::binary);
constexpr auto text = static_cast<std::int64_t>(archive_format::text);

BENCHMARK(BM_archive_log_save)->ArgName("format")->Arg(binary)->Arg(text)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_archive_log_load)->ArgName("format")->Arg(binary)->Arg(text)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_archive_log_file_save)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_archive_log_file_load)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_archive_model_save)->ArgName("format")->Arg(binary)->Arg(text)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_archive_model_load)->ArgName("format")->Arg(binary)->Arg(text)->Unit(benchmark::kMillisecond);

} // namespace
