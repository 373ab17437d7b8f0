#include "smartfunnel/forecast.hpp"

#include "smartfunnel/detail/calibrate.hpp"
#include "smartfunnel/detail/random.hpp"
#include "smartfunnel/detail/visible.hpp"
#include "smartfunnel/error.hpp"
#include "smartfunnel/semi_markov.hpp"

#include <Random123/philox.h>
#include <unsupported/Eigen/FFT>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <complex>
#include <limits>
#include <map>
#include <sstream>
#include <thread>
#include <unordered_map>

namespace smartfunnel {

namespace {
constexpr double nan = std::numeric_limits<double>::quiet_NaN();
}

namespace {
std::string num(double x) {
  std::ostringstream os;
  os.precision(15);
  os << x;
  return os.str();
}
} // namespace

void forecast_options::validate() const {
  if (end <= start)
    throw invalid_options("the period must end after it starts (start " + std::to_string(start) + ", end " +
                          std::to_string(end) + ")");
  if (lattice_cells < 16 || lattice_cells > max_lattice_cells)
    throw invalid_options("lattice_cells must be in [16, " + std::to_string(max_lattice_cells) + "], got " +
                          std::to_string(lattice_cells));
  if (!(lattice_sd > 0.0 && lattice_sd <= max_lattice_sd))
    throw invalid_options("lattice_sd must be in (0, " + num(max_lattice_sd) + "], got " + num(lattice_sd));
  if (scenarios > max_scenarios)
    throw invalid_options("scenarios must be in [0, " + std::to_string(max_scenarios) + "], got " +
                          std::to_string(scenarios));
  if (threads == 0 || threads > max_threads)
    throw invalid_options("threads must be in [1, " + std::to_string(max_threads) + "], got " +
                          std::to_string(threads));
  if (parameter_draws > max_parameter_draws)
    throw invalid_options("parameter_draws must be in [0, " + std::to_string(max_parameter_draws) +
                          "], got " + std::to_string(parameter_draws));
  if (!(arrivals_lookback_days > 0.0 && arrivals_lookback_days <= max_arrivals_lookback_days))
    throw invalid_options("arrivals_lookback_days must be > 0 and at most " +
                          num(max_arrivals_lookback_days) + " (10,000 years), got " +
                          num(arrivals_lookback_days));
  if (stale_after_days && !(*stale_after_days >= 0.0))
    throw invalid_options("stale_after_days must be >= 0, got " + num(*stale_after_days));
  if (grid_days && !(*grid_days > 0.0 && *grid_days <= 366.0))
    throw invalid_options("grid_days must be > 0 and at most 366, got " + num(*grid_days));
  calibration.validate();
}

// ---------------------------------------------------------------------------------------------
// Exact distribution: divide-and-conquer convolution on a lattice

double revenue_distribution::quantile(double q) const {
  double total = 0.0;
  for (double x : pmf) total += x;
  double acc = 0.0;
  for (std::size_t i = 0; i < pmf.size(); ++i) {
    acc += pmf[i];
    if (acc >= q * total - 1e-15) return origin + static_cast<double>(i) * step;
  }
  return pmf.empty() ? nan : origin + static_cast<double>(pmf.size() - 1) * step;
}

double revenue_distribution::probability_at_least(double x) const {
  double p = 0.0;
  for (std::size_t i = pmf.size(); i-- > 0;) {
    if (origin + static_cast<double>(i) * step < x - 1e-9 * std::max(1.0, std::abs(x))) break;
    p += pmf[i];
  }
  return std::min(1.0, p);
}

namespace {

struct lattice_node {
  std::int64_t offset = 0; // lattice index of pmf[0]
  std::vector<double> pmf;
};

std::vector<double> convolve_pmf(const std::vector<double>& a, const std::vector<double>& b) {
  const std::size_t la = a.size(), lb = b.size(), lc = la + lb - 1;
  std::vector<double> c(lc, 0.0);
  // Directly when one side is short or has few nonzero cells (a deal's outcome: two or three),
  // in O(nonzeros x length) instead of an FFT of the whole length.
  auto nonzeros = [](const std::vector<double>& v, std::size_t limit) {
    std::size_t k = 0;
    for (double x : v)
      if (x != 0.0 && ++k > limit) break;
    return k;
  };
  const bool direct = std::min(la, lb) <= 64;
  const bool a_sparse = !direct && nonzeros(a, 64) <= 64;
  if (direct || a_sparse || nonzeros(b, 64) <= 64) {
    const bool a_small = direct ? la <= lb : a_sparse;
    const auto& small = a_small ? a : b;
    const auto& big = a_small ? b : a;
    for (std::size_t i = 0; i < small.size(); ++i) {
      const double x = small[i];
      if (x == 0.0) continue;
      double* out = c.data() + i;
      for (std::size_t j = 0; j < big.size(); ++j) out[j] += x * big[j];
    }
    return c;
  }
  std::size_t n = 1;
  while (n < lc) n <<= 1;
  std::vector<double> pa(a), pb(b);
  pa.resize(n, 0.0);
  pb.resize(n, 0.0);
  thread_local Eigen::FFT<double> fft; // keeps its plans (twiddles) per size between calls
  std::vector<std::complex<double>> fa, fb;
  fft.fwd(fa, pa);
  fft.fwd(fb, pb);
  for (std::size_t i = 0; i < fa.size(); ++i) fa[i] *= fb[i];
  std::vector<double> out;
  fft.inv(out, fa);
  for (std::size_t i = 0; i < lc; ++i) c[i] = std::max(0.0, out[i]); // round-off below zero
  return c;
}

// Drops numerically empty cells at both ends, and cells outside [lo, hi] (absolute indices).
void trim(lattice_node& node, std::int64_t lo, std::int64_t hi, double& truncated) {
  auto& v = node.pmf;
  std::size_t b = 0, e = v.size();
  while (b < e && (v[b] < 1e-18 || node.offset + static_cast<std::int64_t>(b) < lo)) truncated += v[b++];
  while (e > b && (v[e - 1] < 1e-18 || node.offset + static_cast<std::int64_t>(e - 1) > hi))
    truncated += v[--e];
  if (b == e) { // keep at least the largest cell
    const auto it = std::max_element(v.begin(), v.end());
    b = static_cast<std::size_t>(it - v.begin());
    e = b + 1;
    truncated -= *it;
  }
  if (b > 0 || e < v.size()) {
    std::vector<double> w(v.begin() + static_cast<std::ptrdiff_t>(b),
                          v.begin() + static_cast<std::ptrdiff_t>(e));
    node.offset += static_cast<std::int64_t>(b);
    v = std::move(w);
  }
}

// The compound Poisson pmf on the lattice by FFT: exp(rate (phi_X - 1)), on a grid long enough
// that wrap-around is negligible (mean + sd standard deviations + the largest amount, doubled).
lattice_node compound_poisson_lattice(const compound_poisson& cp, double step, double sd, double& truncated) {
  std::vector<double> severity;
  for (std::size_t i = 0; i < cp.amount.size(); ++i) {
    if (!(cp.weight[i] > 0.0)) continue;
    const double x = std::max(0.0, cp.amount[i]) / step;
    const auto lo = static_cast<std::size_t>(std::floor(x));
    const double frac = x - static_cast<double>(lo);
    if (severity.size() < lo + 2) severity.resize(lo + 2, 0.0);
    severity[lo] += cp.weight[i] * (1.0 - frac);
    severity[lo + 1] += cp.weight[i] * frac;
  }
  const double mean = cp.mean() / step;
  // The variance of the total on the lattice: amounts below a step are split between 0 and one
  // step, which keeps the mean but widens the total (rate * E[j^2] over the split amounts).
  double m2 = 0.0;
  for (std::size_t j = 1; j < severity.size(); ++j)
    m2 += severity[j] * static_cast<double>(j) * static_cast<double>(j);
  const double var = std::max(cp.variance() / (step * step), cp.rate * m2);
  // The cells of interest: mean +- (sd standard deviations + the largest amount + 16), on a
  // circular grid twice that wide, so that the grid does not grow with the mean (the rate); mass
  // outside it (beyond 2 sd standard deviations) wraps around negligibly. Near 0 this is the grid
  // [0, 2 (mean + sd sigma + ...)).
  const double margin = sd * std::sqrt(var) + static_cast<double>(severity.size()) + 16.0;
  const double lo_need = std::max(0.0, std::floor(mean - margin)), hi_need = mean + margin;
  std::size_t n = 64;
  while (static_cast<double>(n) < 2.0 * (hi_need - lo_need)) n <<= 1;
  const auto origin = static_cast<std::int64_t>(
      std::max(0.0, lo_need - std::floor((static_cast<double>(n) - (hi_need - lo_need)) / 2.0)));
  severity.resize(n, 0.0);
  thread_local Eigen::FFT<double> fft; // keeps its plans (twiddles) per size between calls
  std::vector<std::complex<double>> phi;
  fft.fwd(phi, severity);
  for (auto& z : phi) z = std::exp(cp.rate * (z - 1.0));
  std::vector<double> circular;
  fft.inv(circular, phi);
  lattice_node node;
  node.offset = origin;
  node.pmf.resize(n);
  const auto shift = static_cast<std::size_t>(origin % static_cast<std::int64_t>(n));
  for (std::size_t k = 0; k < n; ++k) node.pmf[k] = std::max(0.0, circular[(k + shift) % n]);
  // Away from 0 (a large rate), outside the cells of interest there is only round-off and what
  // wrapped around; from 0, the whole grid is kept (the far right tail of a small rate).
  if (origin > 0)
    trim(node, static_cast<std::int64_t>(lo_need), static_cast<std::int64_t>(std::ceil(hi_need)), truncated);
  else
    trim(node, std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max(), truncated);
  return node;
}

} // namespace

double compound_poisson::mean() const noexcept {
  double m = 0.0;
  for (std::size_t i = 0; i < amount.size(); ++i) m += weight[i] * amount[i];
  return rate * m;
}

double compound_poisson::variance() const noexcept {
  double m2 = 0.0;
  for (std::size_t i = 0; i < amount.size(); ++i) m2 += weight[i] * amount[i] * amount[i];
  return rate * m2;
}

namespace {

// Mean and variance of sum amount_i * Bernoulli(p_i) (+ arrivals), the deals that win for sure and
// the sum of the uncertain probabilities: what the lattice of exact_distribution is built from.
struct pipeline_moments {
  double mean = 0.0, variance = 0.0, fixed = 0.0, sum_p = 0.0;
  bool with_arrivals = false;
};

pipeline_moments moments(std::span<const double> amount, std::span<const double> p,
                         const compound_poisson* arrivals) {
  if (amount.size() != p.size())
    throw std::invalid_argument("exact_distribution: amount and p must have the same length");
  pipeline_moments m;
  for (std::size_t i = 0; i < p.size(); ++i) {
    const double a = amount[i], q = std::clamp(p[i], 0.0, 1.0);
    if (!(a > 0.0) || !(q > 0.0)) continue;
    m.mean += a * q;
    if (q >= 1.0)
      m.fixed += a;
    else {
      m.variance += a * a * q * (1.0 - q);
      m.sum_p += q;
    }
  }
  m.with_arrivals = arrivals && arrivals->rate > 0.0 && arrivals->mean() > 0.0;
  if (m.with_arrivals) {
    m.mean += arrivals->mean();
    m.variance += arrivals->variance();
  }
  return m;
}

// Balanced pairwise merging of lattice nodes (mu, vr: their means and variances in lattice
// units); wide nodes are cut to mean +- sd standard deviations.
lattice_node merge_nodes(std::vector<lattice_node> nodes, std::vector<double> mu, std::vector<double> vr,
                         std::size_t cells, double sd, double& truncated) {
  const auto cap = static_cast<std::size_t>(4 * cells);
  while (nodes.size() > 1) {
    std::vector<lattice_node> next;
    std::vector<double> nmu, nvr;
    for (std::size_t i = 0; i + 1 < nodes.size(); i += 2) {
      lattice_node m;
      m.offset = nodes[i].offset + nodes[i + 1].offset;
      m.pmf = convolve_pmf(nodes[i].pmf, nodes[i + 1].pmf);
      const double mm = mu[i] + mu[i + 1], vv = vr[i] + vr[i + 1];
      std::int64_t lo = std::numeric_limits<std::int64_t>::min(),
                   hi = std::numeric_limits<std::int64_t>::max();
      if (m.pmf.size() > cap) {
        lo = static_cast<std::int64_t>(std::floor(mm - sd * std::sqrt(vv))) - 1;
        hi = static_cast<std::int64_t>(std::ceil(mm + sd * std::sqrt(vv))) + 1;
      }
      trim(m, lo, hi, truncated);
      next.push_back(std::move(m));
      nmu.push_back(mm);
      nvr.push_back(vv);
    }
    if (nodes.size() % 2 == 1) {
      next.push_back(std::move(nodes.back()));
      nmu.push_back(mu.back());
      nvr.push_back(vr.back());
    }
    nodes = std::move(next);
    mu = std::move(nmu);
    vr = std::move(nvr);
  }
  return std::move(nodes.front());
}

} // namespace

double lattice_step(double variance, double max_amount, std::size_t cells, double sd) noexcept {
  const double c = static_cast<double>(cells);
  return std::max(2.0 * sd * std::sqrt(std::max(0.0, variance)) / c, std::max(0.0, max_amount) / c);
}

double largest_uncertain_amount(std::span<const double> amount, std::span<const double> p,
                                const compound_poisson* arrivals) noexcept {
  double m = 0.0;
  for (std::size_t i = 0; i < std::min(amount.size(), p.size()); ++i) {
    const double a = amount[i], q = std::clamp(p[i], 0.0, 1.0);
    if (a > 0.0 && q > 0.0 && q < 1.0) m = std::max(m, a);
  }
  if (arrivals && arrivals->rate > 0.0)
    for (std::size_t k = 0; k < std::min(arrivals->amount.size(), arrivals->weight.size()); ++k)
      if (arrivals->weight[k] > 0.0) m = std::max(m, arrivals->amount[k]);
  return m;
}

revenue_distribution exact_distribution(std::span<const double> amount, std::span<const double> p,
                                        double offset, std::size_t cells, double sd,
                                        const compound_poisson* arrivals) {
  const auto m = moments(amount, p, arrivals);
  if (!(m.variance > 0.0)) { // nothing uncertain: a point mass
    revenue_distribution out;
    out.mean = offset + m.mean;
    out.origin = out.mean;
    out.pmf = {1.0};
    return out;
  }
  const double step = lattice_step(m.variance, largest_uncertain_amount(amount, p, arrivals), cells, sd);
  return exact_distribution_with_step(amount, p, step, offset, cells, sd, arrivals);
}

revenue_distribution exact_distribution_with_step(std::span<const double> amount, std::span<const double> p,
                                                  double step, double offset, std::size_t cells, double sd,
                                                  const compound_poisson* arrivals) {
  if (!(step > 0.0) || !std::isfinite(step))
    throw std::invalid_argument("exact_distribution_with_step: step must be positive and finite");
  const auto m = moments(amount, p, arrivals);
  // Leaves are amount / step cells long: a step finer than the largest amount over the lattice
  // would allocate without bound (lattice_step never gives one).
  const double widest = largest_uncertain_amount(amount, p, arrivals) / step;
  if (widest > static_cast<double>(cells) * (1.0 + 1e-9) + 1.0)
    throw std::invalid_argument("exact_distribution_with_step: step " + num(step) + " is finer than the " +
                                "largest uncertain amount over the lattice's " + std::to_string(cells) +
                                " cells (at least " + num(widest * step / static_cast<double>(cells)) +
                                ", see lattice_step)");
  revenue_distribution out;
  out.mean = offset + m.mean;
  out.variance = m.variance;
  out.step = step;
  out.w1_bound = step / 2.0 * m.sum_p;
  // Leaves: each uncertain deal's outcome on the lattice, its amount split between the two
  // nearest points so that its mean is exact.
  std::vector<lattice_node> nodes;
  std::vector<double> mu, vr; // per node, in lattice units
  for (std::size_t i = 0; i < p.size(); ++i) {
    const double a = amount[i], q = std::clamp(p[i], 0.0, 1.0);
    if (!(a > 0.0) || !(q > 0.0) || q >= 1.0) continue;
    const double x = a / step;
    const auto lo = static_cast<std::int64_t>(std::floor(x));
    const double frac = x - static_cast<double>(lo);
    lattice_node leaf;
    leaf.pmf.assign(static_cast<std::size_t>(lo + 2), 0.0);
    leaf.pmf[0] += 1.0 - q;
    leaf.pmf[static_cast<std::size_t>(lo)] += q * (1.0 - frac);
    leaf.pmf[static_cast<std::size_t>(lo + 1)] += q * frac;
    trim(leaf, std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max(),
         out.truncated_mass);
    nodes.push_back(std::move(leaf));
    mu.push_back(q * x);
    vr.push_back(x * x * q * (1.0 - q));
  }
  if (m.with_arrivals) {
    nodes.push_back(compound_poisson_lattice(*arrivals, step, sd, out.truncated_mass));
    mu.push_back(arrivals->mean() / step);
    vr.push_back(arrivals->variance() / (step * step));
  }
  if (nodes.empty()) { // only deals that win for sure
    out.origin = offset + m.fixed;
    out.pmf = {1.0};
    return out;
  }
  const auto root =
      merge_nodes(std::move(nodes), std::move(mu), std::move(vr), cells, sd, out.truncated_mass);
  out.origin = offset + m.fixed + static_cast<double>(root.offset) * step;
  out.pmf = root.pmf;
  out.truncated_mass = std::max(0.0, out.truncated_mass);
  return out;
}

revenue_distribution convolve(const revenue_distribution& a, const revenue_distribution& b, std::size_t cells,
                              double sd) {
  if (a.pmf.empty() || b.pmf.empty()) throw std::invalid_argument("convolve: empty distribution");
  const bool a_point = a.pmf.size() == 1, b_point = b.pmf.size() == 1;
  if (!a_point && !b_point && std::abs(a.step - b.step) > 1e-12 * std::max(a.step, b.step))
    throw std::invalid_argument("convolve: the distributions are on different lattice steps (" +
                                std::to_string(a.step) + " and " + std::to_string(b.step) + ")");
  revenue_distribution out;
  out.step = a_point ? b.step : a.step;
  out.mean = a.mean + b.mean;
  out.variance = a.variance + b.variance;
  out.w1_bound = a.w1_bound + b.w1_bound;
  out.truncated_mass = a.truncated_mass + b.truncated_mass;
  lattice_node m;
  m.pmf = convolve_pmf(a.pmf, b.pmf);
  const double origin = a.origin + b.origin;
  std::int64_t lo = std::numeric_limits<std::int64_t>::min(), hi = std::numeric_limits<std::int64_t>::max();
  if (m.pmf.size() > static_cast<std::size_t>(4 * cells)) {
    const double mm = (out.mean - origin) / out.step, sv = std::sqrt(out.variance) / out.step;
    lo = static_cast<std::int64_t>(std::floor(mm - sd * sv)) - 1;
    hi = static_cast<std::int64_t>(std::ceil(mm + sd * sv)) + 1;
  }
  trim(m, lo, hi, out.truncated_mass);
  out.origin = origin + static_cast<double>(m.offset) * out.step;
  out.pmf = std::move(m.pmf);
  out.truncated_mass = std::max(0.0, out.truncated_mass);
  return out;
}

revenue_distribution mixture(const std::vector<revenue_distribution>& parts, std::size_t cells, double sd,
                             double min_step) {
  revenue_distribution out;
  if (parts.empty()) return out;
  const double k = static_cast<double>(parts.size());
  double m2 = 0.0, lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (const auto& d : parts) {
    out.mean += d.mean / k;
    m2 += (d.variance + d.mean * d.mean) / k;
    out.truncated_mass += d.truncated_mass / k;
    out.w1_bound += d.w1_bound / k;
    lo = std::min(lo, d.origin);
    hi = std::max(hi, d.origin + static_cast<double>(d.pmf.size() - 1) * d.step);
  }
  out.variance = std::max(0.0, m2 - out.mean * out.mean);
  out.step = out.variance > 0.0 ? 2.0 * sd * std::sqrt(out.variance) / static_cast<double>(cells) : 1.0;
  // Never finer than the parts' floor, nor than holding their span in 8 * cells cells (parts whose
  // variance is tiny against their amounts would otherwise need a lattice without bound).
  out.step = std::max({out.step, min_step, (hi - lo) / (8.0 * static_cast<double>(cells))});
  // Anchored at the mean, so that where the parts' trimmed tails end does not move the points.
  out.origin = out.mean + std::floor((lo - out.mean) / out.step) * out.step;
  if (out.origin > lo) out.origin -= out.step; // rounding: never above the lowest point
  lo = out.origin;
  out.pmf.assign(static_cast<std::size_t>(std::ceil((hi - lo) / out.step)) + 2, 0.0);
  // Each part's points split between their two nearest points of the common lattice (means kept).
  for (const auto& d : parts)
    for (std::size_t i = 0; i < d.pmf.size(); ++i) {
      if (d.pmf[i] == 0.0) continue;
      const double y = (d.origin + static_cast<double>(i) * d.step - lo) / out.step;
      const auto j = static_cast<std::size_t>(std::floor(y));
      const double frac = y - static_cast<double>(j);
      out.pmf[j] += d.pmf[i] * (1.0 - frac) / k;
      if (frac > 0.0) out.pmf[j + 1] += d.pmf[i] * frac / k;
    }
  out.w1_bound += out.step / 2.0;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Monte Carlo

std::uint64_t opportunity_key(std::string_view id) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char ch : id) {
    h ^= ch;
    h *= 0x100000001b3ULL;
  }
  return h;
}

