// Monte Carlo of won revenue: monte_carlo_cents and monte_carlo_cents_draws.
//
// The stream: deal i wins in scenario s = 4b + l when word l of Philox4x32-7 at counter
// {b mod 2^32, key_i mod 2^32, key_i / 2^32, b / 2^32} under the key {seed mod 2^32, seed / 2^32}
// is below threshold_i = floor(p_i * 2^32) (2^32 when p_i >= 1). Totals are integer sums, so any
// order of adding them, any thread count and any partitioning give the same result.
//
// The kernels compute exactly that stream, faster:
// - the first two Philox rounds split into a part that depends only on the block b and a part
//   that depends only on the deal, each computed once (the rounds are xors of products of single
//   counter words, so the split is exact); the five other rounds run in SIMD lanes, one block per
//   64-bit lane (the multiply takes the low 32 bits of each lane, the junk above them is masked
//   off before the compare);
// - the deals are taken in tiles and, for each group of blocks, the tile's deals add into
//   accumulators held in registers (the totals of a group are loaded and stored once per tile);
//   the accumulators are kept word-major within a group and put back in scenario order at the
//   end;
// - deals that win for sure add to every scenario once, deals that cannot win are dropped.
// With parameter draws (monte_carlo_cents_draws) scenario s compares with the threshold of draw
// s % draws: the same kernels read one threshold per lane instead of one per deal, laid out per
// tile for the groups that share their lanes' draws (groups `period` apart), and a deal sure to
// win in some draws only is an ordinary deal with thresholds of 2^32 there.

#include "smartfunnel/detail/monte_carlo.hpp"
#include "smartfunnel/forecast.hpp"

#include <Random123/philox.h>

#include <algorithm>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SMARTFUNNEL_MC_X86 1
#include <immintrin.h>
#endif

