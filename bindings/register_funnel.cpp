#include "pybind11.hpp"

#include <smartfunnel/funnel.hpp>

#include <variant>

namespace smartfunnel::bindings {

namespace {
using names_arg = std::variant<std::string, std::vector<std::string>>;
std::vector<std::string> as_list(names_arg a) {
  if (auto* s = std::get_if<std::string>(&a)) return {*s};
  return std::get<std::vector<std::string>>(std::move(a));
}
std::vector<std::string> list(std::span<const std::string> s) { return {s.begin(), s.end()}; }
} // namespace

void register_funnel(py::module_& m) {
  py::class_<funnel>(m, "Funnel", R"doc(
An ordered list of open stages plus the terminal outcomes Won and Lost.

Parameters
----------
stages : list of str
    The open stages in funnel order.
won, lost : str or list of str
    The terminal name(s) meaning Won / Lost. Several names are kept as reasons
    (``lost=["Closed Lost", "Disqualified"]``); aggregated views use the outcome.
name : str, default "default"
exit_criteria : list of str, optional
    Per open stage, the buyer-verifiable outcome that ends it.
)doc")
      .def(py::init([](std::vector<std::string> stages, names_arg won, names_arg lost, std::string name,
                       std::vector<std::string> exit_criteria) {
             return funnel(std::move(stages), as_list(std::move(won)), as_list(std::move(lost)),
                           std::move(name), std::move(exit_criteria));
           }),
           py::arg("stages"), py::arg("won") = "Won", py::arg("lost") = "Lost", py::arg("name") = "default",
           py::arg("exit_criteria") = std::vector<std::string>{})
      .def_property_readonly("name", &funnel::name)
      .def_property_readonly(
          "stages", [](const funnel& f) { return list(f.open_stages()); }, "The open stages, in order.")
      .def_property_readonly("won", [](const funnel& f) { return list(f.won_names()); })
      .def_property_readonly("lost", [](const funnel& f) { return list(f.lost_names()); })
      .def_property_readonly(
          "names", [](const funnel& f) { return list(f.names()); },
          "Every name by code: open stages, then won names, then lost names.")
      .def_property_readonly("exit_criteria",
                             [](const funnel& f) {
                               std::vector<std::string> out;
                               for (std::size_t s = 0; s < f.n_open(); ++s)
                                 out.push_back(f.exit_criterion(static_cast<stage_code>(s)));
                               return out;
                             })
      .def("code_of", &funnel::code_of, py::arg("name"), "The dense code of a stage or terminal name.")
      .def("__eq__", [](const funnel& a, const funnel& b) { return a == b; })
      .def("__hash__",
           [](const funnel& f) {
             std::size_t h = std::hash<std::string>{}(f.name());
             for (const auto& n : f.names()) h = h * 31 + std::hash<std::string>{}(n);
             return h;
           })
      .def("__repr__", [](const funnel& f) {
        auto q = [](std::span<const std::string> s) {
          std::string out = "[";
          for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", '" : "'") + s[i] + "'";
          return out + "]";
        };
        return "Funnel(" + q(f.open_stages()) + ", won=" + q(f.won_names()) + ", lost=" + q(f.lost_names()) +
               (f.name() == "default" ? std::string() : ", name='" + f.name() + "'") + ")";
      });
}

} // namespace smartfunnel::bindings
