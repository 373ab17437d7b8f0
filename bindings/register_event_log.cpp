#include "pybind11.hpp"

#include <smartfunnel/detail/string_interner.hpp>
#include <smartfunnel/detail/visible.hpp>
#include <smartfunnel/event_log.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <optional>

namespace smartfunnel::bindings {

namespace {

validation parse_mode(const std::string& s) {
  if (s == "strict") return validation::strict;
  if (s == "lenient") return validation::lenient;
  throw std::invalid_argument("validation must be 'strict' or 'lenient', got '" + s + "'");
}
after_terminal parse_after(const std::string& s) {
  if (s == "error") return after_terminal::error;
  if (s == "reopen") return after_terminal::reopen;
  throw std::invalid_argument("after_terminal must be 'error' or 'reopen', got '" + s + "'");
}

// Owns the numpy arrays (kept alive, no copies when dtypes match) behind an event_columns view.
struct column_input {
  carray<std::int64_t> opportunity;
  std::vector<std::string> opportunity_names;
  carray<std::int32_t> stage;
  std::vector<std::string> stage_names;
  carray<std::int64_t> time;
  std::optional<carray<double>> amount;
  std::optional<carray<std::int32_t>> owner;
  std::vector<std::string> owner_names;
  std::optional<carray<std::int64_t>> close_date;
  std::optional<carray<std::int64_t>> created;
  std::vector<std::string> attr_names;
  std::vector<carray<std::int32_t>> attr_codes;
  std::vector<std::vector<std::string>> attr_values;
  // The changes table (field changes between stage events), all optional.
  std::optional<carray<std::int64_t>> ch_opportunity, ch_time, ch_close;
  std::vector<std::string> ch_opportunity_names, ch_owner_names;
  std::optional<carray<double>> ch_amount;
  std::optional<carray<std::int32_t>> ch_owner;
  std::optional<carray<std::uint8_t>> ch_amount_given, ch_owner_given;
  std::vector<rejected_row> unparsed;

  void set_changes(const std::optional<py::dict>& d) {
    if (!d) return;
    auto get = [&](const char* k) { return d->contains(k) && !(*d)[k].is_none(); };
    if (!get("opportunity") || !get("time"))
      throw std::invalid_argument("changes needs 'opportunity' and 'time' columns");
    ch_opportunity = (*d)["opportunity"].cast<carray<std::int64_t>>();
    ch_time = (*d)["time"].cast<carray<std::int64_t>>();
    if (get("opportunity_names"))
      ch_opportunity_names = (*d)["opportunity_names"].cast<std::vector<std::string>>();
    if (get("amount")) ch_amount = (*d)["amount"].cast<carray<double>>();
    if (get("amount_given")) ch_amount_given = (*d)["amount_given"].cast<carray<std::uint8_t>>();
    if (get("owner")) ch_owner = (*d)["owner"].cast<carray<std::int32_t>>();
    if (get("owner_names")) ch_owner_names = (*d)["owner_names"].cast<std::vector<std::string>>();
    if (get("owner_given")) ch_owner_given = (*d)["owner_given"].cast<carray<std::uint8_t>>();
    if (get("close_date")) ch_close = (*d)["close_date"].cast<carray<std::int64_t>>();
  }

