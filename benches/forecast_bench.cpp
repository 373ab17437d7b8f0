// Google Benchmark: Monte Carlo and exact revenue distributions of 100k deals.
//   build/release/benches/smartfunnel_benches --benchmark_filter='monte_carlo|exact'
#include <smartfunnel/detail/monte_carlo.hpp>
#include <smartfunnel/forecast.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

namespace {

struct deals {
  std::vector<double> amount, p;
  std::vector<std::int64_t> cents;
  std::vector<std::uint64_t> key;
};

const deals& make(std::size_t n) {
  static deals d = [n] {
    deals out;
    std::uint64_t x = 12345;
    auto next = [&x] { // splitmix64: reproducible inputs, no <random> distributions
      x += 0x9e3779b97f4a7c15ULL;
      std::uint64_t z = x;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      return static_cast<double>((z ^ (z >> 31)) >> 11) * 0x1.0p-53;
    };
    for (std::size_t i = 0; i < n; ++i) {
      const double a = std::round(20'000.0 * std::exp(0.9 * (next() + next() + next() - 1.5)));
      out.amount.push_back(a);
      out.p.push_back(next() * 0.6);
      out.cents.push_back(static_cast<std::int64_t>(a * 100));
      out.key.push_back(smartfunnel::opportunity_key("opp-" + std::to_string(i)));
    }
    return out;
  }();
  return d;
}

void BM_monte_carlo(benchmark::State& state) {
  const auto& d = make(100'000);
  const auto scenarios = static_cast<std::size_t>(state.range(0));
  const auto threads = static_cast<std::size_t>(state.range(1));
  for (auto _ : state)
    benchmark::DoNotOptimize(smartfunnel::monte_carlo_cents(d.cents, d.p, d.key, scenarios, 1, threads));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * d.p.size() * scenarios));
  state.counters["deal_scenarios"] = static_cast<double>(d.p.size() * scenarios);
}
BENCHMARK(BM_monte_carlo)->Args({10'000, 1})->Args({10'000, 2})->Unit(benchmark::kMillisecond)->UseRealTime();

// One kernel on one thread (0 portable C++, 1 SSE2, 2 AVX2, 3 AVX-512F); skipped where the CPU lacks it.
void BM_monte_carlo_kernel(benchmark::State& state) {
  const auto& d = make(100'000);
  const auto isa = static_cast<smartfunnel::detail::mc_isa>(state.range(0));
  if (!smartfunnel::detail::mc_isa_available(isa)) {
    state.SkipWithError("instruction set not available on this CPU");
    return;
  }
  std::vector<std::int64_t> totals(10'000);
  for (auto _ : state) {
    std::fill(totals.begin(), totals.end(), 0);
    smartfunnel::detail::monte_carlo_cents_with(isa, d.cents, d.p, d.key, 1, totals);
    benchmark::DoNotOptimize(totals.data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * d.p.size() * totals.size()));
}
BENCHMARK(BM_monte_carlo_kernel)->DenseRange(0, 3)->Unit(benchmark::kMillisecond);

// With parameter uncertainty: 10,000 scenarios, one thread, each deal's probability varied over
// `draws` posterior draws (scenario s uses draw s % draws).
void BM_monte_carlo_draws(benchmark::State& state) {
  const auto& d = make(100'000);
  const auto draws = static_cast<std::size_t>(state.range(0));
  static std::map<std::size_t, std::vector<double>> cache;
  auto& p = cache[draws];
  if (p.empty()) {
    p.resize(d.p.size() * draws);
    for (std::size_t i = 0; i < d.p.size(); ++i)
      for (std::size_t k = 0; k < draws; ++k)
        p[i * draws + k] = d.p[i] * (0.75 + 0.5 * static_cast<double>((i * 7 + k * 13) % 101) / 100.0);
  }
  const std::size_t scenarios = 10'000;
  for (auto _ : state)
    benchmark::DoNotOptimize(smartfunnel::monte_carlo_cents_draws(d.cents, p, draws, d.key, scenarios, 1, 1));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * d.p.size() * scenarios));
}
BENCHMARK(BM_monte_carlo_draws)->Arg(7)->Arg(50)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_exact_distribution(benchmark::State& state) {
  const auto& d = make(100'000);
  const auto cells = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) benchmark::DoNotOptimize(smartfunnel::exact_distribution(d.amount, d.p, 0.0, cells));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * d.p.size()));
}
BENCHMARK(BM_exact_distribution)->Arg(1 << 12)->Arg(1 << 14)->Unit(benchmark::kMillisecond);

} // namespace
