#pragma once
/// \file absorbing_chain.hpp
/// The absorbing Markov chain of a funnel: open stages are transient, Won and Lost absorb.
/// Win probabilities B = (I - Q)^-1 R are solved exactly (LU), never simulated.

#include <cstddef>
#include <string>
#include <vector>

namespace smartfunnel {

struct chain_result {
  std::vector<double> win;            ///< P(eventually Won) from each open stage
  std::vector<double> visits;         ///< expected stage visits until closing, the current included
  std::vector<double> ticks_to_close; ///< expected ticks until Won or Lost
  std::vector<double> ticks_to_win;   ///< expected ticks until Won, given the deal is won
};

/// Solves the chain for n open stages.
/// \param p row-major n x (n + 2): transition probabilities to each open stage, then Won, Lost.
///          A row of NaN marks a stage without data; stages that can reach it get NaN results.
/// \param sojourn same shape: mean ticks in the stage given that destination (NaN where p is 0).
/// \param names stage names, for the error message.
/// \throws singular_chain when some open stages can never reach Won or Lost.
[[nodiscard]] chain_result solve_chain(std::size_t n, const std::vector<double>& p,
                                       const std::vector<double>& sojourn,
                                       const std::vector<std::string>& names);

} // namespace smartfunnel
