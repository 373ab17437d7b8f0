#pragma once
/// \file unparsed.hpp
/// Rows the caller could not parse (event_columns::unparsed, activity_columns::unparsed), read in
/// row order as ingestion checks its rows.

#include "smartfunnel/error.hpp"
#include "smartfunnel/event_log.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <span>
#include <string>
#include <vector>

namespace smartfunnel::detail {

class unparsed_cursor {
public:
  /// Checks that every listed row is one of the `n` input rows.
  unparsed_cursor(std::span<const rejected_row> rows, std::size_t n) : rows_(rows), order_(rows.size()) {
    for (const auto& u : rows)
      if (u.row < 0 || static_cast<std::size_t>(u.row) >= n)
        throw data_error(-1, u.column,
                         "unparsed row " + std::to_string(u.row) + " (column '" + u.column +
                             "') is not one of the " + std::to_string(n) + " input rows");
    std::iota(order_.begin(), order_.end(), std::size_t{0});
    std::stable_sort(order_.begin(), order_.end(),
                     [&](std::size_t a, std::size_t b) { return rows_[a].row < rows_[b].row; });
  }
  [[nodiscard]] bool empty() const noexcept { return order_.empty(); }
  /// The first listing of `row`, or nullptr; rows must be asked for in increasing order.
  const rejected_row* at(std::size_t row) noexcept {
    while (next_ < order_.size() && static_cast<std::size_t>(rows_[order_[next_]].row) < row) ++next_;
    if (next_ < order_.size() && static_cast<std::size_t>(rows_[order_[next_]].row) == row)
      return &rows_[order_[next_]];
    return nullptr;
  }

private:
  std::span<const rejected_row> rows_;
  std::vector<std::size_t> order_;
  std::size_t next_ = 0;
};

} // namespace smartfunnel::detail