// ---------------------------------------------------------------------------------------------
// Arrivals in Monte Carlo: streams keyed by (seed, scenario, group, day)

namespace {

// Uniforms in (0, 1) from the Philox stream of one (scenario, group, day).
class stream_uniforms {
public:
  stream_uniforms(std::uint64_t seed, std::uint64_t scenario, std::uint64_t group, std::uint64_t day)
      : key_{{static_cast<std::uint32_t>(seed) ^ 0x5bd1e995u,
              static_cast<std::uint32_t>(seed >> 32) ^ 0x9e3779b9u}},
        ctr_{{static_cast<std::uint32_t>(scenario), static_cast<std::uint32_t>(group),
              static_cast<std::uint32_t>(day), 0}} {}
  double next() {
    if (used_ == 4) {
      block_ = rng_(ctr_, key_);
      ++ctr_.v[3];
      used_ = 0;
    }
    return (static_cast<double>(block_.v[used_++]) + 0.5) * (1.0 / 4294967296.0);
  }

private:
  r123::Philox4x32 rng_;
  r123::Philox4x32::key_type key_;
  r123::Philox4x32::ctr_type ctr_;
  r123::Philox4x32::ctr_type block_{};
  int used_ = 4;
};

// Poisson(mu) by inversion, in chunks of mean <= 8 so the loop stays short and exact.
std::int64_t poisson_draw(double mu, stream_uniforms& u) {
  std::int64_t total = 0;
  while (mu > 0.0) {
    const double m = std::min(mu, 8.0);
    mu -= m;
    double p = std::exp(-m), cdf = p;
    const double x = u.next();
    std::int64_t k = 0;
    while (x > cdf && k < 200) {
      ++k;
      p *= m / static_cast<double>(k);
      cdf += p;
    }
    total += k;
  }
  return total;
}

// The creation rate's level at as_of: a Poisson intensity exp(a + b x) over the lookback, x in
// (-1, 0] the creation time in lookbacks from as_of, fitted by maximum likelihood to the creation
// times x_i. The score equations are mean(x) = g(b) = 1/(e^b - 1) - 1/b (g increases from -1 to
// 0, g(0) = -1/2: no trend) and n = e^a (1 - e^-b) / b; the level e^a is in deals per lookback.
// The trend is used when b is at least trend_z standard errors (Fisher information n g'(b)) from
// 0, otherwise the flat rate n per lookback; the level is never carried forward past as_of.
struct creation_trend {
  double level = 0.0; // deals per lookback at as_of
  double slope = 0.0; // b: log growth per lookback (0 when flat)
};
constexpr double trend_z = 2.0;
double trend_g(double b) { return std::abs(b) < 1e-4 ? -0.5 + b / 12.0 : 1.0 / std::expm1(b) - 1.0 / b; }
double trend_g_prime(double b) {
  if (std::abs(b) < 1e-2) return 1.0 / 12.0 - b * b / 240.0;
  const double e = std::expm1(b);
  return 1.0 / (b * b) - std::exp(b) / (e * e);
}
creation_trend fit_creation_trend(std::span<const double> x) {
  const double n = static_cast<double>(x.size());
  creation_trend out{n, 0.0};
  if (x.size() < 2) return out;
  double mean = 0.0;
  for (double v : x) mean += v;
  mean /= n;
  double lo = -50.0, hi = 50.0;
  if (!(mean > trend_g(lo) && mean < trend_g(hi))) return out; // all at one end: no finite fit
  for (int it = 0; it < 200 && hi - lo > 1e-12; ++it) {
    const double mid = 0.5 * (lo + hi);
    (trend_g(mid) < mean ? lo : hi) = mid;
  }
  const double b = 0.5 * (lo + hi);
  const double se = 1.0 / std::sqrt(n * trend_g_prime(b));
  if (!(std::abs(b) >= trend_z * se)) return out;
  out.slope = b;
  out.level = std::abs(b) < 1e-12 ? n : n * b / -std::expm1(-b);
  return out;
}

struct arrival_group_mc {
  std::vector<double> mean_wins_by_day; // Poisson mean of new deals won, by creation tick
  std::vector<std::int64_t> cents;      // amounts to draw from
};

// Scenario s draws from by_draw[s % by_draw.size()] (one entry without parameter draws).
// Throws invalid_options when a scenario's total would not fit in int64 cents.
std::vector<std::int64_t> arrivals_monte_carlo(const std::vector<std::vector<arrival_group_mc>>& by_draw,
                                               std::size_t scenarios, std::uint64_t seed,
                                               std::size_t threads) {
  std::vector<std::int64_t> totals(scenarios, 0);
  std::atomic<bool> overflow{false};
  auto run = [&](std::size_t lo, std::size_t hi) {
    for (std::size_t sc = lo; sc < hi; ++sc) {
      const auto& groups = by_draw[sc % by_draw.size()];
      std::int64_t t = 0;
      for (std::size_t g = 0; g < groups.size(); ++g) {
        const auto& gr = groups[g];
        if (gr.cents.empty()) continue;
        for (std::size_t d = 0; d < gr.mean_wins_by_day.size(); ++d) {
          const double mu = gr.mean_wins_by_day[d];
          if (!(mu > 0.0)) continue;
          stream_uniforms u(seed, sc, g, d);
          const auto k = poisson_draw(mu, u);
          for (std::int64_t i = 0; i < k; ++i) {
            const auto pick = static_cast<std::size_t>(u.next() * static_cast<double>(gr.cents.size()));
            if (__builtin_add_overflow(t, gr.cents[std::min(pick, gr.cents.size() - 1)], &t)) {
              overflow = true;
              return;
            }
          }
        }
      }
      totals[sc] = t;
    }
  };
  threads = std::max<std::size_t>(1, std::min(threads, scenarios));
  if (threads == 1) {
    run(0, scenarios);
  } else {
    std::vector<std::jthread> pool;
    const std::size_t chunk = (scenarios + threads - 1) / threads;
    for (std::size_t t = 0; t < threads; ++t)
      pool.emplace_back(run, std::min(scenarios, t * chunk), std::min(scenarios, (t + 1) * chunk));
  }
  if (overflow)
    throw invalid_options("scenarios: a Monte Carlo scenario's wins from new deals add up to more than the "
                          "92,233,720,368,547,758.07 that int64 cents hold; use scenarios=0 (the exact "
                          "distribution has no such limit) or amounts in a larger unit");
  return totals;
}

} // namespace

