#pragma once
/// \file funnel.hpp
/// The funnel: ordered open stages plus the terminal outcomes Won and Lost.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace smartfunnel {

/// Dense code of a stage or terminal name within one funnel.
using stage_code = std::uint16_t;

/// An ordered list of open stages and the terminal names that mean Won or Lost.
///
/// Codes are dense: open stages take 0..n_open()-1 in funnel order, then the won names, then the
/// lost names. Several terminal names per outcome are allowed ("Closed Lost", "Disqualified"); the
/// name is kept as the reason while aggregated views use the outcome.
///
/// Invariants: at least one open stage, one won and one lost name; every name non-empty and unique
/// across open and terminal names; at most 4096 names in all.
class funnel {
public:
  /// Builds and validates a funnel; throws invalid_funnel naming the offending name.
  funnel(std::vector<std::string> open_stages, std::vector<std::string> won, std::vector<std::string> lost,
         std::string name = "default", std::vector<std::string> exit_criteria = {});

  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] std::size_t n_open() const noexcept { return n_open_; }
  [[nodiscard]] std::size_t n_won() const noexcept { return n_won_; }
  [[nodiscard]] std::size_t n_lost() const noexcept { return names_.size() - n_open_ - n_won_; }
  /// Number of codes: open stages plus all terminal names.
  [[nodiscard]] std::size_t n_codes() const noexcept { return names_.size(); }

  /// Every name by code.
  [[nodiscard]] std::span<const std::string> names() const noexcept { return names_; }
  [[nodiscard]] std::span<const std::string> open_stages() const noexcept { return {names_.data(), n_open_}; }
  [[nodiscard]] std::span<const std::string> won_names() const noexcept {
    return {names_.data() + n_open_, n_won_};
  }
  [[nodiscard]] std::span<const std::string> lost_names() const noexcept {
    return {names_.data() + n_open_ + n_won_, n_lost()};
  }
  [[nodiscard]] const std::string& name_of(stage_code code) const { return names_.at(code); }
  /// Exit criterion of an open stage ("" when none was given).
  [[nodiscard]] const std::string& exit_criterion(stage_code stage) const { return exit_criteria_.at(stage); }

  /// The code of a name, or nothing.
  [[nodiscard]] std::optional<stage_code> find(std::string_view name) const noexcept;
  /// The code of a name; throws unknown_stage naming the funnel.
  [[nodiscard]] stage_code code_of(std::string_view name) const;

  [[nodiscard]] bool is_open(stage_code c) const noexcept { return c < n_open_; }
  [[nodiscard]] bool is_won(stage_code c) const noexcept { return c >= n_open_ && c < n_open_ + n_won_; }
  [[nodiscard]] bool is_lost(stage_code c) const noexcept {
    return c >= n_open_ + n_won_ && c < names_.size();
  }
  [[nodiscard]] bool is_terminal(stage_code c) const noexcept { return c >= n_open_ && c < names_.size(); }

  /// Aggregated destination of a code: the open stage itself, n_open() for Won, n_open()+1 for Lost.
  [[nodiscard]] std::size_t outcome_column(stage_code c) const noexcept {
    return is_open(c) ? c : (is_won(c) ? n_open_ : n_open_ + 1);
  }

  friend bool operator==(const funnel&, const funnel&) = default;

private:
  std::string name_;
  std::vector<std::string> names_;
  std::vector<std::string> exit_criteria_;
  std::size_t n_open_ = 0;
  std::size_t n_won_ = 0;
};

} // namespace smartfunnel
