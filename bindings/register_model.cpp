#include "pybind11.hpp"

#include <smartfunnel/funnel_model.hpp>

#include <memory>
#include <stdexcept>
#include <string>

namespace smartfunnel::bindings {

namespace {

std::size_t group_index(const funnel_model& m, std::size_t g) {
  if (g >= m.groups().size())
    throw py::index_error("group index " + std::to_string(g) + " out of range (" +
                          std::to_string(m.groups().size()) + " groups)");
  return g;
}

// Per open stage x destination code tables of one group, as 2-d arrays.
py::dict stage_tables(const funnel_model& m, std::size_t g) {
  const auto& gf = m.groups()[group_index(m, g)];
  const std::size_t n = m.funnel().n_open(), c = m.funnel().n_codes();
  std::vector<double> p, naive, prob, low, high;
  std::vector<std::int64_t> exits;
  std::vector<double> mean_soj;
  for (const auto& e : gf.stages) {
    p.insert(p.end(), e.p.begin(), e.p.end());
    naive.insert(naive.end(), e.naive.begin(), e.naive.end());
    prob.insert(prob.end(), e.probability.begin(), e.probability.end());
    low.insert(low.end(), e.low.begin(), e.low.end());
    high.insert(high.end(), e.high.begin(), e.high.end());
    exits.insert(exits.end(), e.exits.begin(), e.exits.end());
    mean_soj.insert(mean_soj.end(), e.mean_sojourn.begin(), e.mean_sojourn.end());
  }
  py::dict d;
  d["p"] = owned2d(std::move(p), n, c);
  d["naive"] = owned2d(std::move(naive), n, c);
  d["probability"] = owned2d(std::move(prob), n, c);
  d["low"] = owned2d(std::move(low), n, c);
  d["high"] = owned2d(std::move(high), n, c);
  d["exits"] = owned2d(std::move(exits), n, c);
  d["mean_sojourn"] = owned2d(std::move(mean_soj), n, c);
  return d;
}

// Per open stage scalars of one group.
py::dict stage_scalars(const funnel_model& m, std::size_t g) {
  const auto& gf = m.groups()[group_index(m, g)];
  std::vector<std::int64_t> n_stays, n_exits, n_censored;
  std::vector<double> unresolved, eff, conc, q25, q50, q75, q90;
  std::vector<bool> insufficient, unres_high;
  for (const auto& e : gf.stages) {
    n_stays.push_back(e.n_stays);
    n_exits.push_back(e.n_exits);
    n_censored.push_back(e.n_censored);
    unresolved.push_back(e.unresolved);
    eff.push_back(e.effective_n);
    conc.push_back(e.concentration);
    q25.push_back(e.quantile(0.25));
    q50.push_back(e.quantile(0.5));
    q75.push_back(e.quantile(0.75));
    q90.push_back(e.quantile(0.9));
    insufficient.push_back(e.insufficient_history);
    unres_high.push_back(e.unresolved_high);
  }
  py::dict d;
  d["n_stays"] = owned(std::move(n_stays));
  d["n_exits"] = owned(std::move(n_exits));
  d["n_censored"] = owned(std::move(n_censored));
  d["unresolved"] = owned(std::move(unresolved));
  d["effective_n"] = owned(std::move(eff));
  d["concentration"] = owned(std::move(conc));
  d["q25"] = owned(std::move(q25));
  d["q50"] = owned(std::move(q50));
  d["q75"] = owned(std::move(q75));
  d["q90"] = owned(std::move(q90));
  d["insufficient_history"] = insufficient;
  d["unresolved_high"] = unres_high;
  auto copy = [](const std::vector<double>& v) { return owned(std::vector<double>(v)); };
  d["win"] = copy(gf.chain.win);
  d["win_low"] = copy(gf.win_low);
  d["win_high"] = copy(gf.win_high);
  d["visits"] = copy(gf.chain.visits);
  d["ticks_to_close"] = copy(gf.chain.ticks_to_close);
  d["ticks_to_win"] = copy(gf.chain.ticks_to_win);
  return d;
}

} // namespace

void register_model(py::module_& m) {
  m.attr("FIT_MAX_DRAWS") = fit_options::max_draws;
  py::class_<fit_options>(m, "FitOptions", "C++ fit options (use smartfunnel.FitOptions from Python).")
      .def(py::init<>())
      .def_readwrite("as_of", &fit_options::as_of)
      .def_readwrite("tick_seconds", &fit_options::tick_seconds)
      .def_readwrite("prior", &fit_options::prior)
      .def_readwrite("half_life_seconds", &fit_options::half_life_seconds)
      .def_readwrite("groups", &fit_options::groups)
      .def_readwrite("min_exits", &fit_options::min_exits)
      .def_readwrite("unresolved_threshold", &fit_options::unresolved_threshold)
      .def_readwrite("level", &fit_options::level)
      .def_readwrite("seed", &fit_options::seed)
      .def_readwrite("draws", &fit_options::draws)
      .def_readwrite("min_concentration", &fit_options::min_concentration)
      .def_readwrite("max_concentration", &fit_options::max_concentration)
      .def_readwrite("min_groups_for_eb", &fit_options::min_groups_for_eb)
      .def_readwrite("fallback_concentration", &fit_options::fallback_concentration)
      .def_readwrite("min_at_risk", &fit_options::min_at_risk)
      .def("validate", &fit_options::validate);

  using stats_ptr = std::shared_ptr<fit_statistics>;
  py::class_<fit_statistics, stats_ptr>(
      m, "FitStatistics",
      "The mergeable sufficient statistics of a fit (counts and weights per group, stage, destination and "
      "duration). Partial statistics of disjoint sets of opportunities merge into those of their union.")
      .def_property_readonly("funnel", [](const fit_statistics& s) { return s.funnel; })
      .def_property_readonly("options", [](const fit_statistics& s) { return s.options; })
      .def_property_readonly("n_opportunities", [](const fit_statistics& s) { return s.n_opportunities; })
      .def_property_readonly("n_stays", [](const fit_statistics& s) { return s.n_stays; })
      .def_property_readonly("n_cells", [](const fit_statistics& s) { return s.cells.size(); })
      .def(
          "__eq__", [](const fit_statistics& a, const fit_statistics& b) { return a == b; },
          py::is_operator())
      .def(
          "merge",
          [](const fit_statistics& a, const fit_statistics& b) {
            py::gil_scoped_release release;
            auto out = std::make_shared<fit_statistics>(a);
            out->merge(b);
            return out;
          },
          py::arg("other"),
          "The statistics of the union (throws IncompatibleMergeError for other funnels or options).")
      .def("__repr__", [](const fit_statistics& s) {
        return "FitStatistics(" + std::to_string(s.n_opportunities) + " opportunities, " +
               std::to_string(s.n_stays) + " stays, " + std::to_string(s.cells.size()) + " leaf groups)";
      });
  py::setattr(m.attr("FitStatistics"), "__hash__", py::none());
  m.def(
      "collect_statistics",
      [](std::shared_ptr<event_log> log, const fit_options& options) {
        py::gil_scoped_release release;
        return std::make_shared<fit_statistics>(collect_statistics(*log, options));
      },
      py::arg("log"), py::arg("options"),
      "One pass over the log: the sufficient statistics of a fit as of options.as_of (default: the last "
      "event).");
  m.def(
      "merge_statistics",
      [](const std::vector<stats_ptr>& parts) {
        if (parts.empty()) throw std::invalid_argument("merge_statistics: no statistics to merge");
        py::gil_scoped_release release;
        auto out = std::make_shared<fit_statistics>(*parts.front());
        for (std::size_t i = 1; i < parts.size(); ++i) out->merge(*parts[i]);
        return out;
      },
      py::arg("parts"), "Merges the statistics of disjoint sets of opportunities, in order.");

  using model_ptr = std::shared_ptr<funnel_model>;
  py::class_<funnel_model, model_ptr>(m, "FunnelModel", "Fitted funnel model (see smartfunnel.FunnelModel).")
      .def_static(
          "from_statistics",
          [](const fit_statistics& s) {
            py::gil_scoped_release release;
            return std::make_shared<funnel_model>(funnel_model::from_statistics(s));
          },
          py::arg("statistics"), "Derives every estimate from sufficient statistics (merged or not).")
      .def_property_readonly(
          "statistics",
          [](const funnel_model& s) { return std::make_shared<fit_statistics>(s.statistics()); })
      .def_property_readonly("funnel", &funnel_model::funnel)
      .def_property_readonly("options", &funnel_model::options)
      .def_property_readonly("as_of", &funnel_model::as_of)
      .def_property_readonly("n_opportunities",
                             [](const funnel_model& s) { return s.statistics().n_opportunities; })
      .def_property_readonly("n_stays", [](const funnel_model& s) { return s.statistics().n_stays; })
      .def_property_readonly("group_keys",
                             [](const funnel_model& s) {
                               std::vector<std::vector<std::string>> keys;
                               for (const auto& g : s.groups()) keys.push_back(g.key);
                               return keys;
                             })
      .def_property_readonly("group_parents",
                             [](const funnel_model& s) {
                               std::vector<std::size_t> p;
                               for (const auto& g : s.groups()) p.push_back(g.parent);
                               return p;
                             })
      .def("stage_tables", &stage_tables, py::arg("group") = 0)
      .def("stage_scalars", &stage_scalars, py::arg("group") = 0)
      .def(
          "transition_matrix",
          [](const funnel_model& s, std::size_t g) {
            const std::size_t n = s.funnel().n_open();
            return owned2d(s.groups()[group_index(s, g)].transition_matrix(s.funnel()), n, n + 2);
          },
          py::arg("group") = 0)
      .def(
          "curve",
          [](const funnel_model& s, std::size_t g, std::size_t stage) {
            const auto& gf = s.groups()[group_index(s, g)];
            if (stage >= gf.stages.size()) throw py::index_error("stage index out of range");
            const auto& e = gf.stages[stage];
            return py::make_tuple(owned(std::vector<std::int64_t>(e.duration)),
                                  owned(std::vector<double>(e.at_risk)),
                                  owned(std::vector<double>(e.survival)),
                                  owned2d(std::vector<double>(e.incidence), e.duration.size(), e.n_codes()));
          },
          py::arg("group"), py::arg("stage"))
      .def(
          "p_win_within",
          [](const funnel_model& s, carray<std::int32_t> stage, carray<double> age_ticks,
             carray<double> horizon_ticks, std::size_t g, std::int64_t grid_ticks) {
            group_index(s, g);
            auto st = span_of(stage);
            auto ag = span_of(age_ticks);
            auto hz = span_of(horizon_ticks);
            std::vector<double> out(st.size());
            {
              py::gil_scoped_release release;
              s.p_win(st, ag, hz, out, g, grid_ticks);
            }
            return owned(std::move(out));
          },
          py::arg("stage"), py::arg("age_ticks"), py::arg("horizon_ticks"), py::arg("group") = 0,
          py::arg("grid_ticks") = 0,
          "P(won within horizon_ticks) by the recursion on a grid of grid_ticks ticks (0: default).")
      .def_property_readonly("grid_ticks", &funnel_model::grid_ticks,
                             "Ticks in one step of the default grid of the time-bounded recursion.")
      .def(
          "kernel",
          [](const funnel_model& s, std::size_t g, std::size_t stage) {
            const auto& k = s.process(group_index(s, g)).kernel(stage);
            const std::size_t w = s.funnel().n_open() + 2;
            py::dict d;
            d["defined"] = k.defined;
            d["grid_ticks"] = s.process(group_index(s, g)).grid_ticks();
            d["supported"] = k.supported;
            d["mass"] = owned2d(std::vector<double>(k.mass), k.mass.size() / w, w);
            d["tail_mass"] = owned(std::vector<double>(k.tail_mass));
            d["tail_hazard"] = k.tail_hazard;
            d["tail_mix"] = owned(std::vector<double>(k.tail_mix));
            d["tail_dead"] = k.tail_dead;
            d["dead_share"] = k.dead_share;
            d["dead_low"] = k.dead_low;
            d["dead_high"] = k.dead_high;
            d["tail_start"] = k.tail_start;
            d["tail_stays"] = k.tail_stays;
            d["tail_exits"] = k.tail_exits;
            return d;
          },
          py::arg("group"), py::arg("stage"),
          "The semi-Markov kernel of a stage on the default grid (outcome columns, grid steps).")
      .def(
          "won_within",
          [](const funnel_model& s, std::size_t g, std::int64_t horizon) {
            const auto& proc = s.process(group_index(s, g));
            std::vector<double> won;
            {
              py::gil_scoped_release release;
              won = proc.won_within(horizon);
            }
            const std::size_t n = proc.n_open();
            return owned2d(std::move(won), won.size() / n, n);
          },
          py::arg("group"), py::arg("horizon_steps"),
          "won[h, s] = P(won within h steps of the default grid | just entered s), h = 0..horizon_steps.")
      .def(
          "destination_quantiles",
          [](const funnel_model& s, std::size_t g, double q) {
            // n_open x n_codes: quantile q of the sojourn given each destination, in ticks.
            const auto& gf = s.groups()[group_index(s, g)];
            const std::size_t n = s.funnel().n_open(), c = s.funnel().n_codes();
            std::vector<double> out;
            out.reserve(n * c);
            for (const auto& e : gf.stages)
              for (std::size_t k = 0; k < c; ++k) out.push_back(e.destination_quantile(k, q));
            return owned2d(std::move(out), n, c);
          },
          py::arg("group"), py::arg("q"))
      .def(
          "quantile",
          [](const funnel_model& s, std::size_t g, std::size_t stage, double q) {
            return s.groups()[group_index(s, g)].stages.at(stage).quantile(q);
          },
          py::arg("group"), py::arg("stage"), py::arg("q"))
      .def(
          "p_win",
          [](const funnel_model& s, carray<std::int32_t> stage, carray<double> age_ticks, std::size_t g) {
            group_index(s, g);
            auto st = span_of(stage);
            auto ag = span_of(age_ticks);
            std::vector<double> out(st.size());
            {
              py::gil_scoped_release release;
              s.p_win(st, ag, out, g);
            }
            return owned(std::move(out));
          },
          py::arg("stage"), py::arg("age_ticks"), py::arg("group") = 0)
      .def(
          "cells",
          [](const funnel_model& s) {
            // The sufficient statistics: (leaf key, stage, durations, counts, weights, squared weights).
            py::list out;
            const std::size_t w = s.statistics().width();
            for (const auto& [key, cells] : s.statistics().cells)
              for (std::size_t st = 0; st < cells.size(); ++st) {
                const auto& c = cells[st];
                out.append(py::make_tuple(key, st, owned(std::vector<std::int64_t>(c.duration)),
                                          owned2d(std::vector<std::int64_t>(c.count), c.rows(), w),
                                          owned2d(std::vector<double>(c.weight), c.rows(), w),
                                          owned2d(std::vector<double>(c.weight_sq), c.rows(), w)));
              }
            return out;
          },
          "The mergeable sufficient statistics, one entry per (leaf group, stage).")
      .def("statistics_equal",
           [](const funnel_model& a, const funnel_model& b) { return a.statistics() == b.statistics(); });

  m.def(
      "fit",
      [](std::shared_ptr<event_log> log, const fit_options& options) {
        py::gil_scoped_release release;
        return std::make_shared<funnel_model>(fit(*log, options));
      },
      py::arg("log"), py::arg("options"), "Fit a funnel model (see smartfunnel.fit).");
  m.def(
      "merge",
      [](const funnel_model& a, const funnel_model& b) {
        py::gil_scoped_release release;
        return std::make_shared<funnel_model>(merge(a, b));
      },
      py::arg("a"), py::arg("b"), "Merge models fitted on disjoint sets of opportunities.");
}

} // namespace smartfunnel::bindings
