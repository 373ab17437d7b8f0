#include "pybind11.hpp"

#include <pybind11/stl/filesystem.h>

#include <smartfunnel/error.hpp>
#include <smartfunnel/serialization.hpp>

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <variant>

namespace smartfunnel::bindings {

namespace {

using log_ptr = std::shared_ptr<event_log>;
using model_ptr = std::shared_ptr<funnel_model>;

// The Python object of a loaded C++ object (the classes registered by the other register_*.cpp).
py::object to_python(persistent_object&& object) {
  return std::visit(
      [](auto&& o) -> py::object {
        using T = std::decay_t<decltype(o)>;
        if constexpr (std::is_same_v<T, event_log>)
          return py::cast(std::make_shared<event_log>(std::move(o)));
        else if constexpr (std::is_same_v<T, funnel_model>)
          return py::cast(std::make_shared<funnel_model>(std::move(o)));
        else if constexpr (std::is_same_v<T, fit_statistics>)
          return py::cast(std::make_shared<fit_statistics>(std::move(o)));
        else
          return py::cast(std::move(o));
      },
      std::move(object));
}

template <class T>
py::bytes dumps(const T& object, const std::string& format) {
  const auto f = parse_archive_format(format);
  std::string out;
  {
    py::gil_scoped_release release;
    out = save_to_string(object, f);
  }
  return py::bytes(out);
}

template <class T>
void save_file(const T& object, const std::filesystem::path& path, const std::string& format,
               const std::string& metadata) {
  const auto f = parse_archive_format(format);
  try {
    py::gil_scoped_release release;
    save(object, path, f, metadata);
  } catch (const save_target_error& e) {
    // OSError(errno, reason, filename): the subclass from errno (IsADirectoryError,
    // PermissionError...), the reason in a sentence naming the target.
    const int code = e.code().category() == std::generic_category() ? e.code().value() : 0;
    py::object exc = py::reinterpret_steal<py::object>(
        PyObject_CallFunction(PyExc_OSError, "iss", code, e.reason().c_str(), path.string().c_str()));
    if (!exc) throw py::error_already_set();
    PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc.ptr())), exc.ptr());
    throw py::error_already_set();
  }
}

// Python holds every name as str: a loaded object whose strings are not UTF-8 is a corrupt archive
// (check_utf8 names the field), never a UnicodeDecodeError later.
py::object loads(const py::bytes& data) {
  const std::string_view bytes = data; // bytes are immutable: safe to read without the GIL
  auto object = [&] {
    py::gil_scoped_release release;
    auto o = load_any_from_string(bytes);
    check_utf8(o);
    return o;
  }();
  return to_python(std::move(object));
}

// Metadata is the caller's note, any bytes: str when it is UTF-8 text (always, from Python), else
// bytes.
py::object metadata_object(const std::string& metadata) {
  PyObject* text = PyUnicode_DecodeUTF8(metadata.data(), static_cast<Py_ssize_t>(metadata.size()), "strict");
  if (text != nullptr) return py::reinterpret_steal<py::object>(text);
  PyErr_Clear();
  return py::bytes(metadata);
}

py::dict info_dict(const archive_info& info) {
  py::dict d;
  d["type"] = std::string(to_string(info.type));
  d["format"] = std::string(to_string(info.format));
  d["format_version"] = info.format_version;
  d["payload_bytes"] = info.payload_bytes;
  d["metadata"] = metadata_object(info.metadata);
  return d;
}

// Pickling through the binary archive: __getstate__ gives its bytes, __setstate__ loads them.
template <class T, class Holder, class Make>
void add_pickle_and_save(py::module_& m, const char* name, Make make) {
  auto cls = py::reinterpret_borrow<py::class_<T, Holder>>(m.attr(name));
  cls.def(py::pickle([](const T& self) { return dumps(self, "binary"); },
                     [make](const py::bytes& state) {
                       T object = [&] {
                         const std::string_view bytes = state;
                         py::gil_scoped_release release;
                         T loaded = load_from_string<T>(bytes);
                         check_utf8(loaded);
                         return loaded;
                       }();
                       return make(std::move(object));
                     }));
  cls.def(
      "save",
      [](const T& self, const std::filesystem::path& path, const std::string& format,
         const std::string& metadata) { save_file(self, path, format, metadata); },
      py::arg("path"), py::arg("format") = "binary", py::arg("metadata") = "",
      "Save atomically to a file (format 'binary', 'text' or 'xml'); smartfunnel.load reads it back.");
}

} // namespace

void register_serialization(py::module_& m) {
  const auto same = [](auto&& o) { return std::move(o); };
  add_pickle_and_save<funnel, std::unique_ptr<funnel>>(m, "Funnel", same);
  add_pickle_and_save<fit_options, std::unique_ptr<fit_options>>(m, "FitOptions", same);
  add_pickle_and_save<event_log, log_ptr>(
      m, "EventLog", [](event_log&& o) { return std::make_shared<event_log>(std::move(o)); });
  add_pickle_and_save<funnel_model, model_ptr>(
      m, "FunnelModel", [](funnel_model&& o) { return std::make_shared<funnel_model>(std::move(o)); });
  add_pickle_and_save<fit_statistics, std::shared_ptr<fit_statistics>>(
      m, "FitStatistics", [](fit_statistics&& o) { return std::make_shared<fit_statistics>(std::move(o)); });

  const char* dumps_doc =
      "The archive of an object as bytes (envelope included): format 'binary', 'text' or 'xml'.";
  m.def("dumps", &dumps<funnel>, py::arg("obj"), py::arg("format") = "binary", dumps_doc);
  m.def("dumps", &dumps<event_log>, py::arg("obj"), py::arg("format") = "binary", dumps_doc);
  m.def("dumps", &dumps<fit_options>, py::arg("obj"), py::arg("format") = "binary", dumps_doc);
  m.def("dumps", &dumps<funnel_model>, py::arg("obj"), py::arg("format") = "binary", dumps_doc);
  m.def("dumps", &dumps<fit_statistics>, py::arg("obj"), py::arg("format") = "binary", dumps_doc);
  m.def("loads", &loads, py::arg("data"),
        "The object in bytes written by dumps (its type comes from the archive).");
  m.def(
      "load",
      [](const std::filesystem::path& path) {
        archive_info info;
        auto object = [&] {
          py::gil_scoped_release release;
          auto o = load_any(path, &info);
          check_utf8(o);
          return o;
        }();
        return py::make_tuple(to_python(std::move(object)), py::bytes(info.metadata));
      },
      py::arg("path"), "Load the object a file holds: (object, metadata as bytes).");
  m.def(
      "archive_info",
      [](const std::filesystem::path& path) {
        archive_info info;
        {
          py::gil_scoped_release release;
          info = read_archive_info(path);
        }
        return info_dict(info);
      },
      py::arg("path"),
      "The checked envelope of an archive file: type, format, format_version, payload_bytes, metadata\n"
      "(str, or bytes when a C++ caller's note is not UTF-8 text).");
}

} // namespace smartfunnel::bindings
