#pragma once
/// \file error.hpp
/// Every exception smartfunnel throws. All derive from the std hierarchy so callers that only know
/// the standard library still catch them; the Python bindings register each under its own name.

#include <cstdint>
#include <stdexcept>
#include <string>

namespace smartfunnel {

/// A funnel definition that violates its invariants (no open stage, duplicate or empty names...).
class invalid_funnel : public std::invalid_argument {
public:
  using std::invalid_argument::invalid_argument;
};

/// Options that are out of range or inconsistent (negative prior, zero tick...).
class invalid_options : public std::invalid_argument {
public:
  using std::invalid_argument::invalid_argument;
};

/// A row of input data that cannot be accepted. Carries the 0-based input row (or -1) and column.
class data_error : public std::invalid_argument {
public:
  data_error(std::int64_t row, std::string column, const std::string& what)
      : std::invalid_argument(what), row_(row), column_(std::move(column)) {}
  /// 0-based row of the input columns, or -1 when the problem is not tied to one row.
  [[nodiscard]] std::int64_t row() const noexcept { return row_; }
  /// The input column the problem was found in ("stage", "time", "amount"...).
  [[nodiscard]] const std::string& column() const noexcept { return column_; }

private:
  std::int64_t row_;
  std::string column_;
};

/// A stage name that the funnel does not know.
class unknown_stage : public data_error {
public:
  using data_error::data_error;
};

/// An opportunity id that the log does not know.
class unknown_opportunity : public std::out_of_range {
public:
  using std::out_of_range::out_of_range;
};

/// The absorbing chain has a set of open stages that can never reach Won or Lost, so (I - Q) is
/// singular and win probabilities are undefined.
class singular_chain : public std::domain_error {
public:
  using std::domain_error::domain_error;
};

/// Two partial fits that cannot be merged (different funnels, options, tick or as_of).
class incompatible_merge : public std::invalid_argument {
public:
  using std::invalid_argument::invalid_argument;
};

/// A long computation stopped because its progress callback asked it to.
class cancelled : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// An archive that cannot be loaded (or an object that cannot be saved): the base of every
/// persistence error. Failures of the file system itself (a missing file, a full disk) are
/// std::filesystem::filesystem_error instead.
class archive_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// The archive holds another type of object than the one asked for.
class wrong_archive_type : public archive_error {
public:
  using archive_error::archive_error;
};

/// The archive was written by a newer smartfunnel (envelope, format or class version).
class newer_archive_format : public archive_error {
public:
  using archive_error::archive_error;
};

/// The archive is damaged: not a smartfunnel archive, truncated, failing its checksum, or holding
/// values that break the object's invariants.
class corrupt_archive : public archive_error {
public:
  using archive_error::archive_error;
};

} // namespace smartfunnel
