#include "smartfunnel/semi_markov.hpp"

#include "smartfunnel/absorbing_chain.hpp"
#include "smartfunnel/error.hpp"
#include "smartfunnel/funnel_model.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace smartfunnel {

namespace {
constexpr double nan = std::numeric_limits<double>::quiet_NaN();

void check_horizon(std::int64_t horizon) {
  if (horizon > semi_markov::max_horizon_steps)
    throw invalid_options("time-bounded probabilities reach at most " +
                          std::to_string(semi_markov::max_horizon_steps) +
                          " grid steps ahead (179 years on the default one-day grid), asked for " +
                          std::to_string(horizon) + ": use a coarser grid (forecast grid_days)");
}
constexpr double tiny = 1e-300;

// Weighted exits at each distinct duration, from the Kaplan-Meier steps: d_r = n_r (1 - S_r / S_r-1).
std::vector<double> exits_by_row(const stage_estimate& e) {
  std::vector<double> d(e.duration.size(), 0.0);
  double prev = 1.0;
  for (std::size_t r = 0; r < d.size(); ++r) {
    if (prev > 0.0) d[r] = e.at_risk[r] * (1.0 - e.survival[r] / prev);
    prev = e.survival[r];
  }
  return d;
}

// Whole grid steps of a duration in ticks (a forged negative duration counts as 0).
std::int64_t step_of(std::int64_t ticks, std::int64_t grid) {
  return std::max<std::int64_t>(0, ticks) / grid;
}

// Person-steps at risk over the steps [lo, hi] (at risk at step k: stays with duration >= k grid
// ticks, i.e. at the step's first tick). Row r's at_risk holds over the ticks (previous duration,
// duration[r]], so over the steps whose first tick lies there.
double person_steps(const stage_estimate& e, std::int64_t lo, std::int64_t hi, std::int64_t grid) {
  double total = 0.0;
  std::int64_t prev = -1; // steps (prev, step_of(duration[r])] have at_risk[r] at risk
  for (std::size_t r = 0; r < e.duration.size() && prev < hi; ++r) {
    const std::int64_t cur = step_of(e.duration[r], grid);
    const std::int64_t a = std::max(prev + 1, lo), b = std::min(cur, hi);
    if (b >= a) total += e.at_risk[r] * (static_cast<double>(b) - static_cast<double>(a) + 1.0);
    prev = cur;
  }
  return total;
}
} // namespace

std::int64_t semi_markov::grid_ticks_for(double days, std::int64_t tick_seconds) {
  if (!(days > 0.0) || !(days <= 366.0))
    throw invalid_options("grid_days must be > 0 and at most 366, got " + std::to_string(days));
  if (tick_seconds <= 0)
    throw invalid_options("tick_seconds must be > 0, got " + std::to_string(tick_seconds));
  return std::max<std::int64_t>(1, std::llround(days * 86400.0 / static_cast<double>(tick_seconds)));
}

std::int64_t semi_markov::steps(double ticks) const noexcept {
  if (!(ticks > 0.0)) return 0;
  const double s = std::floor(std::floor(ticks) / static_cast<double>(grid_ticks_));
  return s >= 0x1p62 ? std::int64_t{1} << 62 : static_cast<std::int64_t>(s);
}

