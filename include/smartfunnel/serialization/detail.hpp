#pragma once
/// \file serialization/detail.hpp
/// Building blocks of smartfunnel's serialize functions (namespace smartfunnel::detail, no
/// stability promise): counts checked against the bytes left before anything is allocated, strings
/// and floating-point values that survive every archive exactly, and the friend that reaches
/// private members.
///
/// Boost's own loaders for std::vector and std::string allocate whatever count the stream says;
/// smartfunnel writes its collections itself instead. While smartfunnel::load reads a payload it
/// publishes the payload's read position (current_payload()), and every count is checked against
/// the bytes left in it, assuming the fewest bytes an element can take in that archive (binary:
/// its size; text: 2, a digit and a separator; XML: 7, an empty element). Archives of your own
/// (no payload published) still never allocate more than a fixed chunk ahead of the bytes read.

#include "smartfunnel/error.hpp"

#include <boost/serialization/array_wrapper.hpp>
#include <boost/serialization/nvp.hpp>
#include <boost/serialization/split_free.hpp>
#include <boost/serialization/string.hpp>
#include <boost/serialization/tracking.hpp>
#include <boost/serialization/version.hpp>

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <streambuf>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

namespace boost::archive {
class binary_iarchive;
class binary_oarchive;
class text_iarchive;
class text_oarchive;
class xml_iarchive;
class xml_oarchive;
} // namespace boost::archive

namespace smartfunnel {
class funnel;
class event_log;
class funnel_model;
struct fit_statistics;
} // namespace smartfunnel

