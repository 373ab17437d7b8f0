#include "smartfunnel/semi_markov.hpp"

#include "smartfunnel/absorbing_chain.hpp"
#include "smartfunnel/error.hpp"
#include "smartfunnel/funnel_model.hpp"

#include <boost/math/distributions/chi_squared.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>

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
// The stays at risk at the first step of a mixture-cure window (see stage_kernel::dead_share):
// exits E with sum E (k - lo) steps survived before them, and the censored stays by the steps m
// they are known to have survived in the window.
struct cure_window {
  double exits = 0.0, exit_steps = 0.0;
  std::vector<double> cens_w, cens_m;

  [[nodiscard]] double loglik(double pi, double h) const {
    double l = exits * (std::log1p(-pi) + std::log(h));
    const double lq = h < 1.0 ? std::log1p(-h) : -std::numeric_limits<double>::infinity();
    if (exit_steps > 0.0) l += exit_steps * lq;
    for (std::size_t i = 0; i < cens_w.size(); ++i)
      l += cens_w[i] * std::log(pi + (1.0 - pi) * std::exp(cens_m[i] * lq));
    return l;
  }
  // Golden-section maximum of f over [a, b] (f unimodal there), with the end points checked.
  template <class F>
  static std::pair<double, double> golden(F&& f, double a, double b, int iterations) {
    constexpr double g = 0.6180339887498949;
    double x1 = b - g * (b - a), x2 = a + g * (b - a), f1 = f(x1), f2 = f(x2);
    for (int i = 0; i < iterations; ++i) {
      if (f1 < f2) {
        a = x1, x1 = x2, f1 = f2, x2 = a + g * (b - a), f2 = f(x2);
      } else {
        b = x2, x2 = x1, f2 = f1, x1 = b - g * (b - a), f1 = f(x1);
      }
    }
    std::pair<double, double> best{x1, f1};
    if (f2 > best.second) best = {x2, f2};
    for (double x : {a, b})
      if (const double v = f(x); v > best.second) best = {x, v};
    return best;
  }
  // max over h of the likelihood at dead share pi: (h, loglik), h searched on a log scale.
  [[nodiscard]] std::pair<double, double> profile(double pi) const {
    auto [u, l] = golden([&](double x) { return loglik(pi, std::exp(x)); }, std::log(1e-12), 0.0, 36);
    return {std::exp(u), l};
  }
  // Maximum likelihood (pi, h): golden sections on the profile, then EM steps (each raises the
  // likelihood) to polish it.
  [[nodiscard]] std::pair<double, double> fit() const {
    double cens = 0.0;
    for (double c : cens_w) cens += c;
    double pi = 0.0;
    if (cens > 0.0) pi = golden([&](double x) { return profile(x).second; }, 0.0, 1.0, 28).first;
    double h = profile(pi).first;
    const double n = exits + cens;
    for (int it = 0; it < 200; ++it) {
      double dead = 0.0, active_steps = 0.0;
      const double lq = h < 1.0 ? std::log1p(-h) : -std::numeric_limits<double>::infinity();
      for (std::size_t i = 0; i < cens_w.size(); ++i) {
        const double s = (1.0 - pi) * std::exp(cens_m[i] * lq), den = pi + s;
        const double z = den > 0.0 ? s / den : 0.0; // P(active | censored here)
        dead += cens_w[i] * (1.0 - z);
        active_steps += cens_w[i] * z * cens_m[i];
      }
      const double pi2 = dead / n, h2 = exits / (exits + exit_steps + active_steps);
      const bool done = std::abs(pi2 - pi) < 1e-15 && std::abs(h2 - h) < 1e-15;
      pi = pi2, h = h2;
      if (done) break;
    }
    return {pi, h};
  }
  // Profile-likelihood interval of pi at `level` (likelihood ratio against chi-squared, 1 df).
  [[nodiscard]] std::pair<double, double> interval(double pi, double h, double level) const {
    const double top = loglik(pi, h);
    const double drop =
        0.5 * boost::math::quantile(boost::math::chi_squared_distribution<double>(1.0), level);
    auto inside = [&](double x) { return profile(x).second >= top - drop; };
    auto edge = [&](double in, double out) {
      if (inside(out)) return out;
      for (int i = 0; i < 40; ++i) {
        const double mid = 0.5 * (in + out);
        (inside(mid) ? in : out) = mid;
      }
      return 0.5 * (in + out);
    };
    return {edge(pi, 0.0), edge(pi, 1.0)};
  }
};
} // namespace

