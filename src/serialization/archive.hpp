#pragma once
// The save/load driver shared by src/serialization/*.cpp: Boost archives in and out of memory,
// the envelope around them, and the explicit instantiations of the public templates.

#include "smartfunnel/serialization.hpp"
#include "smartfunnel/serialization/detail.hpp"

#include <boost/archive/archive_exception.hpp>
#include <boost/archive/binary_iarchive.hpp>
#include <boost/archive/binary_oarchive.hpp>
#include <boost/archive/text_iarchive.hpp>
#include <boost/archive/text_oarchive.hpp>
#include <boost/archive/xml_iarchive.hpp>
#include <boost/archive/xml_oarchive.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <istream>
#include <locale>
#include <ostream>
#include <span>
#include <streambuf>
#include <string>
#include <string_view>

namespace smartfunnel::detail {

// -- envelope (envelope.cpp) ---------------------------------------------------------------------

inline constexpr std::size_t header_bytes = 40;

/// The envelope header for a payload, checksums included.
[[nodiscard]] std::array<char, header_bytes> make_header(archive_type type, archive_format format,
                                                         std::string_view metadata, std::string_view payload);

/// A verified envelope: its header, and its body (metadata then payload), either owned (read from a
/// file or stream) or viewed (bytes the caller holds).
struct envelope {
  archive_info info;
  std::string storage;       ///< the body, when owned
  std::string_view external; ///< the body, when viewed
  std::size_t metadata_bytes = 0;
  [[nodiscard]] std::string_view payload() const noexcept {
    return (storage.empty() ? external : std::string_view(storage)).substr(metadata_bytes);
  }
};

/// Reads and verifies an envelope (header, lengths, checksum) from a file, a stream (stopping just
/// after it) or bytes (which must hold exactly one envelope).
[[nodiscard]] envelope read_envelope(const std::filesystem::path& path);
[[nodiscard]] envelope read_envelope(std::istream& in);
[[nodiscard]] envelope read_envelope(std::string_view bytes);

/// Throws wrong_archive_type unless the envelope holds `wanted`.
void expect_type(const archive_info& info, archive_type wanted);

/// Checks the start of a payload against what Boost's loader reads first (the archive signature and
/// library version), so that Boost never sizes anything from an unchecked header field.
void check_boost_header(std::string_view payload, archive_format format);

/// Writes `parts` to `path` through a temporary file in the same directory, flushed to disk and
/// renamed over `path`; on any error the temporary file is removed and `path` is untouched.
void write_file_atomically(const std::filesystem::path& path, std::span<const std::string_view> parts);

/// Writes `parts` to a stream; throws std::ios_base::failure when the stream fails.
void write_stream(std::ostream& out, std::span<const std::string_view> parts);

/// Converts whatever Boost or the standard library threw while loading into an archive_error.
[[noreturn]] void rethrow_as_archive_error(std::string_view type_name);

// -- Boost archives in memory --------------------------------------------------------------------

/// An output stream buffer appending to a string.
class string_streambuf final : public std::streambuf {
public:
  explicit string_streambuf(std::string& out) : out_(out) {}

protected:
  int_type overflow(int_type c) override {
    if (!traits_type::eq_int_type(c, traits_type::eof())) out_.push_back(traits_type::to_char_type(c));
    return traits_type::not_eof(c);
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    out_.append(s, static_cast<std::size_t>(n));
    return n;
  }

private:
  std::string& out_;
};

/// The name of the root element ("event_log", ...): to_string's views are of string literals.
template <persistent T>
const char* root_name() {
  return to_string(archive_type_of<T>).data();
}

/// Bytes to reserve for an archive: a log's archive is about the size of its columns (growing a
/// string of hundreds of MB by doubling would copy it several times).
template <persistent T>
std::size_t size_hint(const T& object) {
  if constexpr (std::same_as<T, event_log>)
    return object.memory_bytes() + 4096;
  else
    return 0;
}

/// The Boost archive of `object` (without the envelope).
template <persistent T>
std::string serialize_payload(const T& object, archive_format format) {
  using boost::serialization::make_nvp;
  std::string payload;
  payload.reserve(size_hint(object));
  string_streambuf buf(payload);
  std::ostream os(&buf);
  os.imbue(std::locale::classic());
  try {
    switch (format) {
    case archive_format::binary: {
      boost::archive::binary_oarchive ar(os);
      ar << make_nvp(root_name<T>(), object);
      break;
    }
    case archive_format::text: {
      boost::archive::text_oarchive ar(os);
      ar << make_nvp(root_name<T>(), object);
      break;
    }
    case archive_format::xml: {
      boost::archive::xml_oarchive ar(os);
      ar << make_nvp(root_name<T>(), object);
      break;
    }
    default:
      throw archive_error("unknown archive format " + std::to_string(static_cast<int>(format)));
    }
  } catch (const boost::archive::archive_exception& e) {
    throw archive_error(std::string("cannot archive ") + root_name<T>() + ": " + e.what());
  }
  if (!os) throw archive_error(std::string("cannot archive ") + root_name<T>() + ": the stream failed");
  return payload;
}

template <persistent T>
T placeholder() {
  if constexpr (std::same_as<T, funnel>)
    return serialization_access::placeholder_funnel();
  else if constexpr (std::same_as<T, event_log>)
    return serialization_access::placeholder_event_log();
  else if constexpr (std::same_as<T, fit_statistics>)
    return serialization_access::placeholder_statistics();
  else if constexpr (std::same_as<T, funnel_model>)
    return serialization_access::placeholder_model();
  else
    return T{};
}

/// Throws corrupt_archive unless everything after the object is white space (or nothing, binary).
void check_trailing(std::string_view rest, archive_format format);

/// Loads `object` (the root element `root`) from a verified payload.
template <class T>
void read_payload(std::string_view payload, archive_format format, T& object, const char* root,
                  std::string_view type_name) {
  using boost::serialization::make_nvp;
  check_boost_header(payload, format);
  payload_streambuf buf(payload.data(), payload.size());
  std::istream is(&buf);
  is.imbue(std::locale::classic());
  try {
    const payload_scope scope(buf);
    switch (format) {
    case archive_format::binary: {
      boost::archive::binary_iarchive ar(is);
      ar >> make_nvp(root, object);
      break;
    }
    case archive_format::text: {
      boost::archive::text_iarchive ar(is);
      ar >> make_nvp(root, object);
      break;
    }
    case archive_format::xml: {
      // Boost's end-tag check reads past the expected name when a crafted tag is longer than it
      // (Boost 1.74, basic_xml_iarchive::load_end): elements are read by position, not by name.
      boost::archive::xml_iarchive ar(is, boost::archive::no_xml_tag_checking);
      ar >> make_nvp(root, object);
      // The archive's destructor reads the closing tag and throws (from a destructor) when the
      // stream ends first: make sure a '>' is left for it.
      if (buf.rest().find('>') == std::string_view::npos)
        throw_corrupt("corrupt archive: the XML ends before its closing tag");
      break;
    }
    default:
      throw_corrupt("corrupt archive: unknown archive format");
    }
  } catch (...) {
    rethrow_as_archive_error(type_name);
  }
  check_trailing(buf.rest(), format);
}

/// The object in a verified payload.
template <persistent T>
T deserialize_payload(std::string_view payload, archive_format format) {
  T object = placeholder<T>();
  read_payload(payload, format, object, root_name<T>(), to_string(archive_type_of<T>));
  return object;
}

} // namespace smartfunnel::detail