namespace smartfunnel {

namespace detail {
namespace {

constexpr std::uint32_t philox_m0 = 0xD2511F53u, philox_m1 = 0xCD9E8D57u;
constexpr std::uint32_t philox_w0 = 0x9E3779B9u, philox_w1 = 0xBB67AE85u;
constexpr int philox_rounds = 7;

// Philox4x32 with 7 rounds: the Random123 authors know of no statistical flaw at 7 rounds (10 is
// their default safety margin); Monte Carlo of Bernoulli outcomes takes the speed.
using mc_philox = r123::Philox4x32_R<philox_rounds>;

struct round_keys {
  std::uint32_t k0[philox_rounds], k1[philox_rounds];
};

round_keys make_round_keys(std::uint64_t seed) noexcept {
  round_keys rk{};
  rk.k0[0] = static_cast<std::uint32_t>(seed);
  rk.k1[0] = static_cast<std::uint32_t>(seed >> 32);
  for (int r = 1; r < philox_rounds; ++r) {
    rk.k0[r] = rk.k0[r - 1] + philox_w0;
    rk.k1[r] = rk.k1[r - 1] + philox_w1;
  }
  return rk;
}

inline void mulhilo(std::uint32_t a, std::uint32_t b, std::uint32_t& hi, std::uint32_t& lo) noexcept {
  const std::uint64_t x = std::uint64_t{a} * b;
  lo = static_cast<std::uint32_t>(x);
  hi = static_cast<std::uint32_t>(x >> 32);
}

// A deal reduced to its part of the counter after two rounds: words 0 and 2 are xor-ed with the
// block's part, word 3 is the deal's alone.
struct mc_deal {
  std::uint32_t d0, d2, d3, unused;
  std::int64_t threshold; // in [1, 2^32)
  std::int64_t cents;
};

mc_deal make_deal(std::uint64_t key, std::int64_t threshold, std::int64_t cents,
                  const round_keys& rk) noexcept {
  // Round 1, counter {b_lo, key_lo, key_hi, b_hi}: the deal's words are 0 and 1.
  std::uint32_t hi1, lo1;
  mulhilo(philox_m1, static_cast<std::uint32_t>(key >> 32), hi1, lo1);
  const std::uint32_t y0 = hi1 ^ static_cast<std::uint32_t>(key) ^ rk.k0[0], y1 = lo1;
  // Round 2: word 0 feeds the product of word 0; word 1 is xor-ed into word 0.
  std::uint32_t hi0, lo0;
  mulhilo(philox_m0, y0, hi0, lo0);
  return {y1 ^ rk.k0[1], hi0 ^ rk.k1[1], lo0, 0, threshold, cents};
}

// The blocks' parts after two rounds (as 64-bit lanes, the value in the low 32 bits): word 0 is
// g0 ^ d0, word 1 is g1, word 2 is g2 ^ d2.
struct mc_blocks {
  std::vector<std::uint64_t> g0, g1, g2;
};

mc_blocks make_blocks(std::size_t count, const round_keys& rk) {
  mc_blocks out;
  out.g0.resize(count);
  out.g1.resize(count);
  out.g2.resize(count);
  for (std::size_t b = 0; b < count; ++b) {
    std::uint32_t hi0, lo0;
    mulhilo(philox_m0, static_cast<std::uint32_t>(b), hi0, lo0);
    const std::uint32_t y2 = hi0 ^ static_cast<std::uint32_t>(static_cast<std::uint64_t>(b) >> 32) ^ rk.k1[0];
    std::uint32_t hi1, lo1;
    mulhilo(philox_m1, y2, hi1, lo1);
    out.g0[b] = hi1;
    out.g1[b] = lo1;
    out.g2[b] = lo0;
  }
  return out;
}

// Deals per tile: their records (32 bytes each) stay in L1 while every group of blocks is swept.
constexpr std::size_t deal_tile = 256;
// With parameter draws, fewer: each deal of the tile also has 4 L thresholds per group in L1.
constexpr std::size_t draws_tile = 64;

// The kernels below run the deals [d, end) over group g of L blocks and add into that group's
// accumulators. acc layout for L blocks per group: acc[g * 4L + w * L + j] is scenario
// 4 (L g + j) + w. Without draws (PerLane false) a deal's threshold is its own, the same in every
// lane; with draws (PerLane true) lane (w, j) of deal k uses lane_thr[k * 4L + w * L + j] (in
// [0, 2^32]: 0 never wins, 2^32 always).
template <bool PerLane>
void group_portable(const mc_deal* d, const mc_deal* end, const mc_blocks& blk, std::size_t b,
                    const round_keys& rk, std::int64_t* acc, const std::int64_t* lane_thr) {
  std::int64_t* a = acc + 4 * b;
  for (; d != end; ++d) {
    std::uint32_t x0 = static_cast<std::uint32_t>(blk.g0[b]) ^ d->d0,
                  x1 = static_cast<std::uint32_t>(blk.g1[b]),
                  x2 = static_cast<std::uint32_t>(blk.g2[b]) ^ d->d2, x3 = d->d3;
    for (int r = 2; r < philox_rounds; ++r) {
      std::uint32_t hi0, lo0, hi1, lo1;
      mulhilo(philox_m0, x0, hi0, lo0);
      mulhilo(philox_m1, x2, hi1, lo1);
      x0 = hi1 ^ x1 ^ rk.k0[r];
      x1 = lo1;
      x2 = hi0 ^ x3 ^ rk.k1[r];
      x3 = lo0;
    }
    std::int64_t t[4] = {d->threshold, d->threshold, d->threshold, d->threshold};
    if constexpr (PerLane) {
      std::copy(lane_thr, lane_thr + 4, t);
      lane_thr += 4;
    }
    a[0] += std::int64_t{x0} < t[0] ? d->cents : 0;
    a[1] += std::int64_t{x1} < t[1] ? d->cents : 0;
    a[2] += std::int64_t{x2} < t[2] ? d->cents : 0;
    a[3] += std::int64_t{x3} < t[3] ? d->cents : 0;
  }
}

#ifdef SMARTFUNNEL_MC_X86

// SSE2 (every x86-64): two blocks per register. The 64-bit compare is SSE4.2, so the low words are
// compared as signed 32-bit numbers after flipping their sign bits and the result is copied to
// the high half of each lane. Thresholds per lane may be 2^32: those lanes compare by the sign of
// the 64-bit difference (both sides in [0, 2^32]).
template <bool PerLane>
void group_sse2(const mc_deal* d, const mc_deal* end, const mc_blocks& blk, std::size_t g,
                const round_keys& rk, std::int64_t* acc, const std::int64_t* lane_thr) {
  const __m128i m0 = _mm_set1_epi64x(philox_m0), m1 = _mm_set1_epi64x(philox_m1);
  const __m128i sign = _mm_set1_epi32(static_cast<int>(0x80000000u));
  const __m128i low = _mm_set1_epi64x(0xFFFFFFFFLL);
  __m128i k0[philox_rounds], k1[philox_rounds];
  for (int r = 0; r < philox_rounds; ++r) {
    k0[r] = _mm_set1_epi32(static_cast<int>(rk.k0[r]));
    k1[r] = _mm_set1_epi32(static_cast<int>(rk.k1[r]));
  }
  auto* gp = reinterpret_cast<__m128i*>(acc + 8 * g);
  __m128i a0 = _mm_loadu_si128(gp), a1 = _mm_loadu_si128(gp + 1), a2 = _mm_loadu_si128(gp + 2),
          a3 = _mm_loadu_si128(gp + 3);
  const __m128i g0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk.g0.data() + 2 * g));
  const __m128i g1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk.g1.data() + 2 * g));
  const __m128i g2 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk.g2.data() + 2 * g));
  for (; d != end; ++d) {
    __m128i x0 = _mm_xor_si128(g0, _mm_set1_epi32(static_cast<int>(d->d0))), x1 = g1;
    __m128i x2 = _mm_xor_si128(g2, _mm_set1_epi32(static_cast<int>(d->d2)));
    __m128i x3 = _mm_set1_epi32(static_cast<int>(d->d3));
    for (int r = 2; r < philox_rounds; ++r) {
      const __m128i p0 = _mm_mul_epu32(x0, m0), p1 = _mm_mul_epu32(x2, m1);
      x0 = _mm_xor_si128(_mm_xor_si128(_mm_srli_epi64(p1, 32), x1), k0[r]);
      x2 = _mm_xor_si128(_mm_xor_si128(_mm_srli_epi64(p0, 32), x3), k1[r]);
      x1 = p1;
      x3 = p0;
    }
    const __m128i c = _mm_set1_epi64x(d->cents);
    if constexpr (PerLane) {
      const auto* t = reinterpret_cast<const __m128i*>(lane_thr);
      const auto win = [&](__m128i x, __m128i thr) {
        const __m128i diff = _mm_sub_epi64(_mm_and_si128(x, low), thr); // < 0 where x < thr
        return _mm_and_si128(_mm_shuffle_epi32(_mm_srai_epi32(diff, 31), 0xF5), c);
      };
      a0 = _mm_add_epi64(a0, win(x0, _mm_loadu_si128(t)));
      a1 = _mm_add_epi64(a1, win(x1, _mm_loadu_si128(t + 1)));
      a2 = _mm_add_epi64(a2, win(x2, _mm_loadu_si128(t + 2)));
      a3 = _mm_add_epi64(a3, win(x3, _mm_loadu_si128(t + 3)));
      lane_thr += 8;
    } else {
      const __m128i thr = _mm_xor_si128(_mm_set1_epi32(static_cast<int>(d->threshold)), sign);
      const auto win = [&](__m128i x) {
        const __m128i lt = _mm_cmpgt_epi32(thr, _mm_xor_si128(x, sign));
        return _mm_and_si128(_mm_shuffle_epi32(lt, 0xA0), c);
      };
      a0 = _mm_add_epi64(a0, win(x0));
      a1 = _mm_add_epi64(a1, win(x1));
      a2 = _mm_add_epi64(a2, win(x2));
      a3 = _mm_add_epi64(a3, win(x3));
    }
  }
  _mm_storeu_si128(gp, a0);
  _mm_storeu_si128(gp + 1, a1);
  _mm_storeu_si128(gp + 2, a2);
  _mm_storeu_si128(gp + 3, a3);
}

