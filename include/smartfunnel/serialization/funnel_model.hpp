#pragma once
/// \file serialization/funnel_model.hpp
/// Boost.Serialization of smartfunnel::funnel_model (non-intrusive). Class version 1: the model's
/// fit_statistics only. Every estimate is a deterministic function of them, so loading rebuilds
/// the model with funnel_model::from_statistics and gets an equal model back, at the cost of the
/// derivation (estimates, chain, posterior draws: what fit() spends after its pass over the log).

#include "smartfunnel/funnel_model.hpp"
#include "smartfunnel/serialization/detail.hpp"
#include "smartfunnel/serialization/fit_statistics.hpp"

#include <string>

namespace boost::serialization {

template <class Archive>
void save(Archive& ar, const smartfunnel::funnel_model& m, const unsigned int /*version*/) {
  ar << make_nvp("statistics", m.statistics());
}

template <class Archive>
void load(Archive& ar, smartfunnel::funnel_model& m, const unsigned int version) {
  namespace d = smartfunnel::detail;
  d::check_class_version("funnel_model", version, 1);
  auto stats = d::serialization_access::placeholder_statistics();
  ar >> make_nvp("statistics", stats);
  m = d::rebuild_model(std::move(stats));
}

template <class Archive>
void serialize(Archive& ar, smartfunnel::funnel_model& m, const unsigned int version) {
  split_free(ar, m, version);
}

} // namespace boost::serialization

BOOST_CLASS_VERSION(smartfunnel::funnel_model, 1)
BOOST_CLASS_TRACKING(smartfunnel::funnel_model, boost::serialization::track_never)
