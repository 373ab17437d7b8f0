#pragma once
/// \file serialization/event_log.hpp
/// Boost.Serialization of smartfunnel::event_log (non-intrusive, through the friend
/// detail::serialization_access). Class version 1, in order: the funnel; the id kind and the ids;
/// offsets, times, stages and created times; first and last time; the amount, owner and close-date
/// histories (offsets, times, values each); the owner dictionary; the attributes (name, values,
/// codes); the data-quality report (counts, then rejected rows).
///
/// A loaded log is checked against every invariant ingestion guarantees (offsets monotone from 0
/// to n_events, codes in range, times sorted within an opportunity, ids unique...) before it is
/// returned, so a crafted payload cannot cause out-of-range reads later; violations throw
/// corrupt_archive.

#include "smartfunnel/event_log.hpp"
#include "smartfunnel/serialization/detail.hpp"
#include "smartfunnel/serialization/funnel.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace smartfunnel::detail {

template <class Archive, class T>
void save_history(Archive& ar, const field_history<T>& h, const char* offsets, const char* times,
                  const char* values) {
  save_vector(ar, offsets, h.offset);
  save_vector(ar, times, h.time);
  save_vector(ar, values, h.value);
}

template <class Archive, class T>
void load_history(Archive& ar, field_history<T>& h, const char* offsets, const char* times,
                  const char* values) {
  load_vector(ar, offsets, h.offset);
  load_vector(ar, times, h.time);
  load_vector(ar, values, h.value);
}

/// A dictionary travels as its names in code order; loading interns them again.
template <class Archive>
void save_dictionary(Archive& ar, const char* name, const dictionary& d) {
  save_vector(ar, name, std::vector<std::string>(d.names().begin(), d.names().end()));
}

template <class Archive>
void load_dictionary(Archive& ar, const char* name, dictionary& d) {
  std::vector<std::string> names;
  load_vector(ar, name, names);
  d = dictionary();
  for (const auto& n : names) d.intern(n);
  if (d.size() != names.size()) throw_corrupt(std::string("corrupt archive: ") + name + " repeats a name");
}

template <class Archive>
void serialization_access::save(Archive& ar, const event_log& log, unsigned /*version*/) {
  using boost::serialization::make_nvp;
  ar << make_nvp("funnel", log.funnel_);
  save_flag(ar, "string_ids", log.string_ids_);
  save_vector(ar, "int_ids", log.int_ids_);
  save_vector(ar, "string_id_values", log.str_ids_);
  save_vector(ar, "offsets", log.offset_);
  save_vector(ar, "times", log.time_);
  save_vector(ar, "stages", log.stage_);
  save_vector(ar, "created", log.created_);
  ar << make_nvp("first_time", log.first_time_);
  ar << make_nvp("last_time", log.last_time_);
  save_history(ar, log.amount_, "amount_offsets", "amount_times", "amount_values");
  save_history(ar, log.owner_, "owner_offsets", "owner_times", "owner_values");
  save_history(ar, log.close_, "close_date_offsets", "close_date_times", "close_date_values");
  save_dictionary(ar, "owner_names", log.owner_names_);
  save_count(ar, "attributes", log.attributes_.size());
  for (const auto& a : log.attributes_) {
    save_string(ar, "attribute_name", a.name);
    save_dictionary(ar, "attribute_values", a.values);
    save_vector(ar, "attribute_codes", a.code);
  }
  const auto& r = log.report_;
  const std::uint64_t rows_read = r.rows_read, rows_kept = r.rows_kept,
                      duplicates_collapsed = r.duplicates_collapsed, reopened = r.reopened;
  ar << make_nvp("rows_read", rows_read);
  ar << make_nvp("rows_kept", rows_kept);
  ar << make_nvp("duplicates_collapsed", duplicates_collapsed);
  ar << make_nvp("reopened", reopened);
  save_count(ar, "rejected", r.rejected.size());
  for (const auto& row : r.rejected) {
    ar << make_nvp("row", row.row);
    save_string(ar, "column", row.column);
    save_string(ar, "reason", row.reason);
  }
}

template <class Archive>
void serialization_access::load(Archive& ar, event_log& log, unsigned version) {
  using boost::serialization::make_nvp;
  check_class_version("event_log", version, 1);
  ar >> make_nvp("funnel", log.funnel_);
  log.string_ids_ = load_flag(ar, "string_ids");
  load_vector(ar, "int_ids", log.int_ids_);
  load_vector(ar, "string_id_values", log.str_ids_);
  load_vector(ar, "offsets", log.offset_);
  load_vector(ar, "times", log.time_);
  load_vector(ar, "stages", log.stage_);
  load_vector(ar, "created", log.created_);
  ar >> make_nvp("first_time", log.first_time_);
  ar >> make_nvp("last_time", log.last_time_);
  load_history(ar, log.amount_, "amount_offsets", "amount_times", "amount_values");
  load_history(ar, log.owner_, "owner_offsets", "owner_times", "owner_values");
  load_history(ar, log.close_, "close_date_offsets", "close_date_times", "close_date_values");
  load_dictionary(ar, "owner_names", log.owner_names_);
  // An attribute takes at least three counts (name, values, codes).
  const std::size_t n_attributes = load_count(ar, "attributes", 3 * sizeof(std::uint64_t));
  log.attributes_.clear();
  for (std::size_t i = 0; i < n_attributes; ++i) {
    auto& a = log.attributes_.emplace_back();
    load_string(ar, "attribute_name", a.name);
    load_dictionary(ar, "attribute_values", a.values);
    load_vector(ar, "attribute_codes", a.code);
  }
  auto& r = log.report_;
  std::uint64_t rows_read = 0, rows_kept = 0, duplicates_collapsed = 0, reopened = 0;
  ar >> make_nvp("rows_read", rows_read);
  ar >> make_nvp("rows_kept", rows_kept);
  ar >> make_nvp("duplicates_collapsed", duplicates_collapsed);
  ar >> make_nvp("reopened", reopened);
  r.rows_read = to_size(rows_read, "rows_read");
  r.rows_kept = to_size(rows_kept, "rows_kept");
  r.duplicates_collapsed = to_size(duplicates_collapsed, "duplicates_collapsed");
  r.reopened = to_size(reopened, "reopened");
  // A rejected row takes at least its row number and two string lengths.
  const std::size_t n_rejected = load_count(ar, "rejected", 3 * sizeof(std::uint64_t));
  r.rejected.clear();
  for (std::size_t i = 0; i < n_rejected; ++i) {
    auto& row = r.rejected.emplace_back();
    ar >> make_nvp("row", row.row);
    load_string(ar, "column", row.column);
    load_string(ar, "reason", row.reason);
  }
  validate(log);
}

} // namespace smartfunnel::detail

namespace boost::serialization {

template <class Archive>
void serialize(Archive& ar, smartfunnel::event_log& log, const unsigned int version) {
  if constexpr (Archive::is_saving::value)
    smartfunnel::detail::serialization_access::save(ar, log, version);
  else
    smartfunnel::detail::serialization_access::load(ar, log, version);
}

} // namespace boost::serialization

BOOST_CLASS_VERSION(smartfunnel::event_log, 1)
BOOST_CLASS_TRACKING(smartfunnel::event_log, boost::serialization::track_never)