template <bool PerLane>
[[gnu::target("avx2")]] void group_avx2(const mc_deal* d, const mc_deal* end, const mc_blocks& blk,
                                        std::size_t g, const round_keys& rk, std::int64_t* acc,
                                        const std::int64_t* lane_thr) {
  const __m256i m0 = _mm256_set1_epi64x(philox_m0), m1 = _mm256_set1_epi64x(philox_m1);
  const __m256i low = _mm256_set1_epi64x(0xFFFFFFFFLL);
  __m256i k0[philox_rounds], k1[philox_rounds];
  for (int r = 0; r < philox_rounds; ++r) {
    k0[r] = _mm256_set1_epi32(static_cast<int>(rk.k0[r]));
    k1[r] = _mm256_set1_epi32(static_cast<int>(rk.k1[r]));
  }
  auto* ap = reinterpret_cast<__m256i*>(acc + 16 * g);
  __m256i a0 = _mm256_loadu_si256(ap), a1 = _mm256_loadu_si256(ap + 1), a2 = _mm256_loadu_si256(ap + 2),
          a3 = _mm256_loadu_si256(ap + 3);
  const __m256i g0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk.g0.data() + 4 * g));
  const __m256i g1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk.g1.data() + 4 * g));
  const __m256i g2 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk.g2.data() + 4 * g));
  for (; d != end; ++d) {
    __m256i x0 = _mm256_xor_si256(g0, _mm256_set1_epi32(static_cast<int>(d->d0))), x1 = g1;
    __m256i x2 = _mm256_xor_si256(g2, _mm256_set1_epi32(static_cast<int>(d->d2)));
    __m256i x3 = _mm256_set1_epi32(static_cast<int>(d->d3));
    for (int r = 2; r < philox_rounds; ++r) {
      const __m256i p0 = _mm256_mul_epu32(x0, m0), p1 = _mm256_mul_epu32(x2, m1);
      x0 = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(p1, 32), x1), k0[r]);
      x2 = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(p0, 32), x3), k1[r]);
      x1 = p1;
      x3 = p0;
    }
    __m256i t0, t1, t2, t3;
    if constexpr (PerLane) {
      const auto* t = reinterpret_cast<const __m256i*>(lane_thr);
      t0 = _mm256_loadu_si256(t);
      t1 = _mm256_loadu_si256(t + 1);
      t2 = _mm256_loadu_si256(t + 2);
      t3 = _mm256_loadu_si256(t + 3);
      lane_thr += 16;
    } else {
      t0 = t1 = t2 = t3 = _mm256_set1_epi64x(d->threshold);
    }
    const __m256i c = _mm256_set1_epi64x(d->cents);
    a0 = _mm256_add_epi64(a0, _mm256_and_si256(_mm256_cmpgt_epi64(t0, _mm256_and_si256(x0, low)), c));
    a1 = _mm256_add_epi64(a1, _mm256_and_si256(_mm256_cmpgt_epi64(t1, _mm256_and_si256(x1, low)), c));
    a2 = _mm256_add_epi64(a2, _mm256_and_si256(_mm256_cmpgt_epi64(t2, _mm256_and_si256(x2, low)), c));
    a3 = _mm256_add_epi64(a3, _mm256_and_si256(_mm256_cmpgt_epi64(t3, _mm256_and_si256(x3, low)), c));
  }
  _mm256_storeu_si256(ap, a0);
  _mm256_storeu_si256(ap + 1, a1);
  _mm256_storeu_si256(ap + 2, a2);
  _mm256_storeu_si256(ap + 3, a3);
}

