#include "pybind11.hpp"

#include <smartfunnel/version.hpp>

PYBIND11_MODULE(_core, m) {
  m.doc() = "smartfunnel's compiled core (use the `smartfunnel` package, not this module directly)";
  m.attr("__version__") = smartfunnel::version_string;
  using namespace smartfunnel::bindings;
  register_errors(m);
  register_funnel(m);
  register_event_log(m);
  register_model(m);
  register_simulate(m);
  register_forecast(m);
  register_coaching(m);
  register_backtest(m);
  register_serialization(m); // after every class it adds pickling and save() to
}