  event_columns view() const {
    event_columns c;
    c.opportunity = span_of(opportunity);
    c.opportunity_names = opportunity_names;
    c.stage = span_of(stage);
    c.stage_names = stage_names;
    c.time = span_of(time);
    if (amount) c.amount = span_of(*amount);
    if (owner) {
      c.owner = span_of(*owner);
      c.owner_names = owner_names;
    }
    if (close_date) c.close_date = span_of(*close_date);
    if (created) c.created = span_of(*created);
    for (std::size_t i = 0; i < attr_names.size(); ++i)
      c.attributes.push_back({attr_names[i], span_of(attr_codes[i]), attr_values[i]});
    c.unparsed = unparsed;
    if (ch_opportunity) {
      c.changes.opportunity = span_of(*ch_opportunity);
      c.changes.opportunity_names = ch_opportunity_names;
      c.changes.time = span_of(*ch_time);
      if (ch_amount) c.changes.amount = span_of(*ch_amount);
      if (ch_amount_given) c.changes.amount_given = span_of(*ch_amount_given);
      if (ch_owner) c.changes.owner = span_of(*ch_owner);
      c.changes.owner_names = ch_owner_names;
      if (ch_owner_given) c.changes.owner_given = span_of(*ch_owner_given);
      if (ch_close) c.changes.close_date = span_of(*ch_close);
    }
    return c;
  }
};

column_input
make_input(carray<std::int64_t> opportunity, std::optional<std::vector<std::string>> opportunity_names,
           carray<std::int32_t> stage, std::vector<std::string> stage_names, carray<std::int64_t> time,
           std::optional<carray<double>> amount, std::optional<carray<std::int32_t>> owner,
           std::optional<std::vector<std::string>> owner_names,
           std::optional<carray<std::int64_t>> close_date, std::optional<carray<std::int64_t>> created,
           std::vector<std::tuple<std::string, carray<std::int32_t>, std::vector<std::string>>> attributes) {
  column_input in{std::move(opportunity),
                  opportunity_names.value_or(std::vector<std::string>{}),
                  std::move(stage),
                  std::move(stage_names),
                  std::move(time),
                  std::move(amount),
                  std::move(owner),
                  owner_names.value_or(std::vector<std::string>{}),
                  std::move(close_date),
                  std::move(created),
                  {},
                  {},
                  {}};
  for (auto& [name, codes, values] : attributes) {
    in.attr_names.push_back(name);
    in.attr_codes.push_back(std::move(codes));
    in.attr_values.push_back(std::move(values));
  }
  return in;
}

py::dict report_dict(const data_quality_report& r) {
  py::dict d;
  d["rows_read"] = r.rows_read;
  d["rows_kept"] = r.rows_kept;
  d["duplicates_collapsed"] = r.duplicates_collapsed;
  d["reopened"] = r.reopened;
  std::vector<std::int64_t> rows;
  std::vector<std::string> cols, reasons;
  for (const auto& x : r.rejected) {
    rows.push_back(x.row);
    cols.push_back(x.column);
    reasons.push_back(x.reason);
  }
  d["rejected_rows"] = owned(std::move(rows));
  d["rejected_columns"] = cols;
  d["rejected_reasons"] = reasons;
  return d;
}

template <class T>
py::tuple history(const field_history<T>& h, py::handle owner) {
  return py::make_tuple(view<std::uint64_t>(h.offset, owner), view<time_point>(h.time, owner),
                        view<T>(h.value, owner));
}

// from_columns and append take the same columns: one entry point builds them (no copies where the
// dtypes match), releases the GIL and calls `build(first, columns, options)`.
template <class First, class Build>
auto columns_entry(Build build) {
  return
      [build](First first, carray<std::int64_t> opportunity,
              std::optional<std::vector<std::string>> opportunity_names, carray<std::int32_t> stage,
              std::vector<std::string> stage_names, carray<std::int64_t> time,
              std::optional<carray<double>> amount, std::optional<carray<std::int32_t>> owner,
              std::optional<std::vector<std::string>> owner_names,
              std::optional<carray<std::int64_t>> close_date, std::optional<carray<std::int64_t>> created,
              std::vector<std::tuple<std::string, carray<std::int32_t>, std::vector<std::string>>> attributes,
              const std::string& validation_mode, const std::string& on_after_terminal,
              std::optional<py::dict> changes,
              const std::vector<std::tuple<std::int64_t, std::string, std::string>>& unparsed) {
        const ingest_options opts{parse_mode(validation_mode), parse_after(on_after_terminal)};
        auto in = make_input(std::move(opportunity), std::move(opportunity_names), std::move(stage),
                             std::move(stage_names), std::move(time), std::move(amount), std::move(owner),
                             std::move(owner_names), std::move(close_date), std::move(created),
                             std::move(attributes));
        in.set_changes(changes);
        for (const auto& [row, column, reason] : unparsed) in.unparsed.push_back({row, column, reason});
        const auto cols = in.view();
        py::gil_scoped_release release;
        return std::make_shared<event_log>(build(first, cols, opts));
      };
}

// The keyword arguments of the columns, shared by from_columns and append.
#define SMARTFUNNEL_COLUMN_ARGS                                                                              \
  py::arg("opportunity"), py::arg("opportunity_names"), py::arg("stage"), py::arg("stage_names"),            \
      py::arg("time"), py::arg("amount") = py::none(), py::arg("owner") = py::none(),                        \
                       py::arg("owner_names") = py::none(), py::arg("close_date") = py::none(),              \
                       py::arg("created") = py::none(), py::arg("attributes") = py::list(),                  \
                       py::arg("validation") = "strict", py::arg("after_terminal") = "error",                \
                       py::arg("changes") = py::none(), py::arg("unparsed") = py::list()

// Text columns to (codes, names) in order of first appearance, missing values -1: what
// pandas.factorize gives, without a Python object per row where the column is Arrow-backed.

// Arrow string / large_string chunks, each (offsets, data, validity or None, offset, length).
py::tuple intern_arrow(const py::list& chunks) {
  struct chunk {
    py::array offsets, data;
    std::optional<py::array> validity;
    std::size_t offset, length;
  };
  std::vector<chunk> in;
  std::size_t total = 0;
  for (const auto& item : chunks) {
    const auto t = item.cast<py::tuple>();
    chunk c{t[0].cast<py::array>(), t[1].cast<py::array>(), std::nullopt, t[3].cast<std::size_t>(),
            t[4].cast<std::size_t>()};
    if (!t[2].is_none()) c.validity = t[2].cast<py::array>();
    const auto width = c.offsets.itemsize();
    if ((width != 4 && width != 8) || c.offsets.ndim() != 1 || c.data.itemsize() != 1 ||
        !(c.offsets.flags() & py::array::c_style) ||
        static_cast<std::size_t>(c.offsets.shape(0)) < c.offset + c.length + 1 ||
        (c.validity && static_cast<std::size_t>(c.validity->nbytes()) * 8 < c.offset + c.length))
      throw std::invalid_argument("intern_arrow: malformed string chunk");
    total += c.length;
    in.push_back(std::move(c));
  }
  std::vector<std::int32_t> codes(total);
  detail::string_interner names;
  {
    py::gil_scoped_release release;
    std::size_t k = 0;
    for (const auto& c : in) {
      const auto* data = static_cast<const char*>(c.data.data());
      const auto data_size = static_cast<std::size_t>(c.data.nbytes());
      const auto* valid = c.validity ? static_cast<const std::uint8_t*>(c.validity->data()) : nullptr;
      auto run = [&](const auto* off) {
        for (std::size_t i = c.offset; i < c.offset + c.length; ++i, ++k) {
          if (valid && !((valid[i >> 3] >> (i & 7)) & 1)) {
            codes[k] = -1;
            continue;
          }
          const auto b = static_cast<std::size_t>(off[i]), e = static_cast<std::size_t>(off[i + 1]);
          if (e < b || e > data_size) throw std::invalid_argument("intern_arrow: offsets outside the data");
          codes[k] = static_cast<std::int32_t>(names.intern_in(data, b, e, data_size));
        }
      };
      if (c.offsets.itemsize() == 4)
        run(static_cast<const std::int32_t*>(c.offsets.data()));
      else
        run(static_cast<const std::int64_t*>(c.offsets.data()));
    }
  }
  return py::make_tuple(owned(std::move(codes)), names.take_names());
}

// A numpy object array of str, None, NaN or `na` (pandas.NA); None where a value is anything
// else or not valid Unicode (the caller then takes the general path, which names the row).
py::object intern_objects(const py::array& values, const py::handle& na) {
  if (values.dtype().kind() != 'O' || values.ndim() != 1) return py::none();
  const auto n = static_cast<std::size_t>(values.shape(0));
  const auto stride = values.strides(0);
  const auto* base = static_cast<const char*>(values.data());
  std::vector<std::int32_t> codes(n);
  detail::string_interner names;
  // The same str object is the same value: a direct-mapped cache by address skips reading it.
  struct seen {
    const PyObject* object = nullptr;
    std::int32_t code = 0;
  };
  std::vector<seen> cache(1024);
  for (std::size_t i = 0; i < n; ++i) {
    PyObject* v = *reinterpret_cast<PyObject* const*>(base + static_cast<py::ssize_t>(i) * stride);
    auto& slot = cache[(reinterpret_cast<std::uintptr_t>(v) >> 4) & 1023];
    if (slot.object == v) {
      codes[i] = slot.code;
      continue;
    }
    std::int32_t code;
    if (v == Py_None || v == na.ptr() || (PyFloat_Check(v) && std::isnan(PyFloat_AS_DOUBLE(v)))) {
      code = -1;
    } else if (PyUnicode_Check(v)) {
      Py_ssize_t size = 0;
      const char* text;
      if (PyUnicode_IS_COMPACT_ASCII(v)) {
        text = static_cast<const char*>(PyUnicode_DATA(v));
        size = PyUnicode_GET_LENGTH(v);
      } else if ((text = PyUnicode_AsUTF8AndSize(v, &size)) == nullptr) {
        PyErr_Clear();
        return py::none();
      }
      code = static_cast<std::int32_t>(names.intern({text, static_cast<std::size_t>(size)}));
    } else {
      return py::none();
    }
    slot = {v, code};
    codes[i] = code;
  }
  return py::make_tuple(owned(std::move(codes)), names.take_names());
}

} // namespace

void register_event_log(py::module_& m) {
  m.def("intern_arrow", &intern_arrow, py::arg("chunks"),
        "Codes (int32, -1 missing) and names, in order of first appearance, of Arrow string or "
        "large_string chunks given as (offsets, data, validity or None, offset, length).");
  m.def("intern_objects", &intern_objects, py::arg("values"), py::arg("na"),
        "Codes and names of a numpy object array of str (None, NaN and `na` missing), or None "
        "when it holds anything else.");
  using log_ptr = std::shared_ptr<event_log>;
  py::class_<event_log, log_ptr>(m, "EventLog",
                                 "Validated, sorted, interned stage history (see smartfunnel.EventLog).")
      .def_static("from_columns",
                  columns_entry<const funnel&>(
                      [](const funnel& f, const event_columns& cols, const ingest_options& opts) {
                        return event_log::from_columns(f, cols, opts);
                      }),
                  py::arg("funnel"), SMARTFUNNEL_COLUMN_ARGS)
      .def(
          "append",
          columns_entry<const event_log&>([](const event_log& self, const event_columns& cols,
                                             const ingest_options& opts) { return self.append(cols, opts); }),
          SMARTFUNNEL_COLUMN_ARGS)
      .def_property_readonly("funnel", &event_log::funnel)
      .def_property_readonly("n_events", &event_log::n_events)
      .def_property_readonly("n_opportunities", &event_log::n_opportunities)
      .def_property_readonly("string_ids", &event_log::string_ids)
      .def_property_readonly("ids",
                             [](const log_ptr& self) -> py::object {
                               if (self->string_ids()) {
                                 auto ids = self->string_id_values();
                                 return py::cast(std::vector<std::string>(ids.begin(), ids.end()));
                               }
                               return view<std::int64_t>(self->int_ids(), py::cast(self));
                             })
      .def_property_readonly("offsets",
                             [](const log_ptr& s) { return view<std::uint64_t>(s->offsets(), py::cast(s)); })
      .def_property_readonly("times",
                             [](const log_ptr& s) { return view<time_point>(s->times(), py::cast(s)); })
      .def_property_readonly("stages",
                             [](const log_ptr& s) { return view<stage_code>(s->stages(), py::cast(s)); })
      .def_property_readonly("created",
                             [](const log_ptr& s) { return view<time_point>(s->created(), py::cast(s)); })
      .def_property_readonly("first_time", &event_log::first_time)
      .def_property_readonly("last_time", &event_log::last_time)
      .def_property_readonly("has_amounts", &event_log::has_amounts)
      .def_property_readonly("has_owners", &event_log::has_owners)
      .def_property_readonly("owner_names",
                             [](const event_log& s) {
                               auto n = s.owner_names().names();
                               return std::vector<std::string>(n.begin(), n.end());
                             })
      .def_property_readonly("amount_history",
                             [](const log_ptr& s) { return history(s->amounts(), py::cast(s)); })
      .def_property_readonly("owner_history",
                             [](const log_ptr& s) { return history(s->owners(), py::cast(s)); })
      .def_property_readonly("close_date_history",
                             [](const log_ptr& s) { return history(s->close_dates(), py::cast(s)); })
      .def_property_readonly("attributes",
                             [](const log_ptr& s) {
                               py::list out;
                               for (const auto& a : s->attributes()) {
                                 auto v = a.values.names();
                                 out.append(py::make_tuple(a.name,
                                                           std::vector<std::string>(v.begin(), v.end()),
                                                           view<std::int32_t>(a.code, py::cast(s))));
                               }
                               return out;
                             })
      .def(
          "state_at",
          [](const event_log& s, time_point t) {
            // Per opportunity at time t: stage code (-1: no event yet), entry time of the current
            // stay, amount (NaN: none), close date and owner code (missing: none).
            const auto n = s.n_opportunities();
            const auto off = s.offsets();
            const auto times = s.times();
            const auto stages = s.stages();
            std::vector<std::int32_t> stage(n, missing_code), owner(n, missing_code);
            std::vector<time_point> entry(n, missing_time), close(n, missing_time);
            std::vector<double> amount(n, std::numeric_limits<double>::quiet_NaN());
            for (std::size_t o = 0; o < n; ++o) {
              const auto b = off[o];
              const auto e = detail::visible_end(times, b, off[o + 1], t);
              if (e == b) continue;
              const auto run = detail::run_start(stages, b, e - 1);
              stage[o] = stages[e - 1];
              entry[o] = times[run];
              if (auto a = s.amounts().at(o, t)) amount[o] = *a;
              if (auto c = s.close_dates().at(o, t)) close[o] = *c;
              if (auto w = s.owners().at(o, t)) owner[o] = static_cast<std::int32_t>(*w);
            }
            py::dict d;
            d["stage"] = owned(std::move(stage));
            d["entry"] = owned(std::move(entry));
            d["amount"] = owned(std::move(amount));
            d["close_date"] = owned(std::move(close));
            d["owner"] = owned(std::move(owner));
            return d;
          },
          py::arg("time"), "Every opportunity's state at `time` (columns by dense index).")
      .def(
          "owners_at",
          [](const event_log& s, carray<std::int64_t> opportunity, time_point t) {
            auto o = span_of(opportunity);
            std::vector<std::int32_t> out(o.size(), missing_code);
            for (std::size_t i = 0; i < o.size(); ++i) {
              if (o[i] < 0 || static_cast<std::size_t>(o[i]) >= s.n_opportunities())
                throw py::index_error("opportunity index out of range");
              if (auto w = s.owners().at(static_cast<std::size_t>(o[i]), t))
                out[i] = static_cast<std::int32_t>(*w);
            }
            return owned(std::move(out));
          },
          py::arg("opportunity"), py::arg("time"), "Owner codes in force at `time` (-1 when none).")
      .def_property_readonly("report", [](const event_log& s) { return report_dict(s.report()); })
      .def_property_readonly("memory_bytes", &event_log::memory_bytes)
      .def_property_readonly("event_bytes", &event_log::event_bytes)
      .def_property_readonly("opportunity_bytes", &event_log::opportunity_bytes)
      .def("__eq__", [](const event_log& a, const event_log& b) { return a == b; });
}

} // namespace smartfunnel::bindings