namespace smartfunnel::detail {

/// A read-only stream buffer over a payload in memory that can tell how many bytes are left.
class payload_streambuf final : public std::streambuf {
public:
  payload_streambuf(const char* data, std::size_t size) {
    auto* p = const_cast<char*>(data); // the get area is never written through
    setg(p, p, p + size);
  }
  [[nodiscard]] std::size_t remaining() const noexcept { return static_cast<std::size_t>(egptr() - gptr()); }
  [[nodiscard]] std::string_view rest() const noexcept { return {gptr(), remaining()}; }
};

/// The payload smartfunnel::load is reading on this thread, or nullptr.
[[nodiscard]] const payload_streambuf* current_payload() noexcept;

/// Publishes a payload as current_payload() for its lifetime.
class payload_scope {
public:
  explicit payload_scope(const payload_streambuf& payload) noexcept;
  ~payload_scope();
  payload_scope(const payload_scope&) = delete;
  payload_scope& operator=(const payload_scope&) = delete;

private:
  const payload_streambuf* previous_;
};

enum class archive_kind { binary, text, xml, other };

template <class Archive>
inline constexpr archive_kind kind_of = std::is_same_v<Archive, boost::archive::binary_iarchive> ||
                                                std::is_same_v<Archive, boost::archive::binary_oarchive>
                                            ? archive_kind::binary
                                        : std::is_same_v<Archive, boost::archive::text_iarchive> ||
                                                std::is_same_v<Archive, boost::archive::text_oarchive>
                                            ? archive_kind::text
                                        : std::is_same_v<Archive, boost::archive::xml_iarchive> ||
                                                std::is_same_v<Archive, boost::archive::xml_oarchive>
                                            ? archive_kind::xml
                                            : archive_kind::other;

/// Elements read at a time when no payload is published (own archives): allocation stays within
/// this many elements of what the stream really held.
inline constexpr std::size_t load_chunk = std::size_t{1} << 16;

/// Throws corrupt_archive unless `count` elements fit in the bytes left of the current payload,
/// at `binary_bytes` bytes each at least in a binary archive (2 in text, 7 in XML).
template <class Archive>
void check_count(std::uint64_t count, std::size_t binary_bytes, const char* what) {
  const payload_streambuf* payload = current_payload();
  if (payload == nullptr) return;
  std::size_t min_bytes = 1;
  if constexpr (kind_of<Archive> == archive_kind::binary)
    min_bytes = std::max<std::size_t>(1, binary_bytes);
  else if constexpr (kind_of<Archive> == archive_kind::text)
    min_bytes = 2;
  else if constexpr (kind_of<Archive> == archive_kind::xml)
    min_bytes = 7;
  const std::size_t left = payload->remaining();
  if (count > left / min_bytes)
    throw corrupt_archive("corrupt archive: " + std::string(what) + " claims " + std::to_string(count) +
                          " elements but only " + std::to_string(left) + " bytes are left in the payload");
}

/// Throws corrupt_archive with `what`.
[[noreturn]] void throw_corrupt(const std::string& what);

/// How far above the newest version (or type number) this library knows a number may be and still
/// be read as a newer smartfunnel's: versions count up by one per release that changes a layout,
/// so anything further is a damaged or foreign file.
inline constexpr std::uint64_t newer_version_margin = 16;

/// The error for a version or type number outside first..last, with the number and the range:
/// newer_archive_format ("upgrade smartfunnel") when it is at most newer_version_margin above last,
/// corrupt_archive otherwise (0, below first, or garbage).
[[noreturn]] void throw_unknown_number(const std::string& what, std::uint64_t number, std::uint64_t first,
                                       std::uint64_t last);
/// throw_unknown_number for the class version of `type`.
[[noreturn]] void throw_newer_class(const char* type, unsigned version, unsigned known);

/// Rejects class versions outside 1..known.
inline void check_class_version(const char* type, unsigned version, unsigned known) {
  if (version == 0 || version > known) throw_newer_class(type, version, known);
}

// -- counts and scalars ---------------------------------------------------------------------------

/// A 64-bit count or size as std::size_t; throws corrupt_archive when it does not fit.
inline std::size_t to_size(std::uint64_t x, const char* name) {
  if constexpr (sizeof(std::size_t) < sizeof(std::uint64_t))
    if (x > std::numeric_limits<std::size_t>::max())
      throw_corrupt(std::string("corrupt archive: ") + name + " " + std::to_string(x) +
                    " does not fit in size_t");
  return static_cast<std::size_t>(x);
}

template <class Archive>
void save_count(Archive& ar, const char* name, std::size_t n) {
  const auto count = static_cast<std::uint64_t>(n);
  ar << boost::serialization::make_nvp(name, count);
}

/// Reads a count and checks it against the bytes left (see check_count).
template <class Archive>
std::size_t load_count(Archive& ar, const char* name, std::size_t binary_bytes) {
  std::uint64_t count = 0;
  ar >> boost::serialization::make_nvp(name, count);
  check_count<Archive>(count, binary_bytes, name);
  if (count > std::numeric_limits<std::size_t>::max() / 64)
    throw_corrupt(std::string("corrupt archive: ") + name + " count " + std::to_string(count) +
                  " is too large");
  return to_size(count, name);
}

/// A bool as one byte 0 or 1 (Boost's own bool loader trusts the byte).
template <class Archive>
void save_flag(Archive& ar, const char* name, bool b) {
  const std::uint8_t v = b ? 1 : 0;
  ar << boost::serialization::make_nvp(name, v);
}
template <class Archive>
bool load_flag(Archive& ar, const char* name) {
  std::uint8_t v = 0;
  ar >> boost::serialization::make_nvp(name, v);
  if (v > 1) throw_corrupt(std::string("corrupt archive: flag ") + name + " is " + std::to_string(v));
  return v == 1;
}

/// A string: in binary archives a 64-bit length and the raw bytes; in text archives Boost's own
/// string with its length checked before Boost reads it; in XML Boost's own (bounded by the text).
template <class Archive>
void save_string(Archive& ar, const char* name, const std::string& s) {
  if constexpr (kind_of<Archive> == archive_kind::binary) {
    save_count(ar, name, s.size());
    if (!s.empty()) ar.save_binary(s.data(), s.size());
  } else {
    ar << boost::serialization::make_nvp(name, s);
  }
}

/// The length Boost's text archive is about to read (skipping white space), or 0 when the next
/// token is not a plain number (Boost then fails to parse it).
[[nodiscard]] std::uint64_t peek_text_length(std::string_view rest) noexcept;

template <class Archive>
void load_string(Archive& ar, const char* name, std::string& s) {
  if constexpr (kind_of<Archive> == archive_kind::binary) {
    const std::size_t n = load_count(ar, name, 1);
    s.clear();
    for (std::size_t done = 0; done < n;) {
      const std::size_t step = current_payload() ? n - done : std::min(n - done, load_chunk);
      s.resize(done + step);
      ar.load_binary(s.data() + done, step);
      done += step;
    }
  } else {
    if constexpr (kind_of<Archive> == archive_kind::text)
      if (const payload_streambuf* payload = current_payload()) {
        const std::uint64_t n = peek_text_length(payload->rest());
        if (n > payload->remaining())
          throw_corrupt(std::string("corrupt archive: string ") + name + " claims " + std::to_string(n) +
                        " bytes but only " + std::to_string(payload->remaining()) + " are left");
      }
    ar >> boost::serialization::make_nvp(name, s);
  }
}

/// Shortest text that reads back to the same double (inf and nan included).
[[nodiscard]] std::string double_to_text(double x);
/// Parses double_to_text's output; throws corrupt_archive on anything else.
[[nodiscard]] double double_from_text(std::string_view s, const char* name);

/// A double: raw bits in binary archives, shortest round-trip text elsewhere (Boost's text
/// archives cannot read back inf or nan).
template <class Archive>
void save_double(Archive& ar, const char* name, double x) {
  if constexpr (kind_of<Archive> == archive_kind::binary) {
    ar << boost::serialization::make_nvp(name, x);
  } else {
    const std::string s = double_to_text(x);
    ar << boost::serialization::make_nvp(name, s);
  }
}
template <class Archive>
double load_double(Archive& ar, const char* name) {
  if constexpr (kind_of<Archive> == archive_kind::binary) {
    double x = 0.0;
    ar >> boost::serialization::make_nvp(name, x);
    return x;
  } else {
    std::string s;
    load_string(ar, name, s);
    return double_from_text(s, name);
  }
}

// -- vectors --------------------------------------------------------------------------------------

template <class T>
inline constexpr bool is_plain_number = std::is_arithmetic_v<T> && !std::is_same_v<T, bool>;

/// A vector of numbers (or strings): the count, then the elements (in one block in binary archives).
template <class Archive, class T>
void save_vector(Archive& ar, const char* name, const std::vector<T>& v) {
  save_count(ar, name, v.size());
  if constexpr (std::is_same_v<T, std::string>) {
    for (const auto& s : v) save_string(ar, "item", s);
  } else if constexpr (std::is_floating_point_v<T>) {
    static_assert(std::is_same_v<T, double>, "only double is archived as a floating-point type");
    if constexpr (kind_of<Archive> == archive_kind::binary) {
      if (!v.empty()) ar << boost::serialization::make_array(v.data(), v.size());
    } else {
      for (double x : v) save_double(ar, "item", x);
    }
  } else {
    static_assert(is_plain_number<T>, "save_vector holds numbers and strings");
    if (!v.empty()) ar << boost::serialization::make_array(v.data(), v.size());
  }
}

template <class Archive, class T>
void load_vector(Archive& ar, const char* name, std::vector<T>& v) {
  constexpr std::size_t binary_bytes = std::is_same_v<T, std::string> ? sizeof(std::uint64_t) : sizeof(T);
  const std::size_t n = load_count(ar, name, binary_bytes);
  v.clear();
  const bool published = current_payload() != nullptr;
  if constexpr (std::is_same_v<T, std::string>) {
    if (published) v.reserve(n);
    for (std::size_t i = 0; i < n; ++i) load_string(ar, "item", v.emplace_back());
  } else if constexpr (std::is_floating_point_v<T> && kind_of<Archive> != archive_kind::binary) {
    static_assert(std::is_same_v<T, double>, "only double is archived as a floating-point type");
    if (published) v.reserve(n);
    for (std::size_t i = 0; i < n; ++i) v.push_back(load_double(ar, "item"));
  } else {
    static_assert(is_plain_number<T>, "load_vector holds numbers and strings");
    for (std::size_t done = 0; done < n;) {
      const std::size_t step = published ? n - done : std::min(n - done, load_chunk);
      v.resize(done + step);
      ar >> boost::serialization::make_array(v.data() + done, step);
      done += step;
    }
  }
}

// -- private members ------------------------------------------------------------------------------

/// The friend of event_log and funnel_model that archives reach private members through.
/// Its member templates are defined in the per-type headers.
struct serialization_access {
  template <class Archive>
  static void save(Archive& ar, const event_log& log, unsigned version);
  template <class Archive>
  static void load(Archive& ar, event_log& log, unsigned version);
  /// Throws corrupt_archive unless a loaded log satisfies every invariant ingestion guarantees.
  static void validate(const event_log& log);

  /// Objects to load into (Boost loads into an existing object; these are valid but meaningless).
  static funnel placeholder_funnel();
  static event_log placeholder_event_log();
  static fit_statistics placeholder_statistics();
  static funnel_model placeholder_model();
};

/// Throws corrupt_archive unless loaded statistics have the shape collect_statistics gives them
/// (one cell per open stage and leaf key, tables of duration rows x (codes + 1), durations
/// ascending, counts and weights non-negative, as_of set, options valid).
void validate(const fit_statistics& stats);

/// funnel_model::from_statistics for a loader: its errors become corrupt_archive.
[[nodiscard]] funnel_model rebuild_model(fit_statistics&& stats);

} // namespace smartfunnel::detail