template <bool PerLane>
[[gnu::target("avx512f")]] void group_avx512(const mc_deal* d, const mc_deal* end, const mc_blocks& blk,
                                             std::size_t g, const round_keys& rk, std::int64_t* acc,
                                             const std::int64_t* lane_thr) {
  const __m512i m0 = _mm512_set1_epi64(philox_m0), m1 = _mm512_set1_epi64(philox_m1);
  const __m512i low = _mm512_set1_epi64(0xFFFFFFFFLL);
  // The masked forms (all lanes) of the multiply and the shift: the plain ones read an undefined
  // vector that GCC 12 reports as maybe uninitialized (GCC bug 105593).
  const __mmask8 all = 0xFF;
  __m512i k0[philox_rounds], k1[philox_rounds];
  for (int r = 0; r < philox_rounds; ++r) {
    k0[r] = _mm512_set1_epi32(static_cast<int>(rk.k0[r]));
    k1[r] = _mm512_set1_epi32(static_cast<int>(rk.k1[r]));
  }
  std::int64_t* ap = acc + 32 * g;
  __m512i a0 = _mm512_loadu_si512(ap), a1 = _mm512_loadu_si512(ap + 8), a2 = _mm512_loadu_si512(ap + 16),
          a3 = _mm512_loadu_si512(ap + 24);
  const __m512i g0 = _mm512_loadu_si512(blk.g0.data() + 8 * g);
  const __m512i g1 = _mm512_loadu_si512(blk.g1.data() + 8 * g);
  const __m512i g2 = _mm512_loadu_si512(blk.g2.data() + 8 * g);
  for (; d != end; ++d) {
    __m512i x0 = _mm512_xor_si512(g0, _mm512_set1_epi32(static_cast<int>(d->d0))), x1 = g1;
    __m512i x2 = _mm512_xor_si512(g2, _mm512_set1_epi32(static_cast<int>(d->d2)));
    __m512i x3 = _mm512_set1_epi32(static_cast<int>(d->d3));
    for (int r = 2; r < philox_rounds; ++r) {
      const __m512i p0 = _mm512_maskz_mul_epu32(all, x0, m0), p1 = _mm512_maskz_mul_epu32(all, x2, m1);
      x0 = _mm512_xor_si512(_mm512_xor_si512(_mm512_maskz_srli_epi64(all, p1, 32), x1), k0[r]);
      x2 = _mm512_xor_si512(_mm512_xor_si512(_mm512_maskz_srli_epi64(all, p0, 32), x3), k1[r]);
      x1 = p1;
      x3 = p0;
    }
    __m512i t0, t1, t2, t3;
    if constexpr (PerLane) {
      t0 = _mm512_loadu_si512(lane_thr);
      t1 = _mm512_loadu_si512(lane_thr + 8);
      t2 = _mm512_loadu_si512(lane_thr + 16);
      t3 = _mm512_loadu_si512(lane_thr + 24);
      lane_thr += 32;
    } else {
      t0 = t1 = t2 = t3 = _mm512_set1_epi64(d->threshold);
    }
    const __m512i c = _mm512_set1_epi64(d->cents);
    a0 = _mm512_mask_add_epi64(a0, _mm512_cmplt_epu64_mask(_mm512_and_si512(x0, low), t0), a0, c);
    a1 = _mm512_mask_add_epi64(a1, _mm512_cmplt_epu64_mask(_mm512_and_si512(x1, low), t1), a1, c);
    a2 = _mm512_mask_add_epi64(a2, _mm512_cmplt_epu64_mask(_mm512_and_si512(x2, low), t2), a2, c);
    a3 = _mm512_mask_add_epi64(a3, _mm512_cmplt_epu64_mask(_mm512_and_si512(x3, low), t3), a3, c);
  }
  _mm512_storeu_si512(ap, a0);
  _mm512_storeu_si512(ap + 8, a1);
  _mm512_storeu_si512(ap + 16, a2);
  _mm512_storeu_si512(ap + 24, a3);
}

