#pragma once
/// \file serialization/funnel.hpp
/// Boost.Serialization of smartfunnel::funnel (non-intrusive). Class version 1: name, open stage
/// names, won names, lost names, exit criteria. Loading rebuilds the funnel through its
/// constructor, so a loaded funnel satisfies every invariant a built one does.

#include "smartfunnel/funnel.hpp"
#include "smartfunnel/serialization/detail.hpp"

#include <string>
#include <vector>

namespace boost::serialization {

template <class Archive>
void save(Archive& ar, const smartfunnel::funnel& f, const unsigned int /*version*/) {
  namespace d = smartfunnel::detail;
  auto list = [](auto span) { return std::vector<std::string>(span.begin(), span.end()); };
  std::vector<std::string> exit_criteria;
  for (std::size_t s = 0; s < f.n_open(); ++s)
    exit_criteria.push_back(f.exit_criterion(static_cast<smartfunnel::stage_code>(s)));
  d::save_string(ar, "name", f.name());
  d::save_vector(ar, "open_stages", list(f.open_stages()));
  d::save_vector(ar, "won", list(f.won_names()));
  d::save_vector(ar, "lost", list(f.lost_names()));
  d::save_vector(ar, "exit_criteria", exit_criteria);
}

template <class Archive>
void load(Archive& ar, smartfunnel::funnel& f, const unsigned int version) {
  namespace d = smartfunnel::detail;
  d::check_class_version("funnel", version, 1);
  std::string name;
  std::vector<std::string> open, won, lost, exit_criteria;
  d::load_string(ar, "name", name);
  d::load_vector(ar, "open_stages", open);
  d::load_vector(ar, "won", won);
  d::load_vector(ar, "lost", lost);
  d::load_vector(ar, "exit_criteria", exit_criteria);
  try {
    f = smartfunnel::funnel(std::move(open), std::move(won), std::move(lost), std::move(name),
                            std::move(exit_criteria));
  } catch (const smartfunnel::invalid_funnel& e) {
    d::throw_corrupt(std::string("corrupt archive: ") + e.what());
  }
}

template <class Archive>
void serialize(Archive& ar, smartfunnel::funnel& f, const unsigned int version) {
  split_free(ar, f, version);
}

} // namespace boost::serialization

BOOST_CLASS_VERSION(smartfunnel::funnel, 1)
BOOST_CLASS_TRACKING(smartfunnel::funnel, boost::serialization::track_never)