semi_markov semi_markov::from_group(const funnel& f, const group_fit& g, const fit_options& options,
                                    std::optional<std::int64_t> stale_after_steps, std::int64_t grid_ticks) {
  semi_markov m;
  const std::size_t n = f.n_open(), w = n + 2, codes = f.n_codes();
  const std::int64_t grid = grid_ticks > 0 ? grid_ticks : default_grid_ticks(options.tick_seconds);
  m.n_open_ = n;
  m.grid_ticks_ = grid;
  m.stages_.resize(n);
  const double min_at_risk = static_cast<double>(options.min_at_risk);
  const double fallback_hazard =
      std::min(1.0, static_cast<double>(grid * options.tick_seconds) / (30.0 * 86400.0));
  for (std::size_t s = 0; s < n; ++s) {
    const auto& e = g.stages[s];
    auto& k = m.stages_[s];
    k.tail_mass.assign(w, 0.0);
    k.tail_mix.assign(w, 0.0);
    bool any = false;
    for (double x : e.probability) any |= !std::isnan(x);
    if (!any) continue;
    k.defined = true;
    // Aggregated destination probabilities (the smoothed row) and, per code, its sojourn shape.
    std::vector<double> p(w, 0.0);
    for (std::size_t c = 0; c < codes; ++c)
      if (e.probability[c] > 0.0) p[f.outcome_column(static_cast<stage_code>(c))] += e.probability[c];
    const std::size_t rows = e.duration.size();
    const double resolved = 1.0 - e.unresolved;
    // Supported steps: up to the step of the last duration with at least min_at_risk (weighted) at
    // risk (at risk is non-increasing, so every step before it has as many at its first tick).
    for (std::size_t r = 0; r < rows; ++r)
      if (e.at_risk[r] >= min_at_risk) k.supported = step_of(e.duration[r], grid);
    if (e.n_exits == 0 || !(resolved > 0.0)) k.supported = -1;
    // The empirical part is dense in steps: cap it (beyond, the constant-hazard tail takes over).
    k.supported = std::min<std::int64_t>(k.supported, max_kernel_steps - 1);
    const auto len = static_cast<std::size_t>(k.supported + 1);
    k.mass.assign(len * w, 0.0);
    // Mass at step t: probability[c] * resolved * (share of code c's resolved exits at the
    // durations of step t), i.e. the Aalen-Johansen increment dF_c rescaled only by the prior's
    // smoothing; codes without exits of their own (prior mass only) take the all-cause exit shape.
    // The unresolved mass (stays still open after the last exit: known to last longer than the
    // exits seen) is not spread over the observed exit times: it stays in the tail, beyond the
    // supported steps. The rows are the distinct durations, so this adds up each step's ticks
    // without a per-tick array.
    for (std::size_t r = 0; r < rows && step_of(e.duration[r], grid) <= k.supported; ++r) {
      const auto t = static_cast<std::size_t>(step_of(e.duration[r], grid));
      const double s_prev = r == 0 ? 1.0 : e.survival[r - 1];
      const double all_share = (s_prev - e.survival[r]) / resolved;
      for (std::size_t c = 0; c < codes; ++c) {
        if (!(e.probability[c] > 0.0)) continue;
        const double total_c = e.incidence[(rows - 1) * codes + c];
        double share;
        if (total_c > 0.0) {
          const double prev_c = r == 0 ? 0.0 : e.incidence[(r - 1) * codes + c];
          share = (e.incidence[r * codes + c] - prev_c) / total_c;
        } else {
          share = all_share;
        }
        k.mass[t * w + f.outcome_column(static_cast<stage_code>(c))] += e.probability[c] * resolved * share;
      }
    }
    double tail_total = 0.0;
    for (std::size_t j = 0; j < w; ++j) {
      double used = 0.0;
      for (std::size_t t = 0; t < len; ++t) used += k.mass[t * w + j];
      k.tail_mass[j] = std::max(0.0, p[j] - used);
      tail_total += k.tail_mass[j];
    }
    // Constant hazard per step fitted to the last stretch of supported steps (the later half):
    // exits there over person-steps at risk (the geometric law's estimate on the grid itself, so
    // a fine tick and a tick of one step agree on step-aligned data), and the destination mix of
    // the exits there.
    const auto d = exits_by_row(e);
    const std::int64_t hi = k.supported >= 0 ? k.supported : (rows ? step_of(e.duration.back(), grid) : 0);
    const std::int64_t lo = k.supported >= 0 ? k.supported / 2 : 0;
    double exits_w = 0.0;
    std::vector<double> mix_w(w, 0.0);
    for (std::size_t r = 0; r < rows; ++r) {
      const std::int64_t step = step_of(e.duration[r], grid);
      if (step < lo || step > hi) continue;
      exits_w += d[r];
      for (std::size_t c = 0; c < codes; ++c) {
        const double prev_c = r == 0 ? 0.0 : e.incidence[(r - 1) * codes + c];
        mix_w[f.outcome_column(static_cast<stage_code>(c))] += e.incidence[r * codes + c] - prev_c;
      }
    }
    const double exposure = person_steps(e, lo, hi, grid);
    // No exit over a stretch with stays at risk: the rate is small, not unknown (half an exit over
    // the exposure, rather than a month's fallback that would close zombie deals within weeks).
    k.tail_hazard =
        exposure > 0.0 ? std::min(1.0, (exits_w > 0.0 ? exits_w : 0.5) / exposure) : fallback_hazard;
    double mix_total = 0.0;
    for (double x : mix_w) mix_total += x;
    // Destination mix for deals older than the supported ages: the exits the data shows after
    // them (few, by definition), smoothed toward the whole row with the weight of min_at_risk
    // pseudo-exits, so a handful of late exits cannot make a destination certain.
    double late_exits = 0.0;
    for (std::size_t r = 0; r < rows; ++r)
      if (step_of(e.duration[r], grid) > k.supported) late_exits += d[r];
    for (std::size_t j = 0; j < w; ++j) {
      const double late =
          tail_total > 0.0 ? k.tail_mass[j] / tail_total : (mix_total > 0.0 ? mix_w[j] / mix_total : p[j]);
      const double late_weight = tail_total > 0.0 ? late_exits : exits_w;
      k.tail_mix[j] = (late_weight * late + min_at_risk * p[j]) / (late_weight + min_at_risk);
    }

    // Stale policy: whatever is still in the stage at stale_after_steps is lost then.
    if (stale_after_steps) {
      if (*stale_after_steps > max_kernel_steps)
        throw invalid_options("stale_after_days reaches " + std::to_string(*stale_after_steps) +
                              " grid steps, at most " + std::to_string(max_kernel_steps) +
                              " are supported (179 years on the default one-day grid)");
      const std::int64_t cap = std::max<std::int64_t>(0, *stale_after_steps);
      const auto cap_len = static_cast<std::size_t>(cap + 1);
      std::vector<double> mass(cap_len * w, 0.0);
      double beyond = 0.0;
      for (std::size_t t = 0; t < len; ++t)
        for (std::size_t j = 0; j < w; ++j)
          (t < static_cast<std::size_t>(cap) ? mass[t * w + j] : beyond) += k.mass[t * w + j];
      // Materialise the geometric tail up to the cap; the rest goes to beyond.
      double carry = tail_total, lam = k.tail_hazard;
      for (auto t = static_cast<std::int64_t>(len); t < cap && carry > 0.0; ++t) {
        for (std::size_t j = 0; j < w; ++j)
          mass[static_cast<std::size_t>(t) * w + j] += k.tail_mix[j] * carry * lam;
        carry *= 1.0 - lam;
      }
      if (static_cast<std::int64_t>(len) <= cap)
        beyond += carry;
      else
        beyond += tail_total;
      mass[static_cast<std::size_t>(cap) * w + n + 1] += beyond;
      k.mass = std::move(mass);
      k.supported = cap;
      std::fill(k.tail_mass.begin(), k.tail_mass.end(), 0.0);
      std::fill(k.tail_mix.begin(), k.tail_mix.end(), 0.0);
      k.tail_mix[n + 1] = 1.0;
      k.tail_hazard = 1.0;
    }
  }

  // Win probabilities of the chain with these kernels' destination totals.
  std::vector<double> P(n * w, 0.0), soj(n * w, 0.0);
  for (std::size_t s = 0; s < n; ++s) {
    const auto& k = m.stages_[s];
    if (!k.defined) {
      for (std::size_t j = 0; j < w; ++j) P[s * w + j] = nan;
      continue;
    }
    for (std::size_t j = 0; j < w; ++j) {
      double total = k.tail_mass[j];
      for (std::size_t t = 0; t * w < k.mass.size(); ++t) total += k.mass[t * w + j];
      P[s * w + j] = total;
    }
  }
  std::vector<std::string> names(f.open_stages().begin(), f.open_stages().end());
  m.win_ever_ = solve_chain(n, P, soj, names).win;
  return m;
}