#endif // SMARTFUNNEL_MC_X86

using group_fn = void (*)(const mc_deal*, const mc_deal*, const mc_blocks&, std::size_t, const round_keys&,
                          std::int64_t*, const std::int64_t*);

// The group kernel of an instruction set (PerLane: thresholds per lane, for parameter draws).
template <bool PerLane>
group_fn group_kernel(mc_isa isa) noexcept {
  switch (isa) {
#ifdef SMARTFUNNEL_MC_X86
  case mc_isa::sse2:
    return &group_sse2<PerLane>;
  case mc_isa::avx2:
    return &group_avx2<PerLane>;
  case mc_isa::avx512:
    return &group_avx512<PerLane>;
#endif
  default:
    return &group_portable<PerLane>;
  }
}

// Blocks per group (SIMD lanes) of each kernel.
std::size_t lanes(mc_isa isa) noexcept {
  switch (isa) {
  case mc_isa::portable:
    return 1;
  case mc_isa::sse2:
    return 2;
  case mc_isa::avx2:
    return 4;
  case mc_isa::avx512:
    return 8;
  }
  return 1;
}

// Adds the accumulators (word-major within each group) and `sure` to the totals in scenario order.
void add_scenarios(const std::vector<std::int64_t>& acc, std::size_t width, std::size_t groups,
                   std::int64_t sure, std::span<std::int64_t> totals) {
  const std::size_t scenarios = totals.size();
  for (std::size_t g = 0; g < groups; ++g)
    for (std::size_t w = 0; w < 4; ++w)
      for (std::size_t j = 0; j < width; ++j) {
        const std::size_t s = 4 * (width * g + j) + w;
        if (s < scenarios) totals[s] += acc[4 * width * g + width * w + j] + sure;
      }
}

} // namespace

