// load_any: the object type comes from the envelope.
#include "archive.hpp"

// The archives of each type are compiled once, in that type's own file.
SMARTFUNNEL_EXTERN_SERIALIZATION(smartfunnel::funnel);
SMARTFUNNEL_EXTERN_SERIALIZATION(smartfunnel::event_log);
SMARTFUNNEL_EXTERN_SERIALIZATION(smartfunnel::fit_options);
SMARTFUNNEL_EXTERN_SERIALIZATION(smartfunnel::fit_statistics);
SMARTFUNNEL_EXTERN_SERIALIZATION(smartfunnel::funnel_model);

namespace smartfunnel {

persistent_object detail::load_payload(archive_type type, archive_format format, std::string_view payload) {
  switch (type) {
  case archive_type::funnel:
    return deserialize_payload<funnel>(payload, format);
  case archive_type::event_log:
    return deserialize_payload<event_log>(payload, format);
  case archive_type::fit_options:
    return deserialize_payload<fit_options>(payload, format);
  case archive_type::fit_statistics:
    return deserialize_payload<fit_statistics>(payload, format);
  case archive_type::funnel_model:
    return deserialize_payload<funnel_model>(payload, format);
  }
  throw newer_archive_format("the archive holds an object type this smartfunnel does not know");
}

namespace {

persistent_object load_object(const detail::envelope& env, archive_info* info) {
  auto object = detail::load_payload(env.info.type, env.info.format, env.payload());
  if (info != nullptr) *info = env.info;
  return object;
}

} // namespace

persistent_object load_any(const std::filesystem::path& path, archive_info* info) {
  return load_object(detail::read_envelope(path), info);
}

persistent_object load_any(std::istream& in, archive_info* info) {
  return load_object(detail::read_envelope(in), info);
}

persistent_object load_any_from_string(std::string_view bytes, archive_info* info) {
  return load_object(detail::read_envelope(bytes), info);
}

} // namespace smartfunnel
