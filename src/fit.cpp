// Sufficient statistics (one pass over the log) and the per-stage estimators built on them.
#include "smartfunnel/detail/visible.hpp"
#include "smartfunnel/error.hpp"
#include "smartfunnel/fit_statistics.hpp"
#include "smartfunnel/stage_estimate.hpp"

#include <boost/math/distributions/beta.hpp>
#include <boost/math/distributions/normal.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_map>

namespace smartfunnel {

namespace {
constexpr double nan = std::numeric_limits<double>::quiet_NaN();

// Quantile q of Beta(a, b), bounded in time whatever the parameters (they come from data, or from
// a loaded file): a vanishing a or b puts the mass at 0 or 1, very large parameters use the normal
// approximation (accurate there), and the root finder has an iteration cap with the same fallback.
double beta_quantile(double a, double b, double q) {
  if (a < 1e-6) return 0.0;
  if (b < 1e-6) return 1.0;
  auto normal = [&] {
    const double m = a / (a + b), sd = std::sqrt(a * b / ((a + b) * (a + b) * (a + b + 1.0)));
    const double z = boost::math::quantile(boost::math::normal_distribution<double>(), q);
    return std::clamp(m + z * sd, 0.0, 1.0);
  };
  if (a > 1e7 || b > 1e7) return normal();
  using capped = boost::math::policies::policy<boost::math::policies::max_root_iterations<200>>;
  try {
    return boost::math::quantile(boost::math::beta_distribution<double, capped>(a, b), q);
  } catch (const std::exception&) {
    return normal();
  }
}
} // namespace

void fit_options::validate() const {
  if (tick_seconds <= 0)
    throw invalid_options("tick_seconds must be > 0, got " + std::to_string(tick_seconds));
  if (!(prior >= 0.0) || !std::isfinite(prior))
    throw invalid_options("prior must be a finite number >= 0, got " + std::to_string(prior));
  if (half_life_seconds && !(*half_life_seconds > 0.0 && std::isfinite(*half_life_seconds)))
    throw invalid_options("half_life must be > 0, got " + std::to_string(*half_life_seconds) + " s");
  if (!(unresolved_threshold >= 0.0 && unresolved_threshold <= 1.0))
    throw invalid_options("unresolved_threshold must be in [0, 1] (a share of the stays), got " +
                          std::to_string(unresolved_threshold));
  if (draws > max_draws)
    throw invalid_options("draws must be in [0, " + std::to_string(max_draws) + "], got " +
                          std::to_string(draws));
  if (!(level > 0.0 && level < 1.0))
    throw invalid_options("level must be in (0, 1), got " + std::to_string(level));
  if (!(min_concentration > 0.0 && max_concentration >= min_concentration))
    throw invalid_options("concentration bounds must satisfy 0 < min_concentration <= max_concentration");
  if (!(fallback_concentration >= 0.0)) throw invalid_options("fallback_concentration must be >= 0");
  for (std::size_t i = 0; i < groups.size(); ++i)
    for (std::size_t j = 0; j < i; ++j)
      if (groups[i] == groups[j]) throw invalid_options("groups: '" + groups[i] + "' is listed twice");
}

// ---------------------------------------------------------------------------------------------
// stage_counts / fit_statistics

void stage_counts::merge(const stage_counts& o, std::size_t width) {
  if (o.duration.empty()) return;
  stage_counts out;
  const std::size_t na = rows(), nb = o.rows();
  out.duration.reserve(na + nb);
  std::size_t i = 0, j = 0;
  auto push = [&](const stage_counts& src, std::size_t r, bool add) {
    if (!add) {
      out.duration.push_back(src.duration[r]);
      out.count.insert(out.count.end(), src.count.begin() + static_cast<std::ptrdiff_t>(r * width),
                       src.count.begin() + static_cast<std::ptrdiff_t>((r + 1) * width));
      out.weight.insert(out.weight.end(), src.weight.begin() + static_cast<std::ptrdiff_t>(r * width),
                        src.weight.begin() + static_cast<std::ptrdiff_t>((r + 1) * width));
      out.weight_sq.insert(out.weight_sq.end(),
                           src.weight_sq.begin() + static_cast<std::ptrdiff_t>(r * width),
                           src.weight_sq.begin() + static_cast<std::ptrdiff_t>((r + 1) * width));
    } else {
      const std::size_t base = out.count.size() - width;
      for (std::size_t k = 0; k < width; ++k) {
        out.count[base + k] += src.count[r * width + k];
        out.weight[base + k] += src.weight[r * width + k];
        out.weight_sq[base + k] += src.weight_sq[r * width + k];
      }
    }
  };
  while (i < na || j < nb) {
    if (j >= nb || (i < na && duration[i] < o.duration[j]))
      push(*this, i++, false);
    else if (i >= na || o.duration[j] < duration[i])
      push(o, j++, false);
    else {
      push(*this, i++, false);
      push(o, j++, true);
    }
  }
  *this = std::move(out);
}

void fit_statistics::merge(const fit_statistics& o) {
  if (!(funnel == o.funnel))
    throw incompatible_merge("cannot merge fits of different funnels ('" + funnel.name() + "' and '" +
                             o.funnel.name() + "', or different stages)");
  if (!(options == o.options))
    throw incompatible_merge("cannot merge fits made with different options (as_of, tick, prior, "
                             "half_life, groups or thresholds differ)");
  for (const auto& [key, cells_b] : o.cells) {
    auto [it, inserted] = cells.try_emplace(key, cells_b);
    if (!inserted)
      for (std::size_t s = 0; s < cells_b.size(); ++s) it->second[s].merge(cells_b[s], width());
  }
  n_opportunities += o.n_opportunities;
  n_stays += o.n_stays;
}

namespace {

// Accumulates one cell: dense by duration for short durations, sorted records beyond.
struct cell_accumulator {
  static constexpr std::int64_t dense_limit = 1 << 14;
  std::vector<std::int64_t> count;
  std::vector<double> weight, weight_sq;
  struct record {
    std::int64_t duration;
    std::size_t column;
    double w;
  };
  std::vector<record> overflow;

