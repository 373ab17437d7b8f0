// Monte Carlo kernels (portable, SSE2, AVX2, AVX-512F: every one this CPU runs) against a direct
// implementation of the documented stream with Random123's Philox4x32-7.
#include <smartfunnel/detail/monte_carlo.hpp>
#include <smartfunnel/forecast.hpp>

#include <Random123/philox.h>

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace sf = smartfunnel;
using sf::detail::mc_isa;

namespace {

struct pipeline {
  std::vector<std::int64_t> cents;
  std::vector<double> p;
  std::vector<std::uint64_t> key;
};

// Deals with every kind of probability the kernels treat apart: none, NaN, negative, too small
// to ever win, certain, above one, just below one; negative and zero amounts.
pipeline make_pipeline(std::size_t n) {
  pipeline d;
  std::uint64_t x = 2024;
  auto next = [&x] {
    x += 0x9e3779b97f4a7c15ULL;
    std::uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  };
  const double special[] = {
      0.0, std::numeric_limits<double>::quiet_NaN(), -0.25, 1e-12, 1.0, 1.5, 1.0 - 1e-16, 0x1.0p-32, 0.5};
  for (std::size_t i = 0; i < n; ++i) {
    double q = static_cast<double>(next() >> 11) * 0x1.0p-53;
    if (i % 7 == 0) q = special[(i / 7) % std::size(special)];
    d.p.push_back(q);
    d.cents.push_back(i % 11 == 3 ? 0 : static_cast<std::int64_t>(next() % 5'000'000) - 250'000);
    d.key.push_back(i % 5 == 0 ? sf::opportunity_key("deal-" + std::to_string(i)) : next());
  }
  return d;
}

// The stream as documented: deal i wins in scenario s = 4b + l when word l of Philox4x32-7 at
// counter {b, key_lo, key_hi, b >> 32} under key {seed_lo, seed_hi} is below floor(p * 2^32)
// (2^32 when p >= 1; never when p <= 0 or NaN).
std::vector<std::int64_t> reference(const pipeline& d, std::size_t scenarios, std::uint64_t seed) {
  using philox = r123::Philox4x32_R<7>;
  philox rng;
  const philox::key_type k = {{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)}};
  std::vector<std::int64_t> out(scenarios, 0);
  for (std::size_t i = 0; i < d.p.size(); ++i) {
    const double q = d.p[i];
    if (!(q > 0.0)) continue;
    const std::uint64_t threshold =
        q >= 1.0 ? std::uint64_t{1} << 32 : static_cast<std::uint64_t>(std::floor(q * 4294967296.0));
    for (std::size_t s = 0; s < scenarios; ++s) {
      const std::uint64_t b = s / 4;
      const philox::ctr_type ctr = {{static_cast<std::uint32_t>(b), static_cast<std::uint32_t>(d.key[i]),
                                     static_cast<std::uint32_t>(d.key[i] >> 32),
                                     static_cast<std::uint32_t>(b >> 32)}};
      if (rng(ctr, k).v[s % 4] < threshold) out[s] += d.cents[i];
    }
  }
  return out;
}

// With parameter draws, deal i has probabilities p[i * draws + d] and scenario s uses draw
// s % draws; the random words are the same as above.
std::vector<std::int64_t> reference_draws(const std::vector<std::int64_t>& cents,
                                          const std::vector<double>& p, std::size_t draws,
                                          const std::vector<std::uint64_t>& key, std::size_t scenarios,
                                          std::uint64_t seed) {
  using philox = r123::Philox4x32_R<7>;
  philox rng;
  const philox::key_type k = {{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)}};
  std::vector<std::int64_t> out(scenarios, 0);
  for (std::size_t i = 0; i < cents.size(); ++i)
    for (std::size_t s = 0; s < scenarios; ++s) {
      const double q = p[i * draws + s % draws];
      if (!(q > 0.0)) continue;
      const std::uint64_t threshold =
          q >= 1.0 ? std::uint64_t{1} << 32 : static_cast<std::uint64_t>(std::floor(q * 4294967296.0));
      const std::uint64_t b = s / 4;
      const philox::ctr_type ctr = {{static_cast<std::uint32_t>(b), static_cast<std::uint32_t>(key[i]),
                                     static_cast<std::uint32_t>(key[i] >> 32),
                                     static_cast<std::uint32_t>(b >> 32)}};
      if (rng(ctr, k).v[s % 4] < threshold) out[s] += cents[i];
    }
  return out;
}

// `draws` probabilities per deal of `d`: the deal's own (with its special values) in some draws,
// others drawn afresh, certain (1.0, 2.0) or impossible (0, NaN) in others, so that a deal may be
// sure to win in some draws and never in others.
std::vector<double> draws_of(const pipeline& d, std::size_t draws) {
  std::vector<double> p(d.p.size() * draws);
  std::uint64_t x = 77;
  for (std::size_t i = 0; i < d.p.size(); ++i)
    for (std::size_t k = 0; k < draws; ++k) {
      x = x * 6364136223846793005ULL + 1442695040888963407ULL;
      const double fresh = static_cast<double>(x >> 11) * 0x1.0p-53;
      const double kinds[] = {d.p[i], fresh, 1.0, 0.0, 2.0, std::numeric_limits<double>::quiet_NaN(), fresh};
      p[i * draws + k] = kinds[(i + 3 * k) % std::size(kinds)];
    }
  return p;
}

} // namespace

