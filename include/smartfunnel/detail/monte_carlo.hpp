#pragma once
// The kernels behind monte_carlo_cents and monte_carlo_cents_draws, one per instruction set,
// chosen at run time. Exposed so that the tests can run every kernel the machine supports against
// the Random123 reference.

#include <cstdint>
#include <span>
#include <vector>

namespace smartfunnel::detail {

/// The Monte Carlo kernels: plain C++ (any platform), SSE2 (the x86-64 baseline), AVX2, AVX-512F.
enum class mc_isa { portable, sse2, avx2, avx512 };

/// Whether this build and this CPU can run the kernel (portable: always).
[[nodiscard]] bool mc_isa_available(mc_isa isa) noexcept;

/// The fastest kernel available.
[[nodiscard]] mc_isa mc_isa_best() noexcept;

/// monte_carlo_cents on the calling thread with the given kernel (which must be available); adds
/// each scenario's total to totals[s] (totals.size() is the number of scenarios).
void monte_carlo_cents_with(mc_isa isa, std::span<const std::int64_t> cents, std::span<const double> p,
                            std::span<const std::uint64_t> key, std::uint64_t seed,
                            std::span<std::int64_t> totals);

/// monte_carlo_cents_draws on the calling thread with the given kernel: p holds `draws` values per
/// deal (deal-major) and scenario s uses draw s % draws; adds into totals like the above.
void monte_carlo_cents_draws_with(mc_isa isa, std::span<const std::int64_t> cents, std::span<const double> p,
                                  std::size_t draws, std::span<const std::uint64_t> key, std::uint64_t seed,
                                  std::span<std::int64_t> totals);

} // namespace smartfunnel::detail
