#include "smartfunnel/funnel_model.hpp"

#include "smartfunnel/detail/random.hpp"
#include "smartfunnel/error.hpp"

#include <boost/math/special_functions/digamma.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

namespace smartfunnel {

namespace {
constexpr double nan = std::numeric_limits<double>::quiet_NaN();

// Prior mean for the whole funnel: uniform over the feasible destinations of stage s, i.e. those
// seen from s in the data plus the forward step (next stage, or winning from the last stage) and
// losing, which every stage permits.
std::vector<double> feasible_mean(const funnel& f, std::size_t s, const stage_estimate& e) {
  std::vector<double> m(f.n_codes(), 0.0);
  for (std::size_t k = 0; k < f.n_codes(); ++k)
    if (e.exits[k] > 0) m[k] = 1.0;
  m[s + 1 < f.n_open() ? s + 1 : f.n_open()] = 1.0;
  m[f.n_open() + f.n_won()] = 1.0;
  m[s] = 0.0;
  double total = 0.0;
  for (double x : m) total += x;
  for (double& x : m) x /= total;
  return m;
}

// Dirichlet-multinomial log marginal likelihood of sibling rows (effective counts) under a common
// mean and concentration a.
double dm_loglik(double a, const std::vector<double>& mean, const std::vector<const stage_estimate*>& rows) {
  double ll = 0.0;
  for (const auto* e : rows) {
    if (!(e->effective_n > 0.0)) continue;
    ll += std::lgamma(a) - std::lgamma(a + e->effective_n);
    for (std::size_t k = 0; k < mean.size(); ++k) {
      if (mean[k] <= 0.0) continue;
      const double c = e->effective_n * e->p[k];
      if (c > 0.0) ll += std::lgamma(a * mean[k] + c) - std::lgamma(a * mean[k]);
    }
  }
  return ll;
}

// Its derivative in a.
double dm_score(double a, const std::vector<double>& mean, const std::vector<const stage_estimate*>& rows) {
  using boost::math::digamma;
  double sc = 0.0;
  for (const auto* e : rows) {
    if (!(e->effective_n > 0.0)) continue;
    sc += digamma(a) - digamma(a + e->effective_n);
    for (std::size_t k = 0; k < mean.size(); ++k) {
      if (mean[k] <= 0.0) continue;
      const double c = e->effective_n * e->p[k];
      if (c > 0.0) sc += mean[k] * (digamma(a * mean[k] + c) - digamma(a * mean[k]));
    }
  }
  return sc;
}

double eb_concentration(const std::vector<double>& mean, const std::vector<const stage_estimate*>& rows,
                        const fit_options& o) {
  std::size_t informative = 0;
  for (const auto* e : rows) informative += e->effective_n > 0.0;
  if (informative < o.min_groups_for_eb) return o.fallback_concentration;
  // Grid on log scale, then golden-section refinement around the best grid point.
  const double lo = std::log(o.min_concentration), hi = std::log(o.max_concentration);
  constexpr int grid = 48;
  int best = 0;
  double best_ll = -std::numeric_limits<double>::infinity();
  for (int i = 0; i <= grid; ++i) {
    const double ll = dm_loglik(std::exp(lo + (hi - lo) * i / grid), mean, rows);
    if (ll > best_ll) {
      best_ll = ll;
      best = i;
    }
  }
  // Refine by bisection on the sign of the score d ll / d a (digamma form) in log a: the root is
  // well conditioned, unlike the flat maximum itself, so tiny floating-point differences in the
  // counts (as from merging partial fits) move the result by ulps, not by sqrt(eps).
  double a = lo + (hi - lo) * std::max(0, best - 1) / grid;
  double b = lo + (hi - lo) * std::min(grid, best + 1) / grid;
  const double sa = dm_score(std::exp(a), mean, rows), sb = dm_score(std::exp(b), mean, rows);
  if (sa <= 0.0) return std::exp(a);
  if (sb >= 0.0) return std::exp(b);
  for (int it = 0; it < 200 && b - a > 1e-15 * std::max(1.0, std::abs(a)); ++it) {
    const double c = 0.5 * (a + b);
    if (dm_score(std::exp(c), mean, rows) > 0.0)
      a = c;
    else
      b = c;
  }
  return std::exp(0.5 * (a + b));
}

// The chain inputs of a group: aggregated rows (open stages, Won, Lost) and mean sojourns.
void chain_inputs(const funnel& f, const std::vector<stage_estimate>& stages,
                  const std::vector<std::vector<double>>* rows_override, std::vector<double>& p,
                  std::vector<double>& soj) {
  const std::size_t n = f.n_open(), w = n + 2;
  p.assign(n * w, 0.0);
  soj.assign(n * w, 0.0);
  for (std::size_t s = 0; s < n; ++s) {
    const auto& e = stages[s];
    const auto& row = rows_override ? (*rows_override)[s] : e.probability;
    bool all_nan = true;
    for (double x : row) all_nan &= std::isnan(x);
    if (all_nan) {
      for (std::size_t j = 0; j < w; ++j) p[s * w + j] = soj[s * w + j] = nan;
      continue;
    }
    // All-cause mean sojourn among exits, for destinations that only the prior makes possible.
    double all_mean = 0.0, all_mass = 0.0;
    for (std::size_t k = 0; k < f.n_codes(); ++k)
      if (!std::isnan(e.mean_sojourn[k]) && e.p[k] > 0.0) {
        all_mean += e.p[k] * e.mean_sojourn[k];
        all_mass += e.p[k];
      }
    all_mean = all_mass > 0.0 ? all_mean / all_mass : 0.0;
    for (std::size_t k = 0; k < f.n_codes(); ++k) {
      const double q = row[k];
      if (!(q > 0.0)) continue;
      const auto j = f.outcome_column(static_cast<stage_code>(k));
      p[s * w + j] += q;
      soj[s * w + j] += q * (std::isnan(e.mean_sojourn[k]) ? all_mean : e.mean_sojourn[k]);
    }
    for (std::size_t j = 0; j < w; ++j)
      soj[s * w + j] = p[s * w + j] > 0.0 ? soj[s * w + j] / p[s * w + j] : nan;
  }
}

std::vector<std::string> stage_names(const funnel& f) {
  return {f.open_stages().begin(), f.open_stages().end()};
}

// The dead share of each stage's tail (semi_markov's mixture-cure tail) moved to Lost in chain
// inputs p: destination j of stage s keeps the share 1 - dead_from_j / point_j of its mass, point
// the chain inputs of the point estimate (for the point itself: p_j - dead_from_j). So the chain's
// P(win) is the limit of the time-bounded probabilities.
void move_dead_to_lost(const semi_markov& proc, const std::vector<double>& point, std::vector<double>& p) {
  const std::size_t n = proc.n_open(), w = n + 2;
  for (std::size_t s = 0; s < n; ++s) {
    const auto& k = proc.kernel(s);
    if (!k.defined || !(k.tail_dead > 0.0) || std::isnan(p[s * w])) continue;
    double moved = 0.0;
    for (std::size_t j = 0; j + 1 < w; ++j) {
      if (!(point[s * w + j] > 0.0) || !(k.dead_from[j] > 0.0)) continue;
      const double take = p[s * w + j] * std::min(1.0, k.dead_from[j] / point[s * w + j]);
      p[s * w + j] -= take;
      moved += take;
    }
    p[s * w + w - 1] += moved; // Lost's own dead share stays in Lost
  }
}

// Posterior draws of each row (Dirichlet), pushed through the chain: interval of P(win).
void win_intervals(const funnel& f, group_fit& g, const fit_options& o, std::uint64_t stream,
                   const semi_markov& proc) {
  const std::size_t n = f.n_open(), codes = f.n_codes();
  g.win_low.assign(n, nan);
  g.win_high.assign(n, nan);
  if (o.draws == 0) return;
  std::vector<std::vector<double>> samples(n);
  std::vector<std::vector<double>> rows(n, std::vector<double>(codes, 0.0));
  std::vector<double> p, soj, point, point_soj;
  const auto names = stage_names(f);
  chain_inputs(f, g.stages, nullptr, point, point_soj);
  for (std::size_t d = 0; d < o.draws; ++d) {
    detail::splitmix64 rng(detail::mix(o.seed, stream, d));
    for (std::size_t s = 0; s < n; ++s) {
      const auto& e = g.stages[s];
      double total = 0.0;
      bool any = false;
      for (std::size_t k = 0; k < codes; ++k) {
        const double a = !e.alpha.empty() ? e.alpha[k] : (e.effective_n > 0.0 ? e.effective_n * e.p[k] : 0.0);
        rows[s][k] = a > 0.0 ? detail::gamma(rng, a) : 0.0;
        total += rows[s][k];
        any |= a > 0.0;
      }
      for (auto& x : rows[s]) x = (any && total > 0.0) ? x / total : nan;
    }
    chain_inputs(f, g.stages, &rows, p, soj);
    move_dead_to_lost(proc, point, p);
    try {
      const auto r = solve_chain(n, p, soj, names);
      for (std::size_t s = 0; s < n; ++s)
        if (!std::isnan(r.win[s])) samples[s].push_back(r.win[s]);
    } catch (const singular_chain&) {
      // A draw can only be singular where the point estimate is too; nothing to add.
    }
  }
  const double tail = (1.0 - o.level) / 2.0;
  for (std::size_t s = 0; s < n; ++s) {
    auto& v = samples[s];
    if (v.size() < o.draws / 2 || std::isnan(g.chain.win[s])) continue;
    std::sort(v.begin(), v.end());
    auto at = [&](double q) {
      const double pos = q * static_cast<double>(v.size() - 1);
      const auto i = static_cast<std::size_t>(pos);
      const double frac = pos - static_cast<double>(i);
      return i + 1 < v.size() ? v[i] * (1 - frac) + v[i + 1] * frac : v[i];
    };
    g.win_low[s] = std::min(at(tail), g.chain.win[s]);
    g.win_high[s] = std::max(at(1.0 - tail), g.chain.win[s]);
  }
}

} // namespace

std::vector<double> group_fit::transition_matrix(const funnel& f) const {
  std::vector<double> p, soj;
  chain_inputs(f, stages, nullptr, p, soj);
  return p;
}

bool group_fit::insufficient_history() const {
  return std::any_of(stages.begin(), stages.end(),
                     [](const stage_estimate& e) { return e.insufficient_history; });
}

funnel_model funnel_model::from_statistics(fit_statistics stats) {
  stats.options.validate();
  if (!stats.options.as_of) throw invalid_options("fit statistics must carry an as_of time");
  funnel_model m(std::move(stats));
  m.derive();
  return m;
}

void funnel_model::derive() {
  const auto& f = stats_.funnel;
  const auto& o = stats_.options;
  const std::size_t n = f.n_open(), levels = o.groups.size(), width = stats_.width();

  // Counts of every group at every level: sums of the leaves below it.
  std::vector<std::map<std::vector<std::string>, std::vector<stage_counts>>> at_level(levels + 1);
  // A key shorter than the levels (the empty key of a fit without stays) stops at its own length.
  for (const auto& [key, cells] : stats_.cells)
    for (std::size_t l = 0; l <= std::min(levels, key.size()); ++l) {
      std::vector<std::string> prefix(key.begin(),
                                      key.begin() + static_cast<std::ptrdiff_t>(std::min(l, key.size())));
      auto [it, inserted] = at_level[l].try_emplace(prefix, cells);
      if (!inserted)
        for (std::size_t s = 0; s < n; ++s) it->second[s].merge(cells[s], width);
    }

  fits_.clear();
  std::map<std::vector<std::string>, std::size_t> index;
  for (std::size_t l = 0; l <= levels; ++l)
    for (auto& [key, cells] : at_level[l]) {
      group_fit g;
      g.key = key;
      g.level = l;
      if (l == 0)
        g.parent = 0;
      else
        g.parent = index.at(std::vector<std::string>(key.begin(), key.end() - 1));
      g.stages.reserve(n);
      for (std::size_t s = 0; s < n; ++s) g.stages.push_back(estimate_stage(cells[s], f.n_codes(), o));
      index[key] = fits_.size();
      fits_.push_back(std::move(g));
    }

  // Priors: the whole funnel gets `prior` over its feasible destinations; each group is shrunk
  // toward its parent's smoothed row with an empirical-Bayes concentration.
  for (std::size_t s = 0; s < n; ++s)
    apply_prior(fits_[0].stages[s], feasible_mean(f, s, fits_[0].stages[s]), o.prior, o.level);
  for (std::size_t i = 1; i < fits_.size();) {
    // Siblings are contiguous (map order within a level, sorted by key).
    std::size_t j = i;
    while (j < fits_.size() && fits_[j].level == fits_[i].level && fits_[j].parent == fits_[i].parent) ++j;
    const auto& parent = fits_[fits_[i].parent];
    for (std::size_t s = 0; s < n; ++s) {
      std::vector<double> mean = parent.stages[s].probability;
      bool usable = !mean.empty();
      for (double x : mean) usable &= !std::isnan(x);
      if (!usable) mean = feasible_mean(f, s, parent.stages[s]);
      // Guard: every destination a child saw keeps a sliver of prior mass.
      double total = 0.0;
      for (std::size_t k = 0; k < mean.size(); ++k) {
        bool seen = false;
        for (std::size_t c = i; c < j; ++c) seen |= fits_[c].stages[s].exits[k] > 0;
        if (seen && mean[k] <= 0.0) mean[k] = 1e-9;
        total += mean[k];
      }
      for (double& x : mean) x /= total;
      std::vector<const stage_estimate*> rows;
      for (std::size_t c = i; c < j; ++c) rows.push_back(&fits_[c].stages[s]);
      const double conc = eb_concentration(mean, rows, o);
      for (std::size_t c = i; c < j; ++c) apply_prior(fits_[c].stages[s], mean, conc, o.level);
    }
    i = j;
  }

  const auto names = stage_names(f);
  std::vector<double> p, soj, point;
  processes_.clear();
  for (const auto& g : fits_) processes_.push_back(semi_markov::from_group(f, g, o, std::nullopt, 0, true));
  for (std::size_t gi = 0; gi < fits_.size(); ++gi) {
    auto& g = fits_[gi];
    chain_inputs(f, g.stages, nullptr, p, soj);
    g.chain = solve_chain(n, p, soj, names);
    // P(win) with the dead share of the tails lost (the same as the process's win_ever); the
    // times to close and to win stay those of the deals that do close.
    point = p;
    move_dead_to_lost(processes_[gi], point, p);
    g.chain.win = solve_chain(n, p, soj, names).win;
    win_intervals(f, g, o, gi, processes_[gi]);
  }
}

std::optional<std::size_t> funnel_model::find_group(const std::vector<std::string>& key) const {
  for (std::size_t i = 0; i < fits_.size(); ++i)
    if (fits_[i].key == key) return i;
  return std::nullopt;
}

double funnel_model::p_win(stage_code stage, double age_ticks, std::size_t group) const {
  const auto& f = funnel();
  if (f.is_won(stage)) return 1.0;
  if (f.is_lost(stage)) return 0.0;
  if (!f.is_open(stage) || std::isnan(age_ticks)) return nan;
  const auto& proc = processes_.at(group);
  return proc.p_win_ever(stage, proc.steps(age_ticks));
}

void funnel_model::p_win(std::span<const std::int32_t> stage, std::span<const double> age_ticks,
                         std::span<const double> horizon_ticks, std::span<double> out, std::size_t group,
                         std::int64_t grid_ticks) const {
  if (stage.size() != age_ticks.size() || horizon_ticks.size() != stage.size() || out.size() != stage.size())
    throw std::invalid_argument("p_win: stage, age, horizon and output must have the same length");
  // The model's process on its default grid, or one built for the grid asked for.
  std::optional<semi_markov> own;
  const semi_markov* process = &processes_.at(group);
  if (grid_ticks > 0 && grid_ticks != process->grid_ticks()) {
    own = semi_markov::from_group(funnel(), fits_.at(group), options(), std::nullopt, grid_ticks);
    process = &*own;
  }
  const auto& proc = *process;
  std::int64_t longest = -1; // in grid steps
  for (double h : horizon_ticks)
    if (h >= 0.0) longest = std::max(longest, proc.steps(h));
  const auto won = longest >= 0 ? proc.won_within(longest) : std::vector<double>{};
  std::vector<double> scratch;
  const auto& f = funnel();
  for (std::size_t i = 0; i < stage.size(); ++i) {
    const auto s = stage[i];
    if (s < 0 || static_cast<std::size_t>(s) >= f.n_codes() || std::isnan(age_ticks[i])) {
      out[i] = nan;
      continue;
    }
    const auto code = static_cast<stage_code>(s);
    if (!f.is_open(code)) {
      out[i] = p_win(code, age_ticks[i], group);
      continue;
    }
    const auto age = proc.steps(age_ticks[i]);
    if (std::isnan(horizon_ticks[i])) {
      out[i] = proc.p_win_ever(code, age);
      continue;
    }
    out[i] = horizon_ticks[i] < 0.0
                 ? 0.0
                 : proc.p_win_within(code, age, proc.steps(horizon_ticks[i]), won, scratch);
  }
}

void funnel_model::p_win(std::span<const std::int32_t> stage, std::span<const double> age_ticks,
                         std::span<double> out, std::size_t group) const {
  if (stage.size() != age_ticks.size() || out.size() != stage.size())
    throw std::invalid_argument("p_win: stage, age and output must have the same length (" +
                                std::to_string(stage.size()) + ", " + std::to_string(age_ticks.size()) +
                                ", " + std::to_string(out.size()) + ")");
  for (std::size_t i = 0; i < stage.size(); ++i)
    out[i] = (stage[i] < 0 || static_cast<std::size_t>(stage[i]) >= funnel().n_codes())
                 ? nan
                 : p_win(static_cast<stage_code>(stage[i]), age_ticks[i], group);
}

funnel_model merge(const funnel_model& a, const funnel_model& b) {
  fit_statistics s = a.stats_;
  s.merge(b.stats_);
  return funnel_model::from_statistics(std::move(s));
}

funnel_model fit(const event_log& log, const fit_options& options) {
  return funnel_model::from_statistics(collect_statistics(log, options));
}

} // namespace smartfunnel