  bool weighted = false; // without decay every weight is 1: weight == weight_sq == count

  void add(std::int64_t d, std::size_t column, double w, std::size_t width) {
    if (d < dense_limit) [[likely]] {
      const auto at = static_cast<std::size_t>(d) * width + column;
      if (at >= count.size()) [[unlikely]]
        grow(static_cast<std::size_t>(d + 1) * width);
      ++count[at];
      if (weighted) {
        weight[at] += w;
        weight_sq[at] += w * w;
      }
    } else {
      overflow.push_back({d, column, w});
    }
  }

  // Out of the hot path: geometric growth of the dense tables.
  [[gnu::noinline]] void grow(std::size_t need) {
    const auto size = std::max(need, count.size() * 2);
    count.resize(size, 0);
    if (weighted) {
      weight.resize(size, 0.0);
      weight_sq.resize(size, 0.0);
    }
  }

  stage_counts finish(std::size_t width) {
    stage_counts out;
    const std::size_t rows = count.size() / width;
    for (std::size_t r = 0; r < rows; ++r) {
      bool any = false;
      for (std::size_t k = 0; k < width; ++k) any |= count[r * width + k] != 0;
      if (!any) continue;
      out.duration.push_back(static_cast<std::int64_t>(r));
      for (std::size_t k = 0; k < width; ++k) {
        const auto c = count[r * width + k];
        out.count.push_back(c);
        out.weight.push_back(weighted ? weight[r * width + k] : static_cast<double>(c));
        out.weight_sq.push_back(weighted ? weight_sq[r * width + k] : static_cast<double>(c));
      }
    }
    std::sort(overflow.begin(), overflow.end(),
              [](const record& a, const record& b) { return a.duration < b.duration; });
    for (const auto& rec : overflow) {
      if (out.duration.empty() || out.duration.back() != rec.duration) {
        out.duration.push_back(rec.duration);
        out.count.resize(out.count.size() + width, 0);
        out.weight.resize(out.weight.size() + width, 0.0);
        out.weight_sq.resize(out.weight_sq.size() + width, 0.0);
      }
      const auto at = out.count.size() - width + rec.column;
      ++out.count[at];
      out.weight[at] += rec.w;
      out.weight_sq[at] += rec.w * rec.w;
    }
    return out;
  }
};

} // namespace

fit_statistics collect_statistics(const event_log& log, const fit_options& options_in) {
  options_in.validate();
  fit_statistics stats{log.funnel(), options_in, {}, 0, 0};
  auto& options = stats.options;
  if (!options.as_of) options.as_of = log.last_time();
  const time_point as_of = *options.as_of;
  const auto& f = log.funnel();
  const std::size_t n_open = f.n_open(), width = f.n_codes() + 1, censored = f.n_codes();
  const std::int64_t tick = options.tick_seconds;

  // Grouping levels: "owner" (time-varying) or a static attribute.
  struct level_source {
    bool owner;
    std::size_t attribute;
  };
  std::vector<level_source> levels;
  for (const auto& g : options.groups) {
    if (g == "owner") {
      if (!log.has_owners())
        throw invalid_options("groups: 'owner' was requested but the log has no owner column");
      levels.push_back({true, 0});
    } else if (auto a = log.find_attribute(g)) {
      levels.push_back({false, *a});
    } else {
      std::string known = "owner";
      for (const auto& at : log.attributes()) known += ", " + at.name;
      throw invalid_options("groups: '" + g + "' is neither 'owner' nor an attribute of the log (" + known +
                            ")");
    }
  }
  const std::string missing_label = "(missing)";
  auto label = [&](std::size_t lvl, std::int64_t code) -> const std::string& {
    if (code < 0) return missing_label;
    if (levels[lvl].owner) return log.owner_names()[static_cast<std::uint32_t>(code)];
    return log.attributes()[levels[lvl].attribute].values[static_cast<std::uint32_t>(code)];
  };

  // Leaf groups interned by their codes (a reused byte buffer: no allocation per stay).
  std::unordered_map<std::string, std::size_t> leaf_index;
  std::vector<std::vector<std::int64_t>> leaf_codes;
  std::vector<cell_accumulator> acc; // leaf * n_open + stage
  std::string keybuf;
  std::vector<std::int64_t> codes(levels.size());
  const bool decay = options.half_life_seconds.has_value();
  std::vector<std::int64_t> single_level; // one grouping level: leaf by code + 1, no hashing
  auto leaf_of = [&](std::size_t opp, time_point t) -> std::size_t {
    if (levels.size() == 1) {
      std::int64_t c = -1;
      if (levels[0].owner) {
        if (auto w = log.owners().at(opp, t)) c = *w;
      } else {
        c = log.attributes()[levels[0].attribute].code[opp];
      }
      const auto slot = static_cast<std::size_t>(c + 1);
      if (slot >= single_level.size()) single_level.resize(slot + 1, -1);
      if (single_level[slot] >= 0) return static_cast<std::size_t>(single_level[slot]);
      single_level[slot] = static_cast<std::int64_t>(leaf_codes.size());
      leaf_codes.push_back({c});
      acc.resize(acc.size() + n_open);
      for (auto i = acc.size() - n_open; i < acc.size(); ++i) acc[i].weighted = decay;
      return leaf_codes.size() - 1;
    }
    keybuf.clear();
    for (std::size_t l = 0; l < levels.size(); ++l) {
      std::int64_t c = -1;
      if (levels[l].owner) {
        if (auto w = log.owners().at(opp, t)) c = *w;
      } else {
        c = log.attributes()[levels[l].attribute].code[opp];
      }
      codes[l] = c;
      keybuf.append(reinterpret_cast<const char*>(&c), sizeof c);
    }
    auto it = leaf_index.find(keybuf);
    if (it != leaf_index.end()) return it->second;
    const auto idx = leaf_codes.size();
    leaf_index.emplace(keybuf, idx);
    leaf_codes.push_back(codes);
    acc.resize(acc.size() + n_open);
    for (auto i = acc.size() - n_open; i < acc.size(); ++i) acc[i].weighted = decay;
    return idx;
  };

  const double ln2_over_h = decay ? std::log(2.0) / *options.half_life_seconds : 0.0;
  const auto offsets = log.offsets();
  const auto times = log.times();
  const auto stages = log.stages();
  const bool grouped = !levels.empty();
  std::size_t cached_leaf = grouped ? 0 : leaf_of(0, 0);

  const bool owner_static =
      !grouped || std::none_of(levels.begin(), levels.end(), [](auto& l) { return l.owner; });
  const bool fast = !grouped && !decay; // the common case: one cell per stage, unit weights
  for (std::size_t o = 0; o + 1 < offsets.size(); ++o) {
    const auto b = offsets[o];
    const auto e = detail::visible_end(times, b, offsets[o + 1], as_of);
    if (e == b) continue;
    ++stats.n_opportunities;
    if (grouped && owner_static) cached_leaf = leaf_of(o, as_of);
    // Walk the runs of equal stages: each run in an open stage is a stay, ended by the next run.
    stage_code s = stages[b];
    time_point entry = times[b];
    for (auto k = b + 1; k <= e; ++k) {
      if (k < e && stages[k] == s) continue;
      if (f.is_open(s)) {
        const bool exited = k < e;
        const time_point end = exited ? times[k] : as_of;
        const std::int64_t d = (end - entry) / tick;
        const std::size_t column = exited ? stages[k] : censored;
        if (fast) {
          acc[s].add(d, column, 1.0, width);
        } else {
          const double w = (decay && exited) ? std::exp(-ln2_over_h * static_cast<double>(as_of - end)) : 1.0;
          const std::size_t leaf = grouped && !owner_static ? leaf_of(o, end) : cached_leaf;
          acc[leaf * n_open + s].add(d, column, w, width);
        }
        ++stats.n_stays;
      }
      if (k < e) {
        s = stages[k];
        entry = times[k];
      }
    }
  }

  for (std::size_t leaf = 0; leaf < leaf_codes.size(); ++leaf) {
    std::vector<std::string> key;
    for (std::size_t l = 0; l < levels.size(); ++l) key.push_back(label(l, leaf_codes[leaf][l]));
    std::vector<stage_counts> cells(n_open);
    for (std::size_t s = 0; s < n_open; ++s) cells[s] = acc[leaf * n_open + s].finish(width);
    auto [it, inserted] = stats.cells.try_emplace(std::move(key), std::move(cells));
    if (!inserted) // two codes with the same label cannot happen; keep the sum all the same
      for (std::size_t s = 0; s < n_open; ++s) it->second[s].merge(cells[s], width);
  }
  if (stats.cells.empty()) stats.cells.emplace(std::vector<std::string>{}, std::vector<stage_counts>(n_open));
  return stats;
}

// ---------------------------------------------------------------------------------------------
// Kaplan-Meier / Aalen-Johansen per cell

stage_estimate estimate_stage(const stage_counts& c, std::size_t n_codes, const fit_options& options) {
  stage_estimate e;
  const std::size_t width = n_codes + 1, rows = c.rows();
  e.duration = c.duration;
  e.at_risk.resize(rows);
  e.survival.resize(rows);
  e.incidence.assign(rows * n_codes, 0.0);
  e.exits.assign(n_codes, 0);
  e.p.assign(n_codes, nan);
  e.naive.assign(n_codes, nan);
  e.mean_sojourn.assign(n_codes, nan);

  // Totals, then at-risk by subtracting each row's stays as durations pass.
  double n_w = 0.0;
  std::vector<double> d_w(n_codes, 0.0), sojourn_sum(n_codes, 0.0);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t k = 0; k < width; ++k) {
      n_w += c.weight[r * width + k];
      e.n_stays += c.count[r * width + k];
      if (k < n_codes)
        e.exits[k] += c.count[r * width + k];
      else
        e.n_censored += c.count[r * width + k];
    }
  e.n_exits = e.n_stays - e.n_censored;

