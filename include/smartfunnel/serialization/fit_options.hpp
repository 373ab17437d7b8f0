#pragma once
/// \file serialization/fit_options.hpp
/// Boost.Serialization of smartfunnel::fit_options (non-intrusive). Class version 1: every field
/// in declaration order (optionals as a flag and a value). Loading does not call validate(): the
/// options come back exactly as saved, valid or not.

#include "smartfunnel/fit_options.hpp"
#include "smartfunnel/serialization/detail.hpp"

#include <cstdint>

namespace boost::serialization {

template <class Archive>
void save(Archive& ar, const smartfunnel::fit_options& o, const unsigned int /*version*/) {
  namespace d = smartfunnel::detail;
  auto u64 = [](std::size_t x) { return static_cast<std::uint64_t>(x); };
  const std::int64_t as_of = o.as_of.value_or(0);
  d::save_flag(ar, "has_as_of", o.as_of.has_value());
  ar << make_nvp("as_of", as_of);
  ar << make_nvp("tick_seconds", o.tick_seconds);
  d::save_double(ar, "prior", o.prior);
  d::save_flag(ar, "has_half_life", o.half_life_seconds.has_value());
  d::save_double(ar, "half_life_seconds", o.half_life_seconds.value_or(0.0));
  d::save_vector(ar, "groups", o.groups);
  const std::uint64_t min_exits = u64(o.min_exits), draws = u64(o.draws),
                      min_groups_for_eb = u64(o.min_groups_for_eb), min_at_risk = u64(o.min_at_risk);
  ar << make_nvp("min_exits", min_exits);
  d::save_double(ar, "unresolved_threshold", o.unresolved_threshold);
  d::save_double(ar, "level", o.level);
  ar << make_nvp("seed", o.seed);
  ar << make_nvp("draws", draws);
  d::save_double(ar, "min_concentration", o.min_concentration);
  d::save_double(ar, "max_concentration", o.max_concentration);
  ar << make_nvp("min_groups_for_eb", min_groups_for_eb);
  d::save_double(ar, "fallback_concentration", o.fallback_concentration);
  ar << make_nvp("min_at_risk", min_at_risk);
}

template <class Archive>
void load(Archive& ar, smartfunnel::fit_options& o, const unsigned int version) {
  namespace d = smartfunnel::detail;
  d::check_class_version("fit_options", version, 1);
  std::int64_t as_of = 0;
  std::uint64_t min_exits = 0, draws = 0, min_groups_for_eb = 0, min_at_risk = 0;
  const bool has_as_of = d::load_flag(ar, "has_as_of");
  ar >> make_nvp("as_of", as_of);
  o.as_of = has_as_of ? std::optional<std::int64_t>(as_of) : std::nullopt;
  ar >> make_nvp("tick_seconds", o.tick_seconds);
  o.prior = d::load_double(ar, "prior");
  const bool has_half_life = d::load_flag(ar, "has_half_life");
  const double half_life = d::load_double(ar, "half_life_seconds");
  o.half_life_seconds = has_half_life ? std::optional<double>(half_life) : std::nullopt;
  d::load_vector(ar, "groups", o.groups);
  ar >> make_nvp("min_exits", min_exits);
  o.min_exits = d::to_size(min_exits, "min_exits");
  o.unresolved_threshold = d::load_double(ar, "unresolved_threshold");
  o.level = d::load_double(ar, "level");
  ar >> make_nvp("seed", o.seed);
  ar >> make_nvp("draws", draws);
  o.draws = d::to_size(draws, "draws");
  o.min_concentration = d::load_double(ar, "min_concentration");
  o.max_concentration = d::load_double(ar, "max_concentration");
  ar >> make_nvp("min_groups_for_eb", min_groups_for_eb);
  o.min_groups_for_eb = d::to_size(min_groups_for_eb, "min_groups_for_eb");
  o.fallback_concentration = d::load_double(ar, "fallback_concentration");
  ar >> make_nvp("min_at_risk", min_at_risk);
  o.min_at_risk = d::to_size(min_at_risk, "min_at_risk");
}

template <class Archive>
void serialize(Archive& ar, smartfunnel::fit_options& o, const unsigned int version) {
  split_free(ar, o, version);
}

} // namespace boost::serialization

BOOST_CLASS_VERSION(smartfunnel::fit_options, 1)
BOOST_CLASS_TRACKING(smartfunnel::fit_options, boost::serialization::track_never)
