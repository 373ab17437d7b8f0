#include "pybind11.hpp"

#include <smartfunnel/backtest.hpp>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace smartfunnel::bindings {

namespace {

using result_ptr = std::shared_ptr<backtest_result>;

template <class T>
py::array_t<T> column(const result_ptr& self, const std::vector<T>& v) {
  return view<T>(std::span<const T>(v), py::cast(self));
}

revenue_distribution distribution_from(const py::dict& d) {
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

std::function<bool(double)> progress_of(const std::optional<py::function>& progress) {
  if (!progress) return {};
  return [cb = *progress](double fraction) {
    py::gil_scoped_acquire gil;
    return cb(fraction).cast<bool>();
  };
}

} // namespace

void register_backtest(py::module_& m) {
  py::class_<backtest_result, result_ptr>(
      m, "BacktestResult",
      "Rows and scores of a backtest (see smartfunnel.Backtest). Columns are read-only numpy views.")
      .def_property_readonly("methods", [](const result_ptr& s) { return s->methods; })
      .def_property_readonly("as_of", [](const result_ptr& s) { return column(s, s->as_of); })
      .def_property_readonly("start", [](const result_ptr& s) { return column(s, s->start); })
      .def_property_readonly("end", [](const result_ptr& s) { return column(s, s->end); })
      .def_property_readonly("periods",
                             [](const result_ptr& s) {
                               const auto& p = s->periods;
                               py::dict d;
                               d["date"] = column(s, p.date);
                               d["method"] = column(s, p.method);
                               d["expected"] = column(s, p.expected);
                               d["P10"] = column(s, p.p10);
                               d["P50"] = column(s, p.p50);
                               d["P90"] = column(s, p.p90);
                               d["actual"] = column(s, p.actual);
                               d["error"] = column(s, p.error);
                               d["covered"] = column(s, p.covered);
                               d["pinball"] = column(s, p.pinball);
                               d["open_deals"] = column(s, p.open_deals);
                               return d;
                             })
      .def_property_readonly("deals",
                             [](const result_ptr& s) {
                               const auto& p = s->deals;
                               py::dict d;
                               d["date"] = column(s, p.date);
                               d["method"] = column(s, p.method);
                               d["opportunity"] = column(s, p.opportunity);
                               d["p"] = column(s, p.p);
                               d["won"] = column(s, p.won);
                               return d;
                             })
      .def_property_readonly("metrics",
                             [](const result_ptr& s) {
                               const auto& p = s->metrics;
                               py::dict d;
                               d["mae"] = column(s, p.mae);
                               d["mape"] = column(s, p.mape);
                               d["bias"] = column(s, p.bias);
                               d["coverage_p10_p90"] = column(s, p.coverage_p10_p90);
                               d["pinball"] = column(s, p.pinball);
                               d["brier"] = column(s, p.brier);
                               d["log_loss"] = column(s, p.log_loss);
                               d["periods"] = column(s, p.periods);
                               d["deals"] = column(s, p.deals);
                               return d;
                             })
      .def_property_readonly("calibration", [](const result_ptr& s) {
        const auto& p = s->calibration;
        py::dict d;
        d["method"] = column(s, p.method);
        d["low"] = column(s, p.low);
        d["high"] = column(s, p.high);
        d["predicted"] = column(s, p.predicted);
        d["observed"] = column(s, p.observed);
        d["deals"] = column(s, p.deals);
        return d;
      });

  const backtest_options defaults;
  const auto& fd = defaults.forecast;
  m.def(
      "backtest",
      [](std::shared_ptr<event_log> log, carray<time_point> as_of, std::int64_t horizon_days,
         carray<time_point> period_start, carray<time_point> period_end, const fit_options& fit,
         std::vector<double> ladder, std::size_t calibration_bins, std::size_t threads,
         std::optional<py::function> progress, std::optional<double> stale_after_days, bool include_arrivals,
         std::size_t parameter_draws, std::optional<double> grid_days, bool use_groups,
         double arrivals_lookback_days, std::string arrivals_by, std::size_t lattice_cells, double lattice_sd,
         bool calibrate) {
        backtest_options o;
        const auto a = span_of(as_of), s = span_of(period_start), e = span_of(period_end);
        o.as_of.assign(a.begin(), a.end());
        o.period_start.assign(s.begin(), s.end());
        o.period_end.assign(e.begin(), e.end());
        o.horizon_days = horizon_days;
        o.fit = fit;
        o.ladder = std::move(ladder);
        o.calibration_bins = calibration_bins;
        o.threads = threads;
        o.progress = progress_of(progress);
        o.forecast.stale_after_days = stale_after_days;
        o.forecast.include_arrivals = include_arrivals;
        o.forecast.parameter_draws = parameter_draws;
        o.forecast.grid_days = grid_days;
        o.forecast.use_groups = use_groups;
        o.forecast.arrivals_lookback_days = arrivals_lookback_days;
        o.forecast.arrivals_by = std::move(arrivals_by);
        o.forecast.lattice_cells = lattice_cells;
        o.forecast.lattice_sd = lattice_sd;
        o.forecast.calibration.enabled = calibrate;
        auto r = std::make_shared<backtest_result>();
        {
          py::gil_scoped_release release;
          *r = backtest(*log, o);
        }
        return r;
      },
      py::arg("log"), py::arg("as_of"), py::arg("horizon_days") = defaults.horizon_days,
      py::arg("period_start") = std::vector<time_point>{}, py::arg("period_end") = std::vector<time_point>{},
      py::arg("fit") = defaults.fit, py::arg("ladder") = std::vector<double>{},
      py::arg("calibration_bins") = defaults.calibration_bins, py::arg("threads") = defaults.threads,
      py::arg("progress") = py::none(), py::arg("stale_after_days") = py::none(),
      py::arg("include_arrivals") = fd.include_arrivals, py::arg("parameter_draws") = fd.parameter_draws,
      py::arg("grid_days") = py::none(), py::arg("use_groups") = fd.use_groups,
      py::arg("arrivals_lookback_days") = fd.arrivals_lookback_days, py::arg("arrivals_by") = fd.arrivals_by,
      py::arg("lattice_cells") = fd.lattice_cells, py::arg("lattice_sd") = fd.lattice_sd,
      py::arg("calibrate") = false,
      "Walk-forward backtest at each as_of (epoch seconds); see smartfunnel.backtest. Periods: "
      "[period_start, period_end) per date, or the UTC day rule when both are empty.");

  m.def(
      "backtest_score_period",
      [](std::shared_ptr<funnel_model> model, time_point as_of, time_point start, time_point end,
         carray<std::uint16_t> stage, carray<double> amount, carray<double> p_win_period,
         const py::dict& forecast, double realised, carray<double> won, double actual,
         std::vector<double> ladder, std::size_t lattice_cells, double lattice_sd) {
        backtest_options o;
        o.ladder = std::move(ladder);
        o.forecast.lattice_cells = lattice_cells;
        o.forecast.lattice_sd = lattice_sd;
        const auto dist = distribution_from(forecast);
        replayed_period p;
        p.as_of = as_of;
        p.start = start;
        p.end = end;
        p.stage = span_of(stage);
        p.amount = span_of(amount);
        p.p_win_period = span_of(p_win_period);
        p.forecast = &dist;
        p.realised = realised;
        p.won = span_of(won);
        p.actual = actual;
        auto r = std::make_shared<backtest_result>();
        {
          py::gil_scoped_release release;
          *r = score_period(*model, p, o);
        }
        return r;
      },
      py::arg("model"), py::arg("as_of"), py::arg("start"), py::arg("end"), py::arg("stage"),
      py::arg("amount"), py::arg("p_win_period"), py::arg("forecast"), py::arg("realised"), py::arg("won"),
      py::arg("actual"), py::arg("ladder") = std::vector<double>{},
      py::arg("lattice_cells") = fd.lattice_cells, py::arg("lattice_sd") = fd.lattice_sd,
      "The rows of one replayed date from its model, open deals, forecast distribution and outcomes "
      "(opportunities unknown); combine dates with backtest_combine.");

  m.def(
      "backtest_combine",
      [](const std::vector<result_ptr>& parts, std::size_t calibration_bins) {
        auto r = std::make_shared<backtest_result>();
        {
          py::gil_scoped_release release;
          for (const auto& part : parts) append(*r, *part);
          finalize(*r, calibration_bins);
        }
        return r;
      },
      py::arg("parts"), py::arg("calibration_bins") = defaults.calibration_bins,
      "The dates of each part in order, with the metrics and the calibration table of the whole.");

  m.def(
      "closed_only_win",
      [](std::shared_ptr<funnel_model> model, std::size_t group) {
        if (group >= model->groups().size())
          throw py::index_error("group index " + std::to_string(group) + " out of range");
        return owned(closed_only_win(*model, group));
      },
      py::arg("model"), py::arg("group") = 0,
      "P(eventually won) per open stage from the naive closed-only rates, through the chain.");
}

} // namespace smartfunnel::bindings
