#pragma once
/// \file serialization/fit_statistics.hpp
/// Boost.Serialization of smartfunnel::fit_statistics (non-intrusive). Class version 1: the funnel,
/// the options, the leaf cells (per key: the key's values, then per open stage the durations,
/// counts, weights and squared weights), the numbers of opportunities and stays. Loading checks
/// the shape every consumer of the statistics relies on (see detail::validate).

#include "smartfunnel/fit_statistics.hpp"
#include "smartfunnel/serialization/detail.hpp"
#include "smartfunnel/serialization/fit_options.hpp"
#include "smartfunnel/serialization/funnel.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace boost::serialization {

template <class Archive>
void save(Archive& ar, const smartfunnel::fit_statistics& s, const unsigned int /*version*/) {
  namespace d = smartfunnel::detail;
  ar << make_nvp("funnel", s.funnel);
  ar << make_nvp("options", s.options);
  d::save_count(ar, "groups", s.cells.size());
  for (const auto& [key, cells] : s.cells) {
    d::save_vector(ar, "key", key);
    d::save_count(ar, "cells", cells.size());
    for (const auto& c : cells) {
      d::save_vector(ar, "duration", c.duration);
      d::save_vector(ar, "count", c.count);
      d::save_vector(ar, "weight", c.weight);
      d::save_vector(ar, "weight_sq", c.weight_sq);
    }
  }
  const std::uint64_t n_opportunities = s.n_opportunities, n_stays = s.n_stays;
  ar << make_nvp("n_opportunities", n_opportunities);
  ar << make_nvp("n_stays", n_stays);
}

template <class Archive>
void load(Archive& ar, smartfunnel::fit_statistics& s, const unsigned int version) {
  namespace d = smartfunnel::detail;
  d::check_class_version("fit_statistics", version, 1);
  ar >> make_nvp("funnel", s.funnel);
  ar >> make_nvp("options", s.options);
  // A group takes at least two counts (its key and its cells), a cell four (its columns).
  const std::size_t n_groups = d::load_count(ar, "groups", 2 * sizeof(std::uint64_t));
  s.cells.clear();
  for (std::size_t g = 0; g < n_groups; ++g) {
    std::vector<std::string> key;
    d::load_vector(ar, "key", key);
    std::vector<smartfunnel::stage_counts> cells;
    const std::size_t n_cells = d::load_count(ar, "cells", 4 * sizeof(std::uint64_t));
    for (std::size_t i = 0; i < n_cells; ++i) {
      auto& c = cells.emplace_back();
      d::load_vector(ar, "duration", c.duration);
      d::load_vector(ar, "count", c.count);
      d::load_vector(ar, "weight", c.weight);
      d::load_vector(ar, "weight_sq", c.weight_sq);
    }
    if (!s.cells.emplace(std::move(key), std::move(cells)).second)
      d::throw_corrupt("corrupt archive: fit_statistics lists a group key twice");
  }
  std::uint64_t n_opportunities = 0, n_stays = 0;
  ar >> make_nvp("n_opportunities", n_opportunities);
  ar >> make_nvp("n_stays", n_stays);
  s.n_opportunities = d::to_size(n_opportunities, "n_opportunities");
  s.n_stays = d::to_size(n_stays, "n_stays");
  d::validate(s);
}

template <class Archive>
void serialize(Archive& ar, smartfunnel::fit_statistics& s, const unsigned int version) {
  split_free(ar, s, version);
}

} // namespace boost::serialization

BOOST_CLASS_VERSION(smartfunnel::fit_statistics, 1)
BOOST_CLASS_TRACKING(smartfunnel::fit_statistics, boost::serialization::track_never)