  double S = 1.0, risk = n_w, sum_w_sq = 0.0;
  std::vector<double> F(n_codes, 0.0);
  for (std::size_t r = 0; r < rows; ++r) {
    e.at_risk[r] = risk;
    double d_all = 0.0, row_w = 0.0, row_wsq = 0.0;
    for (std::size_t k = 0; k < n_codes; ++k) {
      d_all += c.weight[r * width + k];
      row_wsq += c.weight_sq[r * width + k];
    }
    for (std::size_t k = 0; k < width; ++k) row_w += c.weight[r * width + k];
    if (d_all > 0.0 && risk > 0.0) {
      const double per_unit = S / risk; // IPCW weight of one unit of exit weight at this time
      for (std::size_t k = 0; k < n_codes; ++k) {
        const double dk = c.weight[r * width + k];
        if (dk == 0.0) continue;
        F[k] += per_unit * dk;
        d_w[k] += dk;
        sojourn_sum[k] += per_unit * dk * static_cast<double>(c.duration[r]);
      }
      sum_w_sq += per_unit * per_unit * row_wsq;
      S *= std::max(0.0, 1.0 - d_all / risk);
    }
    e.survival[r] = S;
    for (std::size_t k = 0; k < n_codes; ++k) e.incidence[r * n_codes + k] = F[k];
    risk -= row_w;
    risk = std::max(risk, 0.0); // round-off below zero after the last row
  }
  // The last exit tau: S and F are flat after it, so the end values are S(tau), F(tau).
  e.unresolved = S;
  const double resolved = 1.0 - S;
  double d_total = 0.0;
  for (double x : d_w) d_total += x;
  if (e.n_exits > 0 && resolved > 0.0) {
    for (std::size_t k = 0; k < n_codes; ++k) {
      e.p[k] = F[k] / resolved;
      e.naive[k] = d_w[k] / d_total;
      if (F[k] > 0.0) e.mean_sojourn[k] = sojourn_sum[k] / F[k];
    }
    e.effective_n = sum_w_sq > 0.0 ? resolved * resolved / sum_w_sq : 0.0;
  }
  e.insufficient_history = static_cast<std::size_t>(e.n_exits) < options.min_exits;
  e.unresolved_high = e.n_stays > 0 && e.unresolved > options.unresolved_threshold;
  return e;
}

