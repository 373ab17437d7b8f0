#include "pybind11.hpp"

#include <smartfunnel/simulate.hpp>

namespace smartfunnel::bindings {

void register_simulate(py::module_& m) {
  m.def(
      "simulate",
      [](const funnel& f, std::vector<double> transition, std::vector<double> sojourn_mean_days,
         double sojourn_shape, std::vector<std::vector<double>> owner_transition,
         std::vector<std::string> owners, std::size_t n_opportunities, time_point start, time_point as_of,
         std::size_t entry_stage, double amount_median, double amount_sigma, double amount_change_probability,
         double reassign_probability, double close_push_probability, std::uint64_t seed) {
        simulation_spec spec;
        spec.transition = std::move(transition);
        spec.sojourn_mean_days = std::move(sojourn_mean_days);
        spec.sojourn_shape = sojourn_shape;
        spec.owner_transition = std::move(owner_transition);
        spec.owners = std::move(owners);
        spec.n_opportunities = n_opportunities;
        spec.start = start;
        spec.as_of = as_of;
        spec.entry_stage = entry_stage;
        spec.amount_median = amount_median;
        spec.amount_sigma = amount_sigma;
        spec.amount_change_probability = amount_change_probability;
        spec.reassign_probability = reassign_probability;
        spec.close_push_probability = close_push_probability;
        spec.seed = seed;
        simulated_events ev;
        {
          py::gil_scoped_release release;
          ev = simulate(f, spec);
        }
        py::dict d;
        d["opportunity"] = owned(std::move(ev.opportunity));
        d["stage"] = owned(std::move(ev.stage));
        d["stage_names"] = ev.stage_names;
        d["time"] = owned(std::move(ev.time));
        d["amount"] = owned(std::move(ev.amount));
        d["owner"] = owned(std::move(ev.owner));
        d["owner_names"] = ev.owner_names;
        d["close_date"] = owned(std::move(ev.close_date));
        d["created"] = owned(std::move(ev.created));
        return d;
      },
      py::arg("funnel"), py::arg("transition"), py::arg("sojourn_mean_days"), py::arg("sojourn_shape"),
      py::arg("owner_transition"), py::arg("owners"), py::arg("n_opportunities"), py::arg("start"),
      py::arg("as_of"), py::arg("entry_stage"), py::arg("amount_median"), py::arg("amount_sigma"),
      py::arg("amount_change_probability"), py::arg("reassign_probability"),
      py::arg("close_push_probability"), py::arg("seed"),
      "Simulate stage histories with known truth (see smartfunnel.datasets.simulate).");
}

} // namespace smartfunnel::bindings