std::vector<double> semi_markov::destination_given_age(std::size_t stage, std::int64_t age) const {
  const auto& k = stages_.at(stage);
  const std::size_t w = width();
  std::vector<double> out(w, nan);
  if (!k.defined) return out;
  double tail_total = 0.0;
  for (double x : k.tail_mass) tail_total += x;
  if (age <= k.supported) {
    double z = 0.0;
    for (std::size_t j = 0; j < w; ++j) {
      out[j] = k.tail_mass[j];
      for (auto t = static_cast<std::size_t>(std::max<std::int64_t>(0, age)); t * w < k.mass.size(); ++t)
        out[j] += k.mass[t * w + j];
      z += out[j];
    }
    if (z > tiny) {
      for (double& x : out) x /= z;
      return out;
    }
  }
  for (std::size_t j = 0; j < w; ++j) out[j] = k.tail_mix[j];
  return out;
}

void semi_markov::first_step(std::size_t stage, std::int64_t age, std::int64_t horizon,
                             std::vector<double>& out) const {
  check_horizon(horizon);
  const auto& k = stages_.at(stage);
  const std::size_t w = width();
  const auto steps = static_cast<std::size_t>(std::max<std::int64_t>(0, horizon) + 1);
  out.assign(steps * w, 0.0);
  if (!k.defined) {
    std::fill(out.begin(), out.end(), nan);
    return;
  }
  age = std::max<std::int64_t>(0, age);
  double tail_total = 0.0;
  for (double x : k.tail_mass) tail_total += x;
  const double lam = k.tail_hazard;
  if (age <= k.supported) {
    double z = tail_total;
    for (auto t = static_cast<std::size_t>(age); t * w < k.mass.size(); ++t)
      for (std::size_t j = 0; j < w; ++j) z += k.mass[t * w + j];
    if (z > tiny) {
      double decay = lam; // P(leave at supported + i | in the tail) = lam (1 - lam)^(i - 1)
      for (std::size_t i = 0; i < steps; ++i) {
        const auto t = static_cast<std::int64_t>(i) + age;
        if (t <= k.supported) {
          for (std::size_t j = 0; j < w; ++j)
            out[i * w + j] = k.mass[static_cast<std::size_t>(t) * w + j] / z;
        } else {
          for (std::size_t j = 0; j < w; ++j) out[i * w + j] = k.tail_mass[j] * decay / z;
          decay *= 1.0 - lam;
        }
      }
      return;
    }
  }
  // Past the data: memoryless tail from now on.
  double decay = lam;
  for (std::size_t i = 0; i < steps; ++i) {
    for (std::size_t j = 0; j < w; ++j) out[i * w + j] = k.tail_mix[j] * decay;
    decay *= 1.0 - lam;
  }
}