double stage_kernel::active_share(std::int64_t age) const noexcept {
  if (!(dead_share > 0.0)) return 1.0;
  const double e = static_cast<double>(std::max<std::int64_t>(0, age - tail_start));
  const double s =
      (1.0 - dead_share) * (tail_hazard < 1.0 ? std::exp(e * std::log1p(-tail_hazard)) : (e > 0 ? 0.0 : 1.0));
  const double den = dead_share + s;
  return den > 0.0 ? s / den : 0.0;
}

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
                                    std::optional<std::int64_t> stale_after_steps, std::int64_t grid_ticks,
                                    bool dead_intervals) {
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
    // The destination mix of the exits over the later half of the supported steps (used when no
    // mass is left in the tail).
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
    // The tail: a mixture-cure model fitted to the stays at risk from tail_start on (the later half
    // of the supported steps, or earlier so that at least min_at_risk exits are in it): a share of
    // them never leaves (dead deals), the rest leaves at a constant hazard per step.
    std::int64_t start = lo;
    {
      double all_exits = 0.0;
      for (double x : d) all_exits += x;
      // At least the last quarter of the exits and min_at_risk of them: zombie deals keep the
      // supported steps long after the last exit, and the hazard rests on the late exits.
      const double want = std::max(min_at_risk, all_exits / 4.0) * (1.0 - 1e-9); // (rounding)
      double acc = 0.0;
      std::int64_t need = 0; // the step from which `want` exits remain (0: fewer in all)
      for (std::size_t r = rows; r-- > 0;) {
        acc += d[r];
        if (acc >= want) {
          need = step_of(e.duration[r], grid);
          break;
        }
      }
      start = std::min(start, need);
    }
    cure_window cw;
    for (std::size_t r = 0; r < rows; ++r) {
      const std::int64_t step = step_of(e.duration[r], grid);
      if (step < start) continue;
      const double next = r + 1 < rows ? e.at_risk[r + 1] : 0.0;
      const double cens = std::max(0.0, e.at_risk[r] - d[r] - next);
      const auto steps_in = static_cast<double>(step - start);
      cw.exits += d[r];
      cw.exit_steps += d[r] * steps_in;
      if (cens > 0.0) {
        cw.cens_w.push_back(cens);
        cw.cens_m.push_back(steps_in + 1.0);
      }
    }
    k.tail_start = start;
    k.tail_exits = cw.exits;
    k.tail_stays = cw.exits;
    for (double c : cw.cens_w) k.tail_stays += c;
    double cens_steps = 0.0;
    for (std::size_t i = 0; i < cw.cens_w.size(); ++i) cens_steps += cw.cens_w[i] * cw.cens_m[i];
    if (cw.exits >= min_at_risk * (1.0 - 1e-9)) {
      // Enough exits to tell dead deals from slow ones (min_at_risk, the evidence the kernel asks
      // of every step).
      // The dead share is kept only where the likelihood-ratio test rejects "none dead" at the
      // fit's level: the maximum likelihood estimate on the boundary pi >= 0 is positive about
      // half the time when no deal is dead, which would bias every P(win) down.
      const double h_none = cw.exits / (cw.exits + cw.exit_steps + cens_steps);
      // The score in pi at (0, h_none): -exits + sum censored (1 - s) / s, s = (1 - h)^m. Not
      // positive: pi = 0 is the maximum along pi, nothing to fit (the common case, and cheap).
      double score = -cw.exits;
      for (std::size_t i = 0; i < cw.cens_w.size() && score <= 0.0; ++i) {
        const double sv = std::exp(cw.cens_m[i] * std::log1p(-h_none));
        score += sv > 0.0 ? cw.cens_w[i] * (1.0 - sv) / sv : std::numeric_limits<double>::infinity();
      }
      const auto [pi, h] = score > 0.0 ? cw.fit() : std::pair<double, double>{0.0, h_none};
      const double drop =
          0.5 * boost::math::quantile(boost::math::chi_squared_distribution<double>(1.0), options.level);
      const bool dead = cw.loglik(pi, h) - cw.loglik(0.0, h_none) > drop;
      k.dead_share = dead ? pi : 0.0;
      k.tail_hazard = dead ? h : h_none;
      if (dead_intervals) std::tie(k.dead_low, k.dead_high) = cw.interval(pi, h, options.level);
    } else if (cw.exits > 0.0) {
      // Too few exits for a dead share: every stay still leaves, at the geometric rate.
      k.tail_hazard = cw.exits / (cw.exits + cw.exit_steps + cens_steps);
    } else {
      // No exit at all: the rate is small, not unknown (half an exit over the exposure, rather
      // than a month's fallback that would close zombie deals within weeks).
      const double exposure = person_steps(e, lo, hi, grid);
      k.tail_hazard = exposure > 0.0 ? std::min(1.0, 0.5 / exposure) : fallback_hazard;
    }
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

    // Of the mass past the supported steps, the dead share never leaves.
    const double active = k.active_share(k.supported + 1);
    k.tail_dead = tail_total * (1.0 - active);
    k.dead_from.assign(w, 0.0);
    for (std::size_t j = 0; j < w; ++j) {
      k.dead_from[j] = k.tail_mass[j] * (1.0 - active);
      k.tail_mass[j] *= active;
    }
    tail_total *= active;

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
      beyond += k.tail_dead; // dead deals are lost at the cap too
      k.tail_dead = 0.0;
      k.dead_share = 0.0; // past the cap, nothing is left to be dead or active
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
      double total = k.tail_mass[j] + (j == n + 1 ? k.tail_dead : 0.0);
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
      if (j == w - 1) out[j] += k.tail_dead;
      z += out[j];
    }
    if (z > tiny) {
      for (double& x : out) x /= z;
      return out;
    }
  }
  // Past the data: the active share leaves by the tail's mix, the dead share is never won.
  const double a = k.active_share(age);
  for (std::size_t j = 0; j < w; ++j) out[j] = a * k.tail_mix[j];
  out[w - 1] += 1.0 - a;
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
    double z = tail_total + k.tail_dead;
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
  // Past the data: the active share leaves at the tail's hazard (memoryless), the dead never.
  double decay = lam * k.active_share(age);
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