TEST(monte_carlo_kernels, every_available_kernel_equals_the_reference_stream) {
  const auto d = make_pipeline(301);
  int ran = 0;
  for (mc_isa isa : {mc_isa::portable, mc_isa::sse2, mc_isa::avx2, mc_isa::avx512}) {
    if (!sf::detail::mc_isa_available(isa)) continue;
    ++ran;
    for (std::size_t scenarios : {1, 2, 3, 4, 5, 17, 33, 64, 65, 255, 1000})
      for (std::uint64_t seed : {std::uint64_t{0}, std::uint64_t{9}, std::uint64_t{0xfedcba9876543210ULL}}) {
        const auto want = reference(d, scenarios, seed);
        std::vector<std::int64_t> got(scenarios, 0);
        sf::detail::monte_carlo_cents_with(isa, d.cents, d.p, d.key, seed, got);
        ASSERT_EQ(got, want) << "kernel " << static_cast<int>(isa) << ", " << scenarios << " scenarios, seed "
                             << seed;
      }
  }
  EXPECT_GE(ran, 1);
}

TEST(monte_carlo_kernels, totals_are_added_to_and_the_public_function_uses_the_same_stream) {
  const auto d = make_pipeline(150);
  const std::size_t scenarios = 99;
  const auto want = reference(d, scenarios, 42);
  EXPECT_EQ(sf::monte_carlo_cents(d.cents, d.p, d.key, scenarios, 42, 1), want);
  EXPECT_EQ(sf::monte_carlo_cents(d.cents, d.p, d.key, scenarios, 42, 4), want);
  std::vector<std::int64_t> got(scenarios, 1'000);
  sf::detail::monte_carlo_cents_with(sf::detail::mc_isa_best(), d.cents, d.p, d.key, 42, got);
  for (std::size_t s = 0; s < scenarios; ++s) EXPECT_EQ(got[s], want[s] + 1'000) << "scenario " << s;
  // A deal certain to win adds its amount to every scenario; one that cannot win adds nothing.
  const std::vector<std::int64_t> cents = {700, 300};
  const std::vector<double> p = {1.0, 0.0};
  const std::vector<std::uint64_t> key = {1, 2};
  EXPECT_EQ(sf::monte_carlo_cents(cents, p, key, 5, 3), std::vector<std::int64_t>(5, 700));
}

TEST(monte_carlo_kernels, every_available_kernel_with_draws_equals_the_reference_stream) {
  const auto d = make_pipeline(157);
  int ran = 0;
  for (mc_isa isa : {mc_isa::portable, mc_isa::sse2, mc_isa::avx2, mc_isa::avx512}) {
    if (!sf::detail::mc_isa_available(isa)) continue;
    ++ran;
    // Draw counts dividing the 4, 8, 16, 32 scenarios of a group, sharing a factor with them, or
    // prime to them; more draws than scenarios.
    for (std::size_t draws : {1, 2, 3, 4, 7, 12, 32, 40, 101})
      for (std::size_t scenarios : {1, 5, 33, 64, 250})
        for (std::uint64_t seed : {std::uint64_t{5}, std::uint64_t{0xfedcba9876543210ULL}}) {
          const auto p = draws_of(d, draws);
          const auto want = reference_draws(d.cents, p, draws, d.key, scenarios, seed);
          std::vector<std::int64_t> got(scenarios, 0);
          sf::detail::monte_carlo_cents_draws_with(isa, d.cents, p, draws, d.key, seed, got);
          ASSERT_EQ(got, want) << "kernel " << static_cast<int>(isa) << ", " << draws << " draws, "
                               << scenarios << " scenarios, seed " << seed;
        }
  }
  EXPECT_GE(ran, 1);
}

TEST(monte_carlo_kernels, draws_public_function_and_one_draw) {
  // More deals than a tile of the draws kernels, on 1 and 3 threads; and with one draw the stream
  // is that of monte_carlo_cents.
  const auto d = make_pipeline(700);
  const std::size_t draws = 9, scenarios = 77;
  const auto p = draws_of(d, draws);
  const auto want = reference_draws(d.cents, p, draws, d.key, scenarios, 11);
  EXPECT_EQ(sf::monte_carlo_cents_draws(d.cents, p, draws, d.key, scenarios, 11, 1), want);
  EXPECT_EQ(sf::monte_carlo_cents_draws(d.cents, p, draws, d.key, scenarios, 11, 3), want);
  EXPECT_EQ(sf::monte_carlo_cents_draws(d.cents, d.p, 1, d.key, scenarios, 11),
            sf::monte_carlo_cents(d.cents, d.p, d.key, scenarios, 11));
  std::vector<std::int64_t> got(scenarios, -5);
  sf::detail::monte_carlo_cents_draws_with(sf::detail::mc_isa_best(), d.cents, p, draws, d.key, 11, got);
  for (std::size_t s = 0; s < scenarios; ++s) EXPECT_EQ(got[s], want[s] - 5) << "scenario " << s;
  EXPECT_THROW((void)sf::monte_carlo_cents_draws(d.cents, p, draws + 1, d.key, scenarios, 11),
               std::invalid_argument);
}

TEST(monte_carlo_kernels, unavailable_kernel_is_refused) {
  for (mc_isa isa : {mc_isa::sse2, mc_isa::avx2, mc_isa::avx512}) {
    if (sf::detail::mc_isa_available(isa)) continue;
    std::vector<std::int64_t> totals(4, 0);
    EXPECT_THROW(sf::detail::monte_carlo_cents_with(isa, {}, {}, {}, 1, totals), std::invalid_argument);
    EXPECT_THROW(sf::detail::monte_carlo_cents_draws_with(isa, {}, {}, 1, {}, 1, totals),
                 std::invalid_argument);
  }
  EXPECT_TRUE(sf::detail::mc_isa_available(mc_isa::portable));
}
