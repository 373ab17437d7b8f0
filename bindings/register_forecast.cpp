#include "pybind11.hpp"

#include <smartfunnel/forecast.hpp>

#include <stdexcept>
#include <utility>
#include <vector>

namespace smartfunnel::bindings {

namespace {

py::dict distribution_dict(revenue_distribution&& d) {
  py::dict out;
  out["origin"] = d.origin;
  out["step"] = d.step;
  out["mean"] = d.mean;
  out["variance"] = d.variance;
  out["truncated_mass"] = d.truncated_mass;
  out["w1_bound"] = d.w1_bound;
  out["pmf"] = owned(std::move(d.pmf));
  return out;
}

revenue_distribution distribution_of(const py::dict& d) {
  revenue_distribution out;
  out.origin = d["origin"].cast<double>();
  out.step = d["step"].cast<double>();
  out.mean = d["mean"].cast<double>();
  out.variance = d["variance"].cast<double>();
  out.truncated_mass = d["truncated_mass"].cast<double>();
  out.w1_bound = d["w1_bound"].cast<double>();
  out.pmf = d["pmf"].cast<std::vector<double>>();
  return out;
}

compound_poisson poisson_of(double rate, std::vector<double> amount, std::vector<double> weight) {
  if (amount.size() != weight.size())
    throw std::invalid_argument("poisson_amount and poisson_weight must have the same length");
  return compound_poisson{rate, std::move(amount), std::move(weight)};
}

template <class T>
py::array_t<T> to_array(std::vector<T>&& v) {
  return owned(std::move(v));
}

py::dict calibration_dict(forecast_calibration&& c) {
  py::dict out;
  out["method"] = c.method;
  out["reason"] = c.reason;
  out["level"] = c.level;
  out["observed_level"] = c.observed_level;
  out["tau"] = c.tau;
  out["sigma"] = c.sigma;
  out["model_cv"] = c.model_cv;
  out["independent_periods"] = c.independent_periods;
  out["degrees_of_freedom"] = c.degrees_of_freedom;
  out["small_sample_factor"] = c.small_sample_factor;
  py::dict periods;
  periods["as_of"] = to_array(std::move(c.as_of));
  periods["start"] = to_array(std::move(c.start));
  periods["end"] = to_array(std::move(c.end));
  periods["expected"] = to_array(std::move(c.expected));
  periods["sd"] = to_array(std::move(c.sd));
  periods["P10"] = to_array(std::move(c.p10));
  periods["P50"] = to_array(std::move(c.p50));
  periods["P90"] = to_array(std::move(c.p90));
  periods["actual"] = to_array(std::move(c.actual));
  out["periods"] = periods;
  py::dict record;
  record["method"] = c.record.methods;
  record["periods"] = to_array(std::move(c.record.periods));
  record["coverage_p10_p90"] = to_array(std::move(c.record.coverage_p10_p90));
  record["bias"] = to_array(std::move(c.record.bias));
  record["relative_bias"] = to_array(std::move(c.record.relative_bias));
  record["pinball"] = to_array(std::move(c.record.pinball));
  record["mae"] = to_array(std::move(c.record.mae));
  out["track_record"] = record;
  return out;
}

} // namespace

void register_forecast(py::module_& m) {
  m.def(
      "forecast",
      [](std::shared_ptr<funnel_model> model, std::shared_ptr<event_log> log, time_point start,
         time_point end, std::optional<time_point> as_of, std::optional<double> stale_after_days,
         bool use_groups, bool exact, std::size_t lattice_cells, double lattice_sd, std::size_t scenarios,
         std::uint64_t seed, std::size_t threads, std::optional<py::function> progress, bool include_arrivals,
         double arrivals_lookback_days, std::string arrivals_by, std::size_t parameter_draws,
         std::optional<double> grid_days, bool calibrate, double calibration_spacing_days,
         std::size_t calibration_max_periods, std::size_t calibration_min_periods) {
        forecast_options o;
        o.start = start;
        o.end = end;
        o.as_of = as_of;
        o.stale_after_days = stale_after_days;
        o.use_groups = use_groups;
        o.exact = exact;
        o.lattice_cells = lattice_cells;
        o.lattice_sd = lattice_sd;
        o.scenarios = scenarios;
        o.seed = seed;
        o.threads = threads;
        o.include_arrivals = include_arrivals;
        o.arrivals_lookback_days = arrivals_lookback_days;
        o.arrivals_by = std::move(arrivals_by);
        o.parameter_draws = parameter_draws;
        o.grid_days = grid_days;
        o.calibration.enabled = calibrate;
        o.calibration.spacing_days = calibration_spacing_days;
        o.calibration.max_periods = calibration_max_periods;
        o.calibration.min_periods = calibration_min_periods;
        if (progress)
          o.progress = [cb = *progress](double fraction) {
            py::gil_scoped_acquire gil;
            return cb(fraction).cast<bool>();
          };
        forecast_result r;
        {
          py::gil_scoped_release release;
          r = forecast(*model, *log, o);
        }
        const std::size_t n_deals = r.deals.opportunity.size();
        std::vector<std::int64_t> opp(r.deals.opportunity.begin(), r.deals.opportunity.end());
        std::vector<std::int32_t> stage(r.deals.stage.begin(), r.deals.stage.end());
        std::vector<std::int64_t> group(r.deals.group.begin(), r.deals.group.end());
        std::vector<std::int64_t> realised_opp(r.realised_opportunity.begin(), r.realised_opportunity.end());
        py::dict out;
        out["as_of"] = r.as_of;
        out["grid_ticks"] = r.grid_ticks;
        out["opportunity"] = to_array(std::move(opp));
        out["stage"] = to_array(std::move(stage));
        out["age_ticks"] = to_array(std::move(r.deals.age_ticks));
        out["amount"] = to_array(std::move(r.deals.amount));
        out["group"] = to_array(std::move(group));
        out["p_win_period"] = to_array(std::move(r.deals.p_win_period));
        out["p_win_ever"] = to_array(std::move(r.deals.p_win_ever));
        out["p_win_period_draws"] = owned2d(std::move(r.deals.p_win_period_draws), n_deals, parameter_draws);
        out["realised_opportunity"] = to_array(std::move(realised_opp));
        out["realised_amount"] = to_array(std::move(r.realised_amount));
        out["realised_time"] = to_array(std::move(r.realised_time));
        out["realised"] = r.realised;
        out["exact"] = distribution_dict(std::move(r.exact));
        out["exact_pipeline"] = distribution_dict(std::move(r.exact_pipeline));
        out["exact_arrivals"] = distribution_dict(std::move(r.exact_arrivals));
        out["scenario_cents"] = to_array(std::move(r.scenario_cents));
        out["arrival_cents"] = to_array(std::move(r.arrival_cents));
        py::dict arr;
        arr["group"] = r.arrivals.group;
        arr["created"] = to_array(std::move(r.arrivals.created));
        arr["rate_per_day"] = to_array(std::move(r.arrivals.rate_per_day));
        arr["expected_wins"] = to_array(std::move(r.arrivals.expected_wins));
        arr["mean_amount"] = to_array(std::move(r.arrivals.mean_amount));
        arr["expected"] = to_array(std::move(r.arrivals.expected));
        arr["amount_source"] = r.arrivals.amount_source;
        arr["rate_source"] = r.arrivals.rate_source;
        arr["rate_growth_per_day"] = to_array(std::move(r.arrivals.rate_growth_per_day));
        arr["amount_count"] = to_array(std::move(r.arrivals.amount_count));
        arr["total_rate"] = r.arrivals.total.rate;
        arr["total_amount"] = to_array(std::move(r.arrivals.total.amount));
        arr["total_weight"] = to_array(std::move(r.arrivals.total.weight));
        py::list total_draws;
        for (auto& cp : r.arrivals.total_draws) {
          py::dict d;
          d["rate"] = cp.rate;
          d["amount"] = to_array(std::move(cp.amount));
          d["weight"] = to_array(std::move(cp.weight));
          total_draws.append(d);
        }
        arr["total_draws"] = total_draws;
        out["arrivals"] = arr;
        out["calibration"] = calibration_dict(std::move(r.calibration));
        return out;
      },
      py::arg("model"), py::arg("log"), py::arg("start"), py::arg("end"), py::arg("as_of") = py::none(),
      py::arg("stale_after_days") = py::none(), py::arg("use_groups") = true, py::arg("exact") = true,
      py::arg("lattice_cells") = 1 << 12, py::arg("lattice_sd") = 8.0, py::arg("scenarios") = 10'000,
      py::arg("seed") = 0, py::arg("threads") = 1, py::arg("progress") = py::none(),
      py::arg("include_arrivals") = true, py::arg("arrivals_lookback_days") = 180.0,
      py::arg("arrivals_by") = std::string(), py::arg("parameter_draws") = 0,
      py::arg("grid_days") = py::none(), py::arg("calibrate") = false,
      py::arg("calibration_spacing_days") = 0.0, py::arg("calibration_max_periods") = 52,
      py::arg("calibration_min_periods") = 5,
      "Forecast of the revenue won in [start, end) (epoch seconds); see smartfunnel.forecast.");

  m.def(
      "choose_half_life",
      [](std::shared_ptr<event_log> log, const fit_options& fit, std::vector<double> candidates_days,
         std::int64_t horizon_days, std::size_t threads) {
        recency_options o;
        o.candidates_days = std::move(candidates_days);
        o.horizon_days = horizon_days;
        o.threads = threads;
        recency_choice r;
        {
          py::gil_scoped_release release;
          r = choose_half_life(*log, fit, o);
        }
        py::dict out;
        out["half_life_days"] = to_array(std::move(r.half_life_days));
        out["pinball"] = to_array(std::move(r.pinball));
        out["relative_pinball"] = to_array(std::move(r.relative_pinball));
        out["coverage_p10_p90"] = to_array(std::move(r.coverage_p10_p90));
        out["bias"] = to_array(std::move(r.bias));
        out["periods"] = to_array(std::move(r.periods));
        out["chosen"] = r.chosen;
        out["reason"] = r.reason;
        return out;
      },
      py::arg("log"), py::arg("fit"), py::arg("candidates_days") = recency_options{}.candidates_days,
      py::arg("horizon_days") = recency_options{}.horizon_days, py::arg("threads") = 1,
      "Scores candidate half-lives by walk-forward pinball loss; see smartfunnel.fit(half_life='auto').");

  m.def(
      "exact_distribution",
      [](carray<double> amount, carray<double> p, double offset, std::size_t cells, double sd,
         double poisson_rate, std::vector<double> poisson_amount, std::vector<double> poisson_weight) {
        auto a = span_of(amount);
        auto q = span_of(p);
        const auto cp = poisson_of(poisson_rate, std::move(poisson_amount), std::move(poisson_weight));
        revenue_distribution d;
        {
          py::gil_scoped_release release;
          d = exact_distribution(a, q, offset, cells, sd, cp.rate > 0.0 ? &cp : nullptr);
        }
        return distribution_dict(std::move(d));
      },
      py::arg("amount"), py::arg("p"), py::arg("offset") = 0.0, py::arg("cells") = 1 << 12,
      py::arg("sd") = 8.0, py::arg("poisson_rate") = 0.0, py::arg("poisson_amount") = std::vector<double>{},
      py::arg("poisson_weight") = std::vector<double>{},
      "Exact distribution of sum amount_i * Bernoulli(p_i) on a lattice (mean preserved).");

  m.def(
      "exact_distribution_with_step",
      [](carray<double> amount, carray<double> p, double step, double offset, std::size_t cells, double sd,
         double poisson_rate, std::vector<double> poisson_amount, std::vector<double> poisson_weight) {
        auto a = span_of(amount);
        auto q = span_of(p);
        const auto cp = poisson_of(poisson_rate, std::move(poisson_amount), std::move(poisson_weight));
        revenue_distribution d;
        {
          py::gil_scoped_release release;
          d = exact_distribution_with_step(a, q, step, offset, cells, sd, cp.rate > 0.0 ? &cp : nullptr);
        }
        return distribution_dict(std::move(d));
      },
      py::arg("amount"), py::arg("p"), py::arg("step"), py::arg("offset") = 0.0, py::arg("cells") = 1 << 12,
      py::arg("sd") = 8.0, py::arg("poisson_rate") = 0.0, py::arg("poisson_amount") = std::vector<double>{},
      py::arg("poisson_weight") = std::vector<double>{},
      "exact_distribution on a given lattice step (parts of a total, combined by convolve).");

  m.def(
      "convolve",
      [](const py::dict& a, const py::dict& b, std::size_t cells, double sd) {
        const auto da = distribution_of(a), db = distribution_of(b);
        revenue_distribution d;
        {
          py::gil_scoped_release release;
          d = convolve(da, db, cells, sd);
        }
        return distribution_dict(std::move(d));
      },
      py::arg("a"), py::arg("b"), py::arg("cells") = 1 << 12, py::arg("sd") = 8.0,
      "The distribution of the sum of two independent totals on the same lattice step.");

  m.def(
      "monte_carlo_cents",
      [](carray<std::int64_t> cents, carray<double> p, carray<std::uint64_t> keys, std::size_t scenarios,
         std::uint64_t seed, std::size_t threads) {
        auto c = span_of(cents);
        auto q = span_of(p);
        auto k = span_of(keys);
        std::vector<std::int64_t> out;
        {
          py::gil_scoped_release release;
          out = monte_carlo_cents(c, q, k, scenarios, seed, threads);
        }
        return owned(std::move(out));
      },
      py::arg("cents"), py::arg("p"), py::arg("keys"), py::arg("scenarios"), py::arg("seed") = 0,
      py::arg("threads") = 1, "Monte Carlo totals in cents per scenario, keyed by (seed, scenario, key).");

  m.def(
      "monte_carlo_cents_draws",
      [](carray<std::int64_t> cents, const py::array_t<double, py::array::c_style | py::array::forcecast>& p,
         carray<std::uint64_t> keys, std::size_t scenarios, std::uint64_t seed, std::size_t threads) {
        auto c = span_of(cents);
        auto k = span_of(keys);
        if (p.ndim() != 2 || static_cast<std::size_t>(p.shape(0)) != c.size())
          throw std::invalid_argument("p must be a 2-d array of shape (deals, draws) with one row per deal");
        const auto draws = static_cast<std::size_t>(p.shape(1));
        if (draws == 0) throw std::invalid_argument("p must have at least one draw (column)");
        const std::span<const double> q(p.data(), c.size() * draws);
        std::vector<std::int64_t> out;
        {
          py::gil_scoped_release release;
          out = monte_carlo_cents_draws(c, q, draws, k, scenarios, seed, threads);
        }
        return owned(std::move(out));
      },
      py::arg("cents"), py::arg("p"), py::arg("keys"), py::arg("scenarios"), py::arg("seed") = 0,
      py::arg("threads") = 1,
      "Monte Carlo totals in cents with per-draw probabilities p[deal, draw]: scenario s uses draw "
      "s % draws, with the streams of monte_carlo_cents.");

  m.def(
      "mixture",
      [](const py::list& parts, std::size_t cells, double sd, double min_step) {
        std::vector<revenue_distribution> ds;
        for (const auto& part : parts) ds.push_back(distribution_of(part.cast<py::dict>()));
        if (ds.empty()) throw std::invalid_argument("mixture: no distributions");
        revenue_distribution d;
        {
          py::gil_scoped_release release;
          d = mixture(ds, cells, sd, min_step);
        }
        return distribution_dict(std::move(d));
      },
      py::arg("parts"), py::arg("cells") = 1 << 12, py::arg("sd") = 8.0, py::arg("min_step") = 0.0,
      "The equal-weight mixture of distributions (as the forecast with parameter draws mixes them).");

  m.def("lattice_step", &lattice_step, py::arg("variance"), py::arg("max_amount"), py::arg("cells") = 1 << 12,
        py::arg("sd") = 8.0,
        "The exact distribution's lattice step: 2 sd sigma / cells, never below max_amount / cells.");
  m.def(
      "largest_uncertain_amount",
      [](carray<double> amount, carray<double> p) {
        return largest_uncertain_amount(span_of(amount), span_of(p));
      },
      py::arg("amount"), py::arg("p"),
      "The largest amount of a deal with amount > 0 and 0 < p < 1 (0: none).");
  {
    py::dict limits;
    limits["lattice_cells"] = forecast_options::max_lattice_cells;
    limits["lattice_sd"] = forecast_options::max_lattice_sd;
    limits["scenarios"] = forecast_options::max_scenarios;
    limits["threads"] = forecast_options::max_threads;
    limits["parameter_draws"] = forecast_options::max_parameter_draws;
    limits["draw_values"] = forecast_options::max_draw_values;
    limits["arrivals_lookback_days"] = forecast_options::max_arrivals_lookback_days;
    m.attr("FORECAST_LIMITS") = limits;
  }

  m.def(
      "opportunity_key", [](const std::string& id) { return opportunity_key(id); }, py::arg("id"),
      "The stable 64-bit key of an opportunity id used by the Monte Carlo streams.");
}

} // namespace smartfunnel::bindings