// ---------------------------------------------------------------------------------------------
// The forecast

forecast_result forecast(const funnel_model& model, const event_log& log, const forecast_options& options) {
  options.validate();
  const auto& f = model.funnel();
  if (!(log.funnel() == f))
    throw invalid_options("the log's funnel '" + log.funnel().name() + "' is not the model's funnel '" +
                          f.name() + "'");
  const time_point as_of = options.as_of.value_or(model.as_of());
  if (as_of < model.as_of())
    throw invalid_options("forecast as_of " + std::to_string(as_of) + " is before the model's as_of " +
                          std::to_string(model.as_of()) +
                          ": a model cannot forecast from a time it had not seen");
  auto report = [&](double fraction) {
    if (options.progress && !options.progress(fraction)) throw cancelled("forecast cancelled");
  };
  report(0.0);
  const std::int64_t tick = model.options().tick_seconds;
  // The recursion's grid: `grid` ticks a step, `step` seconds.
  const std::int64_t grid = options.grid_days ? semi_markov::grid_ticks_for(*options.grid_days, tick)
                                              : semi_markov::default_grid_ticks(tick);
  const std::int64_t step = grid * tick;
  // Wins count by the whole step they fall in: a step longer than the period cannot tell a win
  // inside the period from one outside (a quarter on a 365-day grid would forecast 0).
  if (step > options.end - options.start)
    throw invalid_options("grid_days: the grid step of " + num(static_cast<double>(step) / 86400.0) +
                          " days is longer than the period (" +
                          num(static_cast<double>(options.end - options.start) / 86400.0) +
                          " days); use grid_days at most the period's length (or a fit with a finer tick)");
  const std::size_t n = f.n_open();
  forecast_result out;
  out.as_of = as_of;
  out.start = options.start;
  out.end = options.end;
  out.grid_ticks = grid;
  // Whole steps from as_of within which a win must happen: before end, and (for a future start)
  // not before start.
  auto steps_before = [&](time_point x) -> std::int64_t {
    if (x <= as_of) return -1;
    return (x - 1 - as_of) / step;
  };
  const std::int64_t h_end = steps_before(options.end);
  const std::int64_t h_start = steps_before(options.start);
  if (h_end > semi_markov::max_horizon_steps)
    throw invalid_options("the period ends " + std::to_string(h_end) + " grid steps of " +
                          std::to_string(step) + " s after as_of; the recursion reaches at most " +
                          std::to_string(semi_markov::max_horizon_steps) + " steps: use a coarser grid_days");

  std::optional<std::int64_t> stale; // in grid steps
  if (options.stale_after_days) {
    const double steps = std::floor(*options.stale_after_days * 86400.0 / static_cast<double>(step));
    if (!(steps <= static_cast<double>(semi_markov::max_kernel_steps)))
      throw invalid_options("stale_after_days " + std::to_string(*options.stale_after_days) + " is " +
                            "more than the " + std::to_string(semi_markov::max_kernel_steps) +
                            " grid steps of " + std::to_string(step) + " s the kernels reach");
    stale = static_cast<std::int64_t>(steps);
  }

  // Group of a deal: the deepest fitted group whose key matches the deal's values at as_of.
  const auto& levels = model.options().groups;
  std::map<std::vector<std::string>, std::size_t> group_of_key;
  auto deal_group = [&](std::size_t o) -> std::size_t {
    if (!options.use_groups || levels.empty()) return 0;
    std::vector<std::string> key;
    for (const auto& level : levels) {
      if (level == "owner") {
        auto w = log.owners().at(o, as_of);
        key.push_back(w ? log.owner_names()[*w] : "(missing)");
      } else if (auto a = log.find_attribute(level)) {
        const auto& attr = log.attributes()[*a];
        key.push_back(attr.code[o] < 0 ? "(missing)" : attr.values[static_cast<std::uint32_t>(attr.code[o])]);
      } else {
        key.push_back("(missing)");
      }
    }
    if (auto it = group_of_key.find(key); it != group_of_key.end()) return it->second;
    std::size_t g = 0;
    for (auto len = key.size(); len > 0; --len)
      if (auto found = model.find_group({key.begin(), key.begin() + static_cast<std::ptrdiff_t>(len)})) {
        g = *found;
        break;
      }
    group_of_key.emplace(key, g);
    return g;
  };

  // Pipeline at as_of, and wins already booked in the period.
  const auto offsets = log.offsets();
  const auto times = log.times();
  const auto stages = log.stages();
  for (std::size_t o = 0; o + 1 < offsets.size(); ++o) {
    const auto b = offsets[o];
    const auto e = detail::visible_end(times, b, offsets[o + 1], as_of);
    if (e == b) continue;
    const auto run = detail::run_start(stages, b, e - 1); // entry of the current stay
    const stage_code s = stages[e - 1];
    if (f.is_won(s)) {
      const time_point won_at = times[run];
      if (won_at >= options.start && won_at < options.end) {
        const double amt = log.amounts().at(o, won_at).value_or(0.0);
        out.realised_opportunity.push_back(o);
        out.realised_amount.push_back(amt);
        out.realised_time.push_back(won_at);
        out.realised += amt;
      }
      continue;
    }
    if (!f.is_open(s)) continue;
    out.deals.opportunity.push_back(o);
    out.deals.stage.push_back(s);
    out.deals.age_ticks.push_back((as_of - times[run]) / tick);
    out.deals.amount.push_back(log.amounts().at(o, as_of).value_or(0.0));
    out.deals.group.push_back(deal_group(o));
  }
  report(0.1);

  // Time-bounded probabilities, one semi-Markov model per group used, cached per (group, stage, age).
  const std::size_t n_deals = out.deals.opportunity.size();
  out.deals.p_win_period.assign(n_deals, 0.0);
  out.deals.p_win_ever.assign(n_deals, 0.0);
  struct group_state {
    semi_markov process;
    std::vector<double> won;
  };
  // The semi-Markov process of a model group (point estimates, or one posterior draw).
  auto make_process = [&](const group_fit& g) {
    group_state st{semi_markov::from_group(f, g, model.options(), stale, grid), {}};
    if (h_end >= 0) st.won = st.process.won_within(h_end);
    return st;
  };
  // Per-deal P(won in the period) and P(won ever) with the processes that get(g) returns,
  // cached per (group, stage, age).
  auto score_deals = [&](auto&& get, std::vector<double>& period, std::vector<double>* ever, bool progress) {
    std::unordered_map<std::uint64_t, std::pair<double, double>> cache;
    std::vector<double> scratch;
    for (std::size_t i = 0; i < n_deals; ++i) {
      const auto g = out.deals.group[i];
      const group_state& st = get(g);
      const auto s = out.deals.stage[i];
      const auto age = out.deals.age_ticks[i] / grid; // whole steps
      const std::uint64_t ck = (static_cast<std::uint64_t>(g) << 48) ^ (static_cast<std::uint64_t>(s) << 36) ^
                               static_cast<std::uint64_t>(age);
      auto c = cache.find(ck);
      if (c == cache.end()) {
        double p_end = 0.0, p_start = 0.0;
        if (h_end >= 0) p_end = st.process.p_win_within(s, age, h_end, st.won, scratch);
        if (h_start >= 0) p_start = st.process.p_win_within(s, age, h_start, st.won, scratch);
        const double p_ever = st.process.p_win_ever(s, age);
        c = cache.emplace(ck, std::make_pair(std::clamp(p_end - p_start, 0.0, 1.0), std::max(p_ever, p_end)))
                .first;
      }
      period[i] = c->second.first;
      if (ever) (*ever)[i] = c->second.second;
      if (progress && i % 4096 == 0)
        report(0.1 + 0.4 * static_cast<double>(i) / static_cast<double>(std::max<std::size_t>(1, n_deals)));
    }
  };
  std::map<std::size_t, group_state> processes;
  auto point_process = [&](std::size_t g) -> const group_state& {
    auto it = processes.find(g);
    if (it == processes.end()) it = processes.emplace(g, make_process(model.groups()[g])).first;
    return it->second;
  };
  score_deals(point_process, out.deals.p_win_period, &out.deals.p_win_ever, true);
  report(0.5);

  // Arrivals: deals created in the lookback give the creation rate and the entry stages, deals
  // won in the lookback the amounts (those created in it when too few won); a deal created t
  // steps from now is won in the period with the probability that the recursion gives from its
  // entry stage.
  std::vector<arrival_group_mc> arrival_mc;
  struct arrival_source {
    std::size_t model_group;
    double created;
    double lookback_steps;
    double trend_factor; // level at as_of over the flat rate (1 without a trend)
  };
  std::vector<arrival_source> arrival_sources;
  std::vector<double> entry(f.n_codes(), 0.0); // entry stages of the deals created in the lookback
  // Poisson mean, by creation step d, of new deals won in the period: rate * P(won in the period
  // | created at d), from the entry stages through the process.
  auto arrival_means = [&](const group_state& st, double rate) {
    auto won_by = [&](std::size_t code, std::int64_t x) -> double {
      if (x < 0) return 0.0;
      if (f.is_won(static_cast<stage_code>(code))) return 1.0;
      if (!f.is_open(static_cast<stage_code>(code))) return 0.0;
      const double v = st.won[static_cast<std::size_t>(x) * n + code];
      return std::isnan(v) ? 0.0 : v;
    };
    std::vector<double> means(static_cast<std::size_t>(h_end + 1), 0.0);
    for (std::int64_t d = 0; d <= h_end; ++d) {
      double q = 0.0;
      for (std::size_t code = 0; code < entry.size(); ++code)
        if (entry[code] > 0.0) q += entry[code] * (won_by(code, h_end - d) - won_by(code, h_start - d));
      means[static_cast<std::size_t>(d)] = rate * std::max(0.0, q);
    }
    return means;
  };
  if (options.include_arrivals && h_end >= 0) {
    const double lookback_steps = options.arrivals_lookback_days * 86400.0 / static_cast<double>(step);
    if (!(lookback_steps > 0.0))
      throw invalid_options("arrivals_lookback_days must be > 0, got " +
                            std::to_string(options.arrivals_lookback_days));
    const time_point from = as_of - static_cast<time_point>(options.arrivals_lookback_days * 86400.0);
    std::optional<std::size_t> by_attribute;
    if (!options.arrivals_by.empty() && options.arrivals_by != "owner") {
      by_attribute = log.find_attribute(options.arrivals_by);
      if (!by_attribute)
        throw invalid_options("arrivals_by: '" + options.arrivals_by +
                              "' is neither 'owner' nor an attribute of the log");
    }
    if (options.arrivals_by == "owner" && !log.has_owners())
      throw invalid_options("arrivals_by: 'owner' was requested but the log has no owner column");
    const auto created = log.created();
    // The arrivals group of a deal: its owner at creation (or first event) or its attribute value.
    auto arrival_key = [&](std::size_t o) -> std::string {
      if (options.arrivals_by == "owner") {
        auto w = log.owners().at(o, std::max(created[o], times[offsets[o]]));
        return w ? log.owner_names()[*w] : "(missing)";
      }
      if (by_attribute) {
        const auto& a = log.attributes()[*by_attribute];
        return a.code[o] < 0 ? "(missing)" : a.values[static_cast<std::uint32_t>(a.code[o])];
      }
      return {};
    };
    std::map<std::string, std::size_t> index;
    std::vector<std::vector<double>> amounts;   // at entry, of the deals created in the lookback
    std::vector<std::vector<double>> created_x; // their creation times, in lookbacks from as_of
    const double lookback_seconds = options.arrivals_lookback_days * 86400.0;
    double entries = 0.0;
    for (std::size_t o = 0; o + 1 < offsets.size(); ++o) {
      if (offsets[o] == offsets[o + 1]) continue;
      const time_point c = created[o];
      if (c <= from || c > as_of) continue;
      auto [it, inserted] = index.try_emplace(arrival_key(o), amounts.size());
      if (inserted) {
        amounts.emplace_back();
        created_x.emplace_back();
      }
      amounts[it->second].push_back(log.amounts().at(o, times[offsets[o]]).value_or(0.0));
      created_x[it->second].push_back(static_cast<double>(c - as_of) / lookback_seconds);
      entry[stages[offsets[o]]] += 1.0;
      entries += 1.0;
    }
    // The amounts at the win of the deals won in the lookback (won at as_of, the win inside
    // (from, as_of]), per group that has new deals: what a new deal brings when it wins.
    std::vector<std::vector<double>> won_amounts(amounts.size());
    for (std::size_t o = 0; o + 1 < offsets.size(); ++o) {
      const auto b = offsets[o];
      const auto e = detail::visible_end(times, b, offsets[o + 1], as_of);
      if (e == b || !f.is_won(stages[e - 1])) continue;
      const time_point won_at = times[detail::run_start(stages, b, e - 1)];
      if (won_at <= from) continue;
      auto it = index.find(arrival_key(o));
      if (it == index.end()) continue;
      won_amounts[it->second].push_back(log.amounts().at(o, won_at).value_or(0.0));
    }
    std::vector<double> n_created(amounts.size());
    std::vector<bool> from_wins(amounts.size());
    for (std::size_t gi = 0; gi < amounts.size(); ++gi) {
      n_created[gi] = static_cast<double>(amounts[gi].size());
      from_wins[gi] = !won_amounts[gi].empty() && won_amounts[gi].size() >= options.arrivals_min_wins;
      if (from_wins[gi]) amounts[gi] = std::move(won_amounts[gi]);
    }
    for (double& x : entry) x = entries > 0.0 ? x / entries : 0.0;
    // Amounts in a canonical order (ascending), so the amount a Monte Carlo draw picks does not
    // depend on the order of the log's rows or on how the deals are partitioned.
    for (auto& am : amounts) std::sort(am.begin(), am.end());
    for (const auto& [key, gi] : index) {
      // Kernel: the model's group for this value when the model's first grouping level is the
      // arrivals grouping, else the whole funnel.
      std::size_t mg = 0;
      if (!key.empty() && !levels.empty() && levels.front() == options.arrivals_by)
        mg = model.find_group({key}).value_or(0);
      const auto& am = amounts[gi];
      const creation_trend trend =
          options.arrivals_trend ? fit_creation_trend(created_x[gi]) : creation_trend{n_created[gi], 0.0};
      const double rate = trend.level / lookback_steps;
      arrival_group_mc mc;
      mc.mean_wins_by_day = arrival_means(point_process(mg), rate);
      double wins = 0.0;
      for (double x : mc.mean_wins_by_day) wins += x;
      double mean_amount = 0.0;
      for (double x : am) mean_amount += x;
      mean_amount = am.empty() ? 0.0 : mean_amount / static_cast<double>(am.size());
      out.arrivals.group.push_back(key);
      out.arrivals.created.push_back(n_created[gi]);
      out.arrivals.amount_source.emplace_back(from_wins[gi] ? "won" : "created");
      out.arrivals.amount_count.push_back(static_cast<double>(am.size()));
      out.arrivals.rate_per_day.push_back(rate * 86400.0 / static_cast<double>(step));
      out.arrivals.rate_source.emplace_back(trend.slope != 0.0 ? "trend" : "flat");
      out.arrivals.rate_growth_per_day.push_back(trend.slope / options.arrivals_lookback_days);
      out.arrivals.expected_wins.push_back(wins);
      out.arrivals.mean_amount.push_back(mean_amount);
      out.arrivals.expected.push_back(wins * mean_amount);
      // The compound Poisson of all groups: total rate, amounts weighted by each group's rate.
      out.arrivals.total.rate += wins;
      for (double x : am) {
        out.arrivals.total.amount.push_back(x);
        out.arrivals.total.weight.push_back(wins / static_cast<double>(am.size()));
        mc.cents.push_back(std::llround(x * 100.0));
      }
      arrival_mc.push_back(std::move(mc));
      arrival_sources.push_back(
          {mg, n_created[gi], lookback_steps, trend.level / std::max(1.0, n_created[gi])});
    }
    if (out.arrivals.total.rate > 0.0)
      for (double& wgt : out.arrivals.total.weight) wgt /= out.arrivals.total.rate;
  }
  report(0.6);

  // Parameter uncertainty: each draw replaces every stage row by a draw from its posterior
  // (Dirichlet) and each creation rate by a draw from its Gamma posterior, and scores everything
  // again; Monte Carlo scenario s uses draw s % draws, the exact distribution is the mixture.
  const std::size_t draws = options.parameter_draws;
  std::vector<double> p_draws;
  std::vector<std::vector<arrival_group_mc>> arrival_draws;
  std::vector<compound_poisson> arrival_totals;
  if (draws > 0) {
    if (n_deals > forecast_options::max_draw_values / draws)
      throw invalid_options("parameter_draws: " + std::to_string(draws) + " draws of " +
                            std::to_string(n_deals) + " open deals are more than the " +
                            std::to_string(forecast_options::max_draw_values) +
                            " probabilities a forecast holds at once; use fewer parameter_draws");
    p_draws.assign(n_deals * draws, 0.0);
    std::vector<double> period(n_deals);
    for (std::size_t d = 0; d < draws; ++d) {
      std::map<std::size_t, group_state> drawn;
      auto drawn_process = [&](std::size_t g) -> const group_state& {
        auto it = drawn.find(g);
        if (it == drawn.end()) {
          group_fit gf = model.groups()[g];
          for (std::size_t s = 0; s < gf.stages.size(); ++s) {
            auto& e = gf.stages[s];
            detail::splitmix64 rng(detail::mix(options.seed, 0x5eedULL, d, g, s));
            double total = 0.0;
            std::vector<double> x(e.probability.size(), 0.0);
            for (std::size_t k = 0; k < x.size(); ++k) {
              const double a = !e.alpha.empty()
                                   ? e.alpha[k]
                                   : (e.effective_n > 0.0 && e.p[k] > 0.0 ? e.effective_n * e.p[k] : 0.0);
              x[k] = a > 0.0 ? detail::gamma(rng, a) : 0.0;
              total += x[k];
            }
            if (total > 0.0)
              for (std::size_t k = 0; k < x.size(); ++k) e.probability[k] = x[k] / total;
          }
          it = drawn.emplace(g, make_process(gf)).first;
        }
        return it->second;
      };
      score_deals(drawn_process, period, nullptr, false);
      for (std::size_t i = 0; i < n_deals; ++i) p_draws[i * draws + d] = period[i];
      std::vector<arrival_group_mc> groups;
      compound_poisson total;
      for (std::size_t a = 0; a < arrival_sources.size(); ++a) {
        const auto& src = arrival_sources[a];
        detail::splitmix64 rng(detail::mix(options.seed, 0xa441ULL, d, a));
        const double rate =
            detail::gamma(rng, src.created + 0.5) / src.lookback_steps * src.trend_factor; // Jeffreys
        arrival_group_mc mc{arrival_means(drawn_process(src.model_group), rate), arrival_mc[a].cents};
        double wins = 0.0;
        for (double x : mc.mean_wins_by_day) wins += x;
        total.rate += wins;
        for (auto c : mc.cents) {
          total.amount.push_back(static_cast<double>(c) / 100.0);
          total.weight.push_back(wins / static_cast<double>(mc.cents.size()));
        }
        groups.push_back(std::move(mc));
      }
      if (total.rate > 0.0)
        for (double& wgt : total.weight) wgt /= total.rate;
      arrival_draws.push_back(std::move(groups));
      arrival_totals.push_back(std::move(total));
      report(0.6 + 0.1 * static_cast<double>(d + 1) / static_cast<double>(draws));
    }
    out.deals.p_win_period_draws = p_draws;
    out.arrivals.total_draws = arrival_totals;
  }

  if (options.exact) {
    out.exact_pipeline = exact_distribution(out.deals.amount, out.deals.p_win_period, out.realised,
                                            options.lattice_cells, options.lattice_sd);
    if (options.include_arrivals) {
      out.exact_arrivals =
          exact_distribution({}, {}, 0.0, options.lattice_cells, options.lattice_sd, &out.arrivals.total);
      out.exact = exact_distribution(out.deals.amount, out.deals.p_win_period, out.realised,
                                     options.lattice_cells, options.lattice_sd, &out.arrivals.total);
    } else {
      out.exact = out.exact_pipeline;
    }
    if (draws > 0) {
      std::vector<revenue_distribution> parts;
      std::vector<double> p(n_deals);
      double widest = 0.0; // the largest uncertain amount of any draw: the floor of the mixture's step
      for (std::size_t d = 0; d < draws; ++d) {
        for (std::size_t i = 0; i < n_deals; ++i) p[i] = p_draws[i * draws + d];
        const compound_poisson* cp = options.include_arrivals ? &arrival_totals[d] : nullptr;
        widest = std::max(widest, largest_uncertain_amount(out.deals.amount, p, cp));
        parts.push_back(exact_distribution(out.deals.amount, p, out.realised, options.lattice_cells,
                                           options.lattice_sd, cp));
      }
      out.exact = mixture(parts, options.lattice_cells, options.lattice_sd,
                          lattice_step(0.0, widest, options.lattice_cells, options.lattice_sd));
    }
  }
  report(0.7);
  if (options.scenarios > 0) {
    // Monte Carlo totals are int64 cents: amounts whose total could wrap around are refused, never
    // summed into a wrong (negative) number.
    constexpr double limit = 9.2e16; // a little below int64 max cents, in currency units
    double pipeline = 0.0, booked = 0.0, largest_new = 0.0;
    for (double a : out.deals.amount) pipeline += std::abs(a);
    for (double a : out.realised_amount) booked += std::abs(a);
    for (double a : out.arrivals.total.amount) largest_new = std::max(largest_new, std::abs(a));
    if (!(pipeline + booked + largest_new < limit))
      throw invalid_options("scenarios: Monte Carlo totals are int64 cents (at most 9.2e16 in the "
                            "amounts' unit), but the open deals' amounts add up to " +
                            num(pipeline) + ", the wins booked in the period to " + num(booked) +
                            " and the largest amount of a new deal is " + num(largest_new) +
                            "; use scenarios=0 (the exact distribution has no such limit) or amounts in "
                            "a larger unit");
    std::vector<std::int64_t> cents(n_deals);
    std::vector<std::uint64_t> keys(n_deals);
    for (std::size_t i = 0; i < n_deals; ++i) {
      cents[i] = std::llround(out.deals.amount[i] * 100.0);
      keys[i] = opportunity_key(log.id_label(out.deals.opportunity[i]));
    }
    std::vector<double> p(out.deals.p_win_period);
    for (double& x : p)
      if (std::isnan(x)) x = 0.0;
    if (draws > 0) {
      for (double& x : p_draws)
        if (std::isnan(x)) x = 0.0;
      out.scenario_cents = monte_carlo_cents_draws(cents, p_draws, draws, keys, options.scenarios,
                                                   options.seed, options.threads);
    } else {
      out.scenario_cents =
          monte_carlo_cents(cents, p, keys, options.scenarios, options.seed, options.threads);
    }
    std::int64_t realised_cents = 0;
    for (double a : out.realised_amount) realised_cents += std::llround(a * 100.0);
    for (auto& t : out.scenario_cents) t += realised_cents; // below the limit checked above
    if (options.include_arrivals) {
      if (draws == 0) arrival_draws = {arrival_mc};
      out.arrival_cents =
          arrivals_monte_carlo(arrival_draws, options.scenarios, options.seed, options.threads);
      for (std::size_t sc = 0; sc < options.scenarios; ++sc)
        if (__builtin_add_overflow(out.scenario_cents[sc], out.arrival_cents[sc], &out.scenario_cents[sc]))
          throw invalid_options("scenarios: Monte Carlo scenario " + std::to_string(sc) +
                                "'s total (open deals, wins booked and new deals) is more than the "
                                "92,233,720,368,547,758.07 that int64 cents hold; use scenarios=0 (the "
                                "exact distribution has no such limit) or amounts in a larger unit");
    }
  }
  if (options.calibration.enabled) {
    detail::calibrate(out, model, log, options);
  } else {
    out.calibration.reason =
        "calibration off: the interval assumes independent deals with known probabilities";
  }
  report(1.0);
  return out;
}

} // namespace smartfunnel