bool mc_isa_available(mc_isa isa) noexcept {
  switch (isa) {
  case mc_isa::portable:
    return true;
#ifdef SMARTFUNNEL_MC_X86
  case mc_isa::sse2:
    return true;
  case mc_isa::avx2:
    return __builtin_cpu_supports("avx2");
  case mc_isa::avx512:
    return __builtin_cpu_supports("avx512f");
#else
  default:
    return false;
#endif
  }
  return false;
}

mc_isa mc_isa_best() noexcept {
  static const mc_isa best = [] {
    for (mc_isa isa : {mc_isa::avx512, mc_isa::avx2, mc_isa::sse2})
      if (mc_isa_available(isa)) return isa;
    return mc_isa::portable;
  }();
  return best;
}

void monte_carlo_cents_with(mc_isa isa, std::span<const std::int64_t> cents, std::span<const double> p,
                            std::span<const std::uint64_t> key, std::uint64_t seed,
                            std::span<std::int64_t> totals) {
  if (!mc_isa_available(isa)) throw std::invalid_argument("monte_carlo_cents: kernel not available here");
  if (cents.size() != p.size() || key.size() != p.size())
    throw std::invalid_argument("monte_carlo_cents: cents, p and key must have the same length");
  const std::size_t scenarios = totals.size();
  if (scenarios == 0) return;
  const round_keys rk = make_round_keys(seed);
  std::vector<mc_deal> deals;
  std::int64_t sure = 0; // deals with p >= 1 win in every scenario
  for (std::size_t i = 0; i < p.size(); ++i) {
    const double q = p[i];
    const std::int64_t c = cents[i];
    if (!(q > 0.0) || c == 0) continue;
    if (q >= 1.0) {
      sure += c;
      continue;
    }
    // Deal i wins in a scenario when its 32-bit draw is below q * 2^32.
    const auto threshold = static_cast<std::int64_t>(q * 4294967296.0);
    if (threshold > 0) deals.push_back(make_deal(key[i], threshold, c, rk));
  }
  const std::size_t width = lanes(isa), blocks = (scenarios + 3) / 4, groups = (blocks + width - 1) / width;
  std::vector<std::int64_t> acc(groups * width * 4, 0);
  if (!deals.empty()) {
    const mc_blocks blk = make_blocks(groups * width, rk);
    const group_fn run = group_kernel<false>(isa);
    for (std::size_t t = 0; t < deals.size(); t += deal_tile) {
      const mc_deal* const end = deals.data() + std::min(deals.size(), t + deal_tile);
      for (std::size_t g = 0; g < groups; ++g) run(deals.data() + t, end, blk, g, rk, acc.data(), nullptr);
    }
  }
  add_scenarios(acc, width, groups, sure, totals);
}

