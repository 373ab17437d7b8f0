#include "pybind11.hpp"

#include <smartfunnel/error.hpp>

#include <filesystem>

namespace smartfunnel::bindings {

namespace {
PyObject* make_type(py::module_& m, const char* name, PyObject* base, const char* doc) {
  const std::string qualified = std::string("smartfunnel.") + name;
  PyObject* t = PyErr_NewExceptionWithDoc(qualified.c_str(), doc, base, nullptr);
  if (!t) throw py::error_already_set();
  m.add_object(name, py::handle(t));
  return t;
}

void raise_data_error(PyObject* type, const data_error& e) {
  py::object exc = py::reinterpret_steal<py::object>(PyObject_CallFunction(type, "s", e.what()));
  if (!exc) return; // the call set its own error
  exc.attr("row") = e.row() >= 0 ? py::object(py::int_(e.row())) : py::object(py::none());
  exc.attr("column") = py::str(e.column());
  PyErr_SetObject(type, exc.ptr());
}
} // namespace

void register_errors(py::module_& m) {
  static PyObject* invalid_funnel_t =
      make_type(m, "InvalidFunnelError", PyExc_ValueError, "The funnel definition is invalid.");
  static PyObject* invalid_options_t =
      make_type(m, "InvalidOptionsError", PyExc_ValueError, "An option is out of range.");
  static PyObject* data_error_t =
      make_type(m, "DataError", PyExc_ValueError,
                "A row of input data cannot be accepted; .row (0-based) and .column say where.");
  static PyObject* unknown_stage_t =
      make_type(m, "UnknownStageError", data_error_t, "A stage name the funnel does not know.");
  static PyObject* unknown_opp_t =
      make_type(m, "UnknownOpportunityError", PyExc_KeyError, "An opportunity id the log does not know.");
  static PyObject* singular_t =
      make_type(m, "SingularChainError", PyExc_RuntimeError,
                "Some open stages never reach Won or Lost, so win probabilities are undefined.");
  static PyObject* merge_t = make_type(m, "IncompatibleMergeError", PyExc_ValueError,
                                       "Partial fits with different funnels or options cannot be merged.");
  static PyObject* cancelled_t =
      make_type(m, "CancelledError", PyExc_RuntimeError,
                "A long computation stopped because its progress callback asked it to.");
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const unknown_stage& e) {
      raise_data_error(unknown_stage_t, e);
    } catch (const data_error& e) {
      raise_data_error(data_error_t, e);
    } catch (const invalid_funnel& e) {
      PyErr_SetString(invalid_funnel_t, e.what());
    } catch (const invalid_options& e) {
      PyErr_SetString(invalid_options_t, e.what());
    } catch (const unknown_opportunity& e) {
      PyErr_SetString(unknown_opp_t, e.what());
    } catch (const singular_chain& e) {
      PyErr_SetString(singular_t, e.what());
    } catch (const cancelled& e) {
      PyErr_SetString(cancelled_t, e.what());
    } catch (const incompatible_merge& e) {
      PyErr_SetString(merge_t, e.what());
    }
  });

  // Persistence: archive errors under their own names; file-system errors as OSError (so a missing
  // file is a FileNotFoundError).
  static PyObject* archive_t = make_type(m, "ArchiveError", PyExc_ValueError,
                                         "An archive cannot be loaded or an object cannot be saved.");
  static PyObject* wrong_type_t =
      make_type(m, "WrongArchiveTypeError", archive_t,
                "The archive holds another type of object than the one asked for.");
  static PyObject* newer_t =
      make_type(m, "NewerArchiveFormatError", archive_t, "The archive was written by a newer smartfunnel.");
  static PyObject* corrupt_t =
      make_type(m, "CorruptArchiveError", archive_t,
                "The archive is not a smartfunnel archive, is truncated or damaged.");
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const wrong_archive_type& e) {
      PyErr_SetString(wrong_type_t, e.what());
    } catch (const newer_archive_format& e) {
      PyErr_SetString(newer_t, e.what());
    } catch (const corrupt_archive& e) {
      PyErr_SetString(corrupt_t, e.what());
    } catch (const archive_error& e) {
      PyErr_SetString(archive_t, e.what());
    } catch (const std::filesystem::filesystem_error& e) {
      const int code = e.code().category() == std::generic_category() ? e.code().value() : 0;
      // OSError(errno, strerror, filename) picks the subclass (FileNotFoundError...) from errno.
      py::object exc = py::reinterpret_steal<py::object>(PyObject_CallFunction(
          PyExc_OSError, "iss", code, e.code().message().c_str(), e.path1().string().c_str()));
      if (exc) PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc.ptr())), exc.ptr());
    }
  });
}

} // namespace smartfunnel::bindings
