#pragma once
// Included first by every binding file: one place for pybind11 headers and shared helpers.

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstddef>
#include <span>
#include <vector>

namespace py = pybind11;

namespace smartfunnel::bindings {

/// A read-only 1-d numpy array that views `data` and keeps `owner` alive.
template <class T>
py::array_t<T> view(std::span<const T> data, py::handle owner) {
  py::array_t<T> a({static_cast<py::ssize_t>(data.size())}, {static_cast<py::ssize_t>(sizeof(T))},
                   data.data(), owner);
  py::detail::array_proxy(a.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
  return a;
}

/// A new numpy array owning a copy of `v` (moved into a capsule, no element copy).
template <class T>
py::array_t<T> owned(std::vector<T>&& v) {
  auto* heap = new std::vector<T>(std::move(v));
  py::capsule free_when_done(heap, [](void* p) { delete static_cast<std::vector<T>*>(p); });
  return py::array_t<T>({static_cast<py::ssize_t>(heap->size())}, {static_cast<py::ssize_t>(sizeof(T))},
                        heap->data(), free_when_done);
}

/// A 2-d owning array (row-major) of shape (rows, cols).
template <class T>
py::array_t<T> owned2d(std::vector<T>&& v, std::size_t rows, std::size_t cols) {
  auto* heap = new std::vector<T>(std::move(v));
  py::capsule free_when_done(heap, [](void* p) { delete static_cast<std::vector<T>*>(p); });
  return py::array_t<T>({static_cast<py::ssize_t>(rows), static_cast<py::ssize_t>(cols)},
                        {static_cast<py::ssize_t>(cols * sizeof(T)), static_cast<py::ssize_t>(sizeof(T))},
                        heap->data(), free_when_done);
}

template <class T>
using carray = py::array_t<T, py::array::c_style | py::array::forcecast>;

/// A span over a contiguous 1-d numpy array (no copy when the dtype already matches).
template <class T>
std::span<const T> span_of(const carray<T>& a) {
  if (a.ndim() != 1) throw std::invalid_argument("expected a 1-d array");
  return {a.data(), static_cast<std::size_t>(a.shape(0))};
}

void register_errors(py::module_& m);
void register_funnel(py::module_& m);
void register_event_log(py::module_& m);
void register_model(py::module_& m);
void register_simulate(py::module_& m);
void register_forecast(py::module_& m);
void register_coaching(py::module_& m);
void register_backtest(py::module_& m);
void register_serialization(py::module_& m);

} // namespace smartfunnel::bindings