namespace smartfunnel {

template <persistent T>
std::string save_to_string(const T& object, archive_format format, std::string_view metadata) {
  const std::string payload = detail::serialize_payload(object, format);
  const auto header = detail::make_header(archive_type_of<T>, format, metadata, payload);
  std::string out;
  out.reserve(header.size() + metadata.size() + payload.size());
  out.append(header.data(), header.size()).append(metadata).append(payload);
  return out;
}

template <persistent T>
void save(const T& object, const std::filesystem::path& path, archive_format format,
          std::string_view metadata) {
  const std::string payload = detail::serialize_payload(object, format);
  const auto header = detail::make_header(archive_type_of<T>, format, metadata, payload);
  const std::array<std::string_view, 3> parts{std::string_view(header.data(), header.size()), metadata,
                                              payload};
  detail::write_file_atomically(path, parts);
}

template <persistent T>
void save(const T& object, std::ostream& out, archive_format format, std::string_view metadata) {
  const std::string payload = detail::serialize_payload(object, format);
  const auto header = detail::make_header(archive_type_of<T>, format, metadata, payload);
  const std::array<std::string_view, 3> parts{std::string_view(header.data(), header.size()), metadata,
                                              payload};
  detail::write_stream(out, parts);
}

template <persistent T>
T load(const std::filesystem::path& path) {
  const auto env = detail::read_envelope(path);
  detail::expect_type(env.info, archive_type_of<T>);
  return detail::deserialize_payload<T>(env.payload(), env.info.format);
}

template <persistent T>
T load(std::istream& in) {
  const auto env = detail::read_envelope(in);
  detail::expect_type(env.info, archive_type_of<T>);
  return detail::deserialize_payload<T>(env.payload(), env.info.format);
}

template <persistent T>
T load_from_string(std::string_view bytes) {
  const auto env = detail::read_envelope(bytes);
  detail::expect_type(env.info, archive_type_of<T>);
  return detail::deserialize_payload<T>(env.payload(), env.info.format);
}

} // namespace smartfunnel

// Explicit instantiations of the public templates for one persistent type (in the TU that owns it).
#define SMARTFUNNEL_INSTANTIATE_SERIALIZATION(T)                                                             \
  template T smartfunnel::detail::deserialize_payload<T>(std::string_view, smartfunnel::archive_format);     \
  template std::string smartfunnel::save_to_string<T>(const T&, smartfunnel::archive_format,                 \
                                                      std::string_view);                                     \
  template void smartfunnel::save<T>(const T&, const std::filesystem::path&, smartfunnel::archive_format,    \
                                     std::string_view);                                                      \
  template void smartfunnel::save<T>(const T&, std::ostream&, smartfunnel::archive_format,                   \
                                     std::string_view);                                                      \
  template T smartfunnel::load<T>(const std::filesystem::path&);                                             \
  template T smartfunnel::load<T>(std::istream&);                                                            \
  template T smartfunnel::load_from_string<T>(std::string_view)

// In other TUs: use those instantiations instead of compiling the archives again.
#define SMARTFUNNEL_EXTERN_SERIALIZATION(T)                                                                  \
  extern template T smartfunnel::detail::deserialize_payload<T>(std::string_view, smartfunnel::archive_format)