void apply_prior(stage_estimate& e, const std::vector<double>& mean, double concentration, double level) {
  const std::size_t n = e.n_codes();
  e.concentration = concentration;
  e.probability.assign(n, nan);
  e.low.assign(n, nan);
  e.high.assign(n, nan);
  e.alpha.clear();
  const bool has_data = e.effective_n > 0.0;
  if (concentration > 0.0) {
    e.alpha.assign(n, 0.0);
    double a0 = 0.0;
    for (std::size_t k = 0; k < n; ++k) {
      e.alpha[k] = concentration * mean[k] + (has_data ? e.effective_n * e.p[k] : 0.0);
      a0 += e.alpha[k];
    }
    const double tail = (1.0 - level) / 2.0;
    for (std::size_t k = 0; k < n; ++k) {
      const double a = e.alpha[k], b = a0 - a;
      e.probability[k] = a / a0;
      if (a <= 0.0) {
        e.low[k] = e.high[k] = 0.0;
      } else if (b <= 0.0) {
        e.low[k] = e.high[k] = 1.0;
      } else {
        e.low[k] = beta_quantile(a, b, tail);
        e.high[k] = beta_quantile(a, b, 1.0 - tail);
      }
    }
    return;
  }
  if (!has_data) return;
  // Unsmoothed: Wilson score intervals on the Kish effective number of exits.
  const double z = boost::math::quantile(boost::math::normal_distribution<double>(), 0.5 + level / 2.0);
  const double m = e.effective_n, z2 = z * z;
  for (std::size_t k = 0; k < n; ++k) {
    const double p = e.p[k];
    e.probability[k] = p;
    const double denom = 1.0 + z2 / m;
    const double centre = (p + z2 / (2.0 * m)) / denom;
    const double half = z / denom * std::sqrt(std::max(0.0, p * (1.0 - p) / m + z2 / (4.0 * m * m)));
    e.low[k] = std::max(0.0, centre - half);
    e.high[k] = std::min(1.0, centre + half);
  }
}