void monte_carlo_cents_draws_with(mc_isa isa, std::span<const std::int64_t> cents, std::span<const double> p,
                                  std::size_t draws, std::span<const std::uint64_t> key, std::uint64_t seed,
                                  std::span<std::int64_t> totals) {
  if (!mc_isa_available(isa))
    throw std::invalid_argument("monte_carlo_cents_draws: kernel not available here");
  if (draws == 0 || cents.size() * draws != p.size() || key.size() != cents.size())
    throw std::invalid_argument("monte_carlo_cents_draws: p must hold draws values per deal");
  const std::size_t scenarios = totals.size();
  if (scenarios == 0) return;
  const round_keys rk = make_round_keys(seed);
  const auto threshold = [](double q) -> std::int64_t {
    return !(q > 0.0) ? 0 : (q >= 1.0 ? std::int64_t{1} << 32 : static_cast<std::int64_t>(q * 4294967296.0));
  };
  std::vector<mc_deal> deals;
  std::vector<std::size_t> row; // each deal's row of p
  for (std::size_t i = 0; i < cents.size(); ++i) {
    if (cents[i] == 0) continue;
    bool any = false;
    for (std::size_t d = 0; d < draws && !any; ++d) any = threshold(p[i * draws + d]) > 0;
    if (!any) continue;
    deals.push_back(make_deal(key[i], 0, cents[i], rk));
    row.push_back(i);
  }
  const std::size_t width = lanes(isa), blocks = (scenarios + 3) / 4, groups = (blocks + width - 1) / width;
  std::vector<std::int64_t> acc(groups * width * 4, 0);
  if (!deals.empty()) {
    const mc_blocks blk = make_blocks(groups * width, rk);
    const group_fn run = group_kernel<true>(isa);
    // Lane (w, j) of group g is scenario 4 (L g + j) + w, so it uses draw (4 L g + 4 j + w) mod
    // draws: groups g and g + period use the same draws in every lane. The groups are taken by
    // that phase, and each tile's thresholds per lane are laid out once per phase.
    const std::size_t per_group = 4 * width;
    const std::size_t period = draws / std::gcd(draws, per_group);
    std::vector<std::size_t> lane_draw(per_group);
    std::vector<std::int64_t> lane_thr(draws_tile * per_group);
    for (std::size_t t = 0; t < deals.size(); t += draws_tile) {
      const std::size_t tile = std::min(deals.size(), t + draws_tile) - t;
      for (std::size_t c = 0; c < std::min(period, groups); ++c) {
        const std::size_t phase = (per_group % draws) * c % draws;
        for (std::size_t w = 0; w < 4; ++w)
          for (std::size_t j = 0; j < width; ++j) lane_draw[w * width + j] = (phase + 4 * j + w) % draws;
        for (std::size_t k = 0; k < tile; ++k) {
          const double* q = p.data() + row[t + k] * draws;
          for (std::size_t l = 0; l < per_group; ++l)
            lane_thr[k * per_group + l] = threshold(q[lane_draw[l]]);
        }
        for (std::size_t g = c; g < groups; g += period)
          run(deals.data() + t, deals.data() + t + tile, blk, g, rk, acc.data(), lane_thr.data());
      }
    }
  }
  add_scenarios(acc, width, groups, 0, totals);
}

// Throws std::overflow_error when the absolute cents of the deals that can win (can_win(i)) add up
// to more than int64 max: a scenario's total could wrap around into a wrong number.
template <class CanWin>
void check_total_fits(std::span<const std::int64_t> cents, CanWin&& can_win, const char* what) {
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < cents.size(); ++i) {
    if (cents[i] == 0 || !can_win(i)) continue;
    const std::int64_t c = cents[i];
    const std::uint64_t mag =
        c < 0 ? std::uint64_t{0} - static_cast<std::uint64_t>(c) : static_cast<std::uint64_t>(c);
    if (__builtin_add_overflow(total, mag, &total) ||
        total > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      throw std::overflow_error(std::string(what) +
                                ": the deals' amounts add up to more than the 9223372036854775807 cents an "
                                "int64 total holds (the first " +
                                std::to_string(i + 1) + " deals already do); use amounts in a larger unit");
  }
}

} // namespace detail