std::vector<double> semi_markov::won_within(std::int64_t horizon) const {
  check_horizon(horizon);
  const std::size_t n = n_open_, w = width();
  const auto steps = static_cast<std::size_t>(std::max<std::int64_t>(0, horizon) + 1);
  // Entry kernels f_s(t) for t = 0..horizon (a deal that has just entered: age 0).
  std::vector<std::vector<double>> f(n);
  for (std::size_t s = 0; s < n; ++s) first_step(s, 0, horizon, f[s]);
  std::vector<double> won(steps * n, 0.0);
  std::vector<double> rhs(n);
  for (std::size_t h = 0; h < steps; ++h) {
    for (std::size_t s = 0; s < n; ++s) {
      const auto& fs = f[s];
      if (!stages_[s].defined) {
        rhs[s] = nan;
        continue;
      }
      double acc = 0.0;
      for (std::size_t t = 0; t <= h; ++t) {
        const double* row = &fs[t * w];
        if (row[n] != 0.0) acc += row[n]; // won within the remaining h - t ticks
        if (t == 0) continue;             // zero-tick moves between open stages: solved below
        for (std::size_t j = 0; j < n; ++j)
          if (row[j] != 0.0) acc += row[j] * won[(h - t) * n + j];
      }
      rhs[s] = acc;
    }
    // W(h) = rhs + Q0 W(h), Q0 the zero-tick moves between open stages: a fixed point reached
    // quickly because the chain is absorbing (entries that are 0 are skipped, so NaN only spreads
    // along real moves).
    double* wh = &won[h * n];
    for (std::size_t s = 0; s < n; ++s) wh[s] = rhs[s];
    for (int it = 0; it < 1000; ++it) {
      double change = 0.0;
      for (std::size_t s = 0; s < n; ++s) {
        if (std::isnan(rhs[s])) continue;
        double v = rhs[s];
        for (std::size_t j = 0; j < n; ++j) {
          const double q = f[s][j];
          if (q != 0.0) v += q * wh[j];
        }
        if (!std::isnan(v)) change = std::max(change, std::abs(v - wh[s]));
        wh[s] = v;
      }
      if (change < 1e-16) break;
    }
  }
  return won;
}

double semi_markov::p_win_within(std::size_t stage, std::int64_t age, std::int64_t horizon,
                                 const std::vector<double>& won, std::vector<double>& scratch) const {
  if (horizon < 0) return 0.0;
  const std::size_t n = n_open_, w = width();
  first_step(stage, age, horizon, scratch);
  double p = 0.0;
  for (std::int64_t i = 0; i <= horizon; ++i) {
    const double* row = &scratch[static_cast<std::size_t>(i) * w];
    if (std::isnan(row[0])) return nan;
    if (row[n] != 0.0) p += row[n];
    for (std::size_t j = 0; j < n; ++j)
      if (row[j] != 0.0) p += row[j] * won[static_cast<std::size_t>(horizon - i) * n + j];
  }
  return std::min(p, 1.0);
}

double semi_markov::p_win_ever(std::size_t stage, std::int64_t age) const {
  const auto mix = destination_given_age(stage, age);
  const std::size_t n = n_open_;
  double p = mix[n];
  if (std::isnan(p)) return nan;
  for (std::size_t j = 0; j < n; ++j)
    if (mix[j] != 0.0) p += mix[j] * win_ever_[j];
  return std::min(p, 1.0);
}

} // namespace smartfunnel