double stage_estimate::quantile(double q) const {
  for (std::size_t r = 0; r < duration.size(); ++r)
    if (survival[r] <= 1.0 - q + 1e-12) return static_cast<double>(duration[r]);
  return nan;
}

double stage_estimate::destination_quantile(std::size_t k, double q) const {
  const std::size_t rows = duration.size(), n = n_codes();
  if (rows == 0 || k >= n) return nan;
  const double total = incidence[(rows - 1) * n + k];
  if (!(total > 0.0)) return nan;
  for (std::size_t r = 0; r < rows; ++r)
    if (incidence[r * n + k] >= q * total - 1e-12 * total) return static_cast<double>(duration[r]);
  return nan;
}

double stage_estimate::survival_before(std::int64_t t) const {
  auto it = std::lower_bound(duration.begin(), duration.end(), t);
  if (it == duration.begin()) return 1.0;
  return survival[static_cast<std::size_t>(it - duration.begin()) - 1];
}

double stage_estimate::incidence_before(std::size_t k, std::int64_t t) const {
  auto it = std::lower_bound(duration.begin(), duration.end(), t);
  if (it == duration.begin()) return 0.0;
  return incidence[(static_cast<std::size_t>(it - duration.begin()) - 1) * n_codes() + k];
}

double stage_estimate::at_risk_at(std::int64_t t) const {
  auto it = std::lower_bound(duration.begin(), duration.end(), t);
  if (it == duration.end()) return 0.0;
  return at_risk[static_cast<std::size_t>(it - duration.begin())];
}

} // namespace smartfunnel