std::vector<std::int64_t> monte_carlo_cents_draws(std::span<const std::int64_t> cents,
                                                  std::span<const double> p, std::size_t draws,
                                                  std::span<const std::uint64_t> key, std::size_t scenarios,
                                                  std::uint64_t seed, std::size_t threads) {
  if (draws == 0 || cents.size() * draws != p.size() || key.size() != cents.size())
    throw std::invalid_argument("monte_carlo_cents_draws: p must hold draws values per deal");
  detail::check_total_fits(
      cents,
      [&](std::size_t i) {
        for (std::size_t d = 0; d < draws; ++d)
          if (p[i * draws + d] > 0.0) return true;
        return false;
      },
      "monte_carlo_cents_draws");
  const std::size_t n = cents.size();
  threads = std::max<std::size_t>(1, std::min(threads, std::max<std::size_t>(1, n)));
  const detail::mc_isa isa = detail::mc_isa_best();
  std::vector<std::int64_t> totals(scenarios, 0);
  if (threads == 1) {
    detail::monte_carlo_cents_draws_with(isa, cents, p, draws, key, seed, totals);
    return totals;
  }
  std::vector<std::vector<std::int64_t>> partial(threads, std::vector<std::int64_t>(scenarios, 0));
  const std::size_t chunk = (n + threads - 1) / threads;
  {
    std::vector<std::jthread> pool;
    for (std::size_t t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        const std::size_t b = std::min(n, t * chunk), e = std::min(n, (t + 1) * chunk);
        detail::monte_carlo_cents_draws_with(isa, cents.subspan(b, e - b),
                                             p.subspan(b * draws, (e - b) * draws), draws,
                                             key.subspan(b, e - b), seed, partial[t]);
      });
  }
  for (const auto& part : partial) // integer sums: the same for any split
    for (std::size_t sc = 0; sc < scenarios; ++sc) totals[sc] += part[sc];
  return totals;
}

std::vector<std::int64_t> monte_carlo_cents(std::span<const std::int64_t> cents, std::span<const double> p,
                                            std::span<const std::uint64_t> key, std::size_t scenarios,
                                            std::uint64_t seed, std::size_t threads) {
  if (cents.size() != p.size() || key.size() != p.size())
    throw std::invalid_argument("monte_carlo_cents: cents, p and key must have the same length");
  detail::check_total_fits(
      cents, [&](std::size_t i) { return p[i] > 0.0; }, "monte_carlo_cents");
  const std::size_t n = p.size();
  threads = std::max<std::size_t>(1, std::min(threads, std::max<std::size_t>(1, n)));
  const detail::mc_isa isa = detail::mc_isa_best();
  std::vector<std::int64_t> totals(scenarios, 0);
  if (threads == 1) {
    detail::monte_carlo_cents_with(isa, cents, p, key, seed, totals);
    return totals;
  }
  std::vector<std::vector<std::int64_t>> partial(threads, std::vector<std::int64_t>(scenarios, 0));
  const std::size_t chunk = (n + threads - 1) / threads;
  {
    std::vector<std::jthread> pool;
    for (std::size_t t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        const std::size_t b = std::min(n, t * chunk), e = std::min(n, (t + 1) * chunk);
        detail::monte_carlo_cents_with(isa, cents.subspan(b, e - b), p.subspan(b, e - b),
                                       key.subspan(b, e - b), seed, partial[t]);
      });
  }
  for (const auto& part : partial) // integer sums: the same for any split
    for (std::size_t s = 0; s < scenarios; ++s) totals[s] += part[s];
  return totals;
}

} // namespace smartfunnel
