#include "pybind11.hpp"

#include <smartfunnel/activity_log.hpp>

#include <memory>
#include <optional>

namespace smartfunnel::bindings {

void register_coaching(py::module_& m) {
  using ptr = std::shared_ptr<activity_log>;
  py::class_<activity_log, ptr>(m, "ActivityLog",
                                "Activities of an event log's opportunities (see smartfunnel.ActivityLog).")
      .def_static(
          "from_columns",
          [](const std::shared_ptr<event_log>& log, carray<std::int64_t> opportunity,
             std::optional<std::vector<std::string>> opportunity_names, carray<std::int64_t> time,
             carray<std::int32_t> kind, std::vector<std::string> kind_names,
             std::optional<carray<std::int32_t>> owner, std::optional<std::vector<std::string>> owner_names,
             std::optional<carray<std::uint8_t>> buyer, const std::string& validation_mode,
             const std::vector<std::tuple<std::int64_t, std::string, std::string>>& unparsed) {
            if (validation_mode != "strict" && validation_mode != "lenient")
              throw std::invalid_argument("validation must be 'strict' or 'lenient', got '" +
                                          validation_mode + "'");
            const std::vector<std::string> opp_names = opportunity_names.value_or(std::vector<std::string>{});
            const std::vector<std::string> who = owner_names.value_or(std::vector<std::string>{});
            activity_columns c;
            c.opportunity = span_of(opportunity);
            c.opportunity_names = opp_names;
            c.time = span_of(time);
            c.kind = span_of(kind);
            c.kind_names = kind_names;
            if (owner) {
              c.owner = span_of(*owner);
              c.owner_names = who;
            }
            if (buyer) c.buyer = span_of(*buyer);
            std::vector<rejected_row> bad;
            for (const auto& [row, column, reason] : unparsed) bad.push_back({row, column, reason});
            c.unparsed = bad;
            ingest_options o;
            o.mode = validation_mode == "strict" ? validation::strict : validation::lenient;
            py::gil_scoped_release release;
            return std::make_shared<activity_log>(activity_log::from_columns(*log, c, o));
          },
          py::arg("log"), py::arg("opportunity"), py::arg("opportunity_names"), py::arg("time"),
          py::arg("kind"), py::arg("kind_names"), py::arg("owner") = py::none(),
          py::arg("owner_names") = py::none(), py::arg("buyer") = py::none(),
          py::arg("validation") = "strict", py::arg("unparsed") = py::list())
      .def_property_readonly("size", &activity_log::size)
      .def_property_readonly("offsets",
                             [](const ptr& s) { return view<std::uint64_t>(s->offsets(), py::cast(s)); })
      .def_property_readonly("times", [](const ptr& s) { return view<time_point>(s->times(), py::cast(s)); })
      .def_property_readonly("kinds",
                             [](const ptr& s) { return view<std::uint32_t>(s->kinds(), py::cast(s)); })
      .def_property_readonly("owners",
                             [](const ptr& s) { return view<std::int32_t>(s->owners(), py::cast(s)); })
      .def_property_readonly("buyer",
                             [](const ptr& s) { return view<std::uint8_t>(s->buyer(), py::cast(s)); })
      .def_property_readonly("stages",
                             [](const ptr& s) { return view<std::int32_t>(s->stages(), py::cast(s)); })
      .def_property_readonly("kind_names",
                             [](const activity_log& s) {
                               auto n = s.kind_names().names();
                               return std::vector<std::string>(n.begin(), n.end());
                             })
      .def_property_readonly("owner_names",
                             [](const activity_log& s) {
                               auto n = s.owner_names().names();
                               return std::vector<std::string>(n.begin(), n.end());
                             })
      .def_property_readonly("rejected", [](const activity_log& s) {
        py::list out;
        for (const auto& r : s.report().rejected) out.append(py::make_tuple(r.row, r.column, r.reason));
        return out;
      });
}

} // namespace smartfunnel::bindings
