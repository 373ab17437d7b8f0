#pragma once
// Small, portable, seeded random number generation. The standard library's distributions are
// implementation-defined, so results would differ between standard libraries; these do not.

#include <cmath>
#include <cstdint>

namespace smartfunnel::detail {

/// Mixes several 64-bit values into one (splitmix64 finaliser chained), for stream keys.
constexpr std::uint64_t mix64(std::uint64_t z) noexcept {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
template <class... Rest>
constexpr std::uint64_t mix(std::uint64_t first, Rest... rest) noexcept {
  std::uint64_t h = mix64(first + 0x9e3779b97f4a7c15ULL);
  ((h = mix64(h ^ (static_cast<std::uint64_t>(rest) + 0x9e3779b97f4a7c15ULL))), ...);
  return h;
}

/// SplitMix64: a fast generator whose whole state is one counter, keyed by mix(...).
class splitmix64 {
public:
  explicit constexpr splitmix64(std::uint64_t seed) noexcept : state_(seed) {}
  constexpr std::uint64_t next() noexcept {
    state_ += 0x9e3779b97f4a7c15ULL;
    return mix64(state_);
  }
  /// Uniform in (0, 1): never exactly 0 or 1.
  double uniform() noexcept { return (static_cast<double>(next() >> 11) + 0.5) * 0x1.0p-53; }

private:
  std::uint64_t state_;
};

/// Standard normal by the Marsaglia polar method.
template <class Rng>
double normal(Rng& rng) noexcept {
  for (;;) {
    const double u = 2.0 * rng.uniform() - 1.0, v = 2.0 * rng.uniform() - 1.0;
    const double s = u * u + v * v;
    if (s > 0.0 && s < 1.0) return u * std::sqrt(-2.0 * std::log(s) / s);
  }
}

/// Gamma(shape, 1) by Marsaglia and Tsang (2000), with the boost for shape < 1.
template <class Rng>
double gamma(Rng& rng, double shape) noexcept {
  if (shape < 1.0) return gamma(rng, shape + 1.0) * std::pow(rng.uniform(), 1.0 / shape);
  const double d = shape - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
  for (;;) {
    double x, v;
    do {
      x = normal(rng);
      v = 1.0 + c * x;
    } while (v <= 0.0);
    v = v * v * v;
    const double u = rng.uniform();
    if (u < 1.0 - 0.0331 * x * x * x * x) return d * v;
    if (std::log(u) < 0.5 * x * x + d * (1.0 - v + std::log(v))) return d * v;
  }
}

} // namespace smartfunnel::detail
