#include "smartfunnel/funnel.hpp"

#include "smartfunnel/error.hpp"

#include <algorithm>
#include <unordered_set>

namespace smartfunnel {

funnel::funnel(std::vector<std::string> open_stages, std::vector<std::string> won,
               std::vector<std::string> lost, std::string name, std::vector<std::string> exit_criteria)
    : name_(std::move(name)), n_open_(open_stages.size()), n_won_(won.size()) {
  if (open_stages.empty())
    throw invalid_funnel("funnel '" + name_ + "': at least one open stage is required, got none");
  if (won.empty()) throw invalid_funnel("funnel '" + name_ + "': at least one won name is required");
  if (lost.empty()) throw invalid_funnel("funnel '" + name_ + "': at least one lost name is required");
  if (!exit_criteria.empty() && exit_criteria.size() != open_stages.size())
    throw invalid_funnel("funnel '" + name_ + "': exit_criteria must have one entry per open stage (" +
                         std::to_string(open_stages.size()) + "), got " +
                         std::to_string(exit_criteria.size()));
  names_.reserve(open_stages.size() + won.size() + lost.size());
  for (auto* part : {&open_stages, &won, &lost})
    for (auto& n : *part) names_.push_back(std::move(n));
  if (names_.size() > 4096)
    throw invalid_funnel("funnel '" + name_ + "': at most 4096 stage and terminal names, got " +
                         std::to_string(names_.size()));
  std::unordered_set<std::string_view> seen;
  for (std::size_t i = 0; i < names_.size(); ++i) {
    const auto& n = names_[i];
    const char* role = i < n_open_ ? "open stage" : (i < n_open_ + n_won_ ? "won name" : "lost name");
    if (n.empty())
      throw invalid_funnel("funnel '" + name_ + "': " + role + " at position " + std::to_string(i) +
                           " is empty; names must be non-empty");
    if (!seen.insert(n).second)
      throw invalid_funnel("funnel '" + name_ + "': name '" + n +
                           "' appears more than once; open stages and terminal names must be unique");
  }
  exit_criteria_ = exit_criteria.empty() ? std::vector<std::string>(n_open_) : std::move(exit_criteria);
}

std::optional<stage_code> funnel::find(std::string_view name) const noexcept {
  auto it = std::find(names_.begin(), names_.end(), name);
  if (it == names_.end()) return std::nullopt;
  return static_cast<stage_code>(it - names_.begin());
}

stage_code funnel::code_of(std::string_view name) const {
  if (auto c = find(name)) return *c;
  throw unknown_stage(-1, "stage", "stage '" + std::string(name) + "' is not in funnel '" + name_ + "'");
}

} // namespace smartfunnel
