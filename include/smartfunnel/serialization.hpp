#pragma once
/// \file serialization.hpp
/// Saving and loading smartfunnel's persistent types: funnel, event_log, fit_options,
/// fit_statistics and funnel_model. Part of the optional target smartfunnel::serialization
/// (Boost.Serialization archives inside an envelope of smartfunnel's own); this header itself
/// includes no Boost header, so calling save/load compiles as fast as the core.
///
/// A saved object is an envelope (magic bytes, envelope and format versions, object type, archive
/// format, lengths, CRC-32C checksums) around a Boost.Serialization archive. The envelope is checked
/// in full before any payload byte reaches Boost's loader, and the loader checks every collection
/// count against the bytes left before allocating, then the object's invariants. docs/guide/
/// persistence.md describes the layout and the threat model (what is safe to load).
///
/// To put smartfunnel objects inside archives of your own, include the per-type headers under
/// smartfunnel/serialization/ instead (they define Boost's non-intrusive serialize functions).

#include "smartfunnel/event_log.hpp"
#include "smartfunnel/fit_options.hpp"
#include "smartfunnel/fit_statistics.hpp"
#include "smartfunnel/funnel.hpp"
#include "smartfunnel/funnel_model.hpp"

#include <concepts>
#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <string>
#include <string_view>
#include <system_error>
#include <variant>

namespace smartfunnel {

/// The archive inside the envelope.
enum class archive_format : std::uint8_t {
  /// Boost binary archive: fastest and smallest, but tied to the platform that wrote it (byte
  /// order, sizes of int/long/size_t). For caches and worker processes on one kind of machine.
  binary = 1,
  /// Boost text archive: portable between machines; numbers as decimal text (floating-point values
  /// in shortest round-trip form, so every bit survives).
  text = 2,
  /// Boost XML archive: portable and readable, the largest and slowest.
  xml = 3,
};

/// The object an archive holds (stored in the envelope as this number).
enum class archive_type : std::uint16_t {
  funnel = 1,
  event_log = 2,
  fit_options = 3,
  fit_statistics = 4,
  funnel_model = 5,
};

/// Version of the envelope layout this library reads and writes.
inline constexpr std::uint16_t archive_envelope_version = 1;
/// Version of smartfunnel's archive format (the payload layouts of every type taken together).
/// A new version adds golden files under tests/golden/ and never rewrites the old ones.
inline constexpr std::uint16_t archive_format_version = 1;
/// Largest metadata string an envelope may carry.
inline constexpr std::size_t archive_max_metadata_bytes = std::size_t{1} << 20;

/// What the envelope of an archive says (checked, checksum included, before it is returned).
struct archive_info {
  archive_type type;
  archive_format format;
  std::uint16_t format_version = 0;
  std::uint64_t payload_bytes = 0;
  /// The caller's own note saved with the object (empty when none); the Python package keeps its
  /// wrappers' settings here as JSON.
  std::string metadata;
};

/// "funnel", "event_log", ... ("unknown" for a number this library does not know).
[[nodiscard]] std::string_view to_string(archive_type type) noexcept;
/// "binary", "text" or "xml".
[[nodiscard]] std::string_view to_string(archive_format format) noexcept;
/// The format named "binary", "text" or "xml"; throws std::invalid_argument otherwise.
[[nodiscard]] archive_format parse_archive_format(std::string_view name);

/// The types save and load accept.
template <class T>
concept persistent = std::same_as<T, funnel> || std::same_as<T, event_log> || std::same_as<T, fit_options> ||
    std::same_as<T, fit_statistics> || std::same_as<T, funnel_model>;

/// The archive_type of a persistent type.
template <persistent T>
inline constexpr archive_type archive_type_of =
    std::same_as<T, funnel>           ? archive_type::funnel
    : std::same_as<T, event_log>      ? archive_type::event_log
    : std::same_as<T, fit_options>    ? archive_type::fit_options
    : std::same_as<T, fit_statistics> ? archive_type::fit_statistics
                                      : archive_type::funnel_model;

/// The error of save for a target it refuses to replace: one that is not a regular file (a
/// directory, device, FIFO, socket, or a symbolic link to one, to nothing or in a loop), or a
/// regular file the caller has no write permission for (by its mode bits and owner, checked
/// explicitly, since renaming over a file needs no permission on the file itself). path1() is the
/// target; reason() says why in a sentence naming it.
class save_target_error : public std::filesystem::filesystem_error {
public:
  save_target_error(const std::string& reason, const std::filesystem::path& target, std::error_code code)
      : std::filesystem::filesystem_error("smartfunnel::save: " + reason, target, code), reason_(reason) {}
  [[nodiscard]] const std::string& reason() const noexcept { return reason_; }

private:
  std::string reason_;
};

/// Saves `object` to `path` atomically: the archive is written to a temporary file in the same
/// directory, flushed to disk and renamed over `path`, so a crash or an error mid-save leaves the
/// previous file (if any) intact. `metadata` (at most archive_max_metadata_bytes) is stored
/// verbatim and covered by the checksum.
///
/// Save only ever replaces a regular file the caller may write (a new file is created with mode
/// 0666 minus the umask; a replaced file keeps its permissions). When `path` is a symbolic link to
/// a regular file, the file it points to is replaced (in its own directory) and the link stays.
/// For root, which may write any file, a file without any write bit (such as 0444) is still
/// refused: it was made read-only on purpose.
/// \throws save_target_error when the target is not a regular file or may not be written
/// \throws std::filesystem::filesystem_error when the file cannot be written (path1() is always
///         the target, never the temporary file)
/// \throws archive_error when the object cannot be archived
template <persistent T>
void save(const T& object, const std::filesystem::path& path, archive_format format = archive_format::binary,
          std::string_view metadata = {});

/// Writes the archive of `object` to a stream (several archives may follow each other).
template <persistent T>
void save(const T& object, std::ostream& out, archive_format format = archive_format::binary,
          std::string_view metadata = {});

/// The archive of `object` as bytes (what save writes to a file).
template <persistent T>
[[nodiscard]] std::string save_to_string(const T& object, archive_format format = archive_format::binary,
                                         std::string_view metadata = {});

/// Loads an object of type T from a file written by save.
/// \throws wrong_archive_type when the file holds another type of object
/// \throws newer_archive_format when a newer smartfunnel wrote it
/// \throws corrupt_archive when it is not a smartfunnel archive, is truncated or damaged
/// \throws archive_error when a binary archive comes from another platform
/// \throws std::filesystem::filesystem_error when the file cannot be read
template <persistent T>
[[nodiscard]] T load(const std::filesystem::path& path);

/// Loads one archive from a stream, leaving the stream just after it.
template <persistent T>
[[nodiscard]] T load(std::istream& in);

/// Loads an object from the bytes save_to_string returned (trailing bytes are an error).
template <persistent T>
[[nodiscard]] T load_from_string(std::string_view bytes);

/// Any persistent object, for callers that learn the type from the file.
using persistent_object = std::variant<funnel, event_log, fit_options, fit_statistics, funnel_model>;

/// Loads whatever persistent object the file holds; `info`, when given, receives its envelope.
[[nodiscard]] persistent_object load_any(const std::filesystem::path& path, archive_info* info = nullptr);
[[nodiscard]] persistent_object load_any(std::istream& in, archive_info* info = nullptr);
[[nodiscard]] persistent_object load_any_from_string(std::string_view bytes, archive_info* info = nullptr);

/// Throws corrupt_archive naming the first string of `object` (stage, owner, attribute and group
/// names, string ids, rejected rows...) that is not well-formed UTF-8, with the offending byte and
/// its offset. C++ objects may hold any bytes (ingestion keeps ids as given, and save and load
/// carry them unchanged); callers that hold names as text, such as the Python package, call this on
/// every object they load, so that a crafted or foreign archive is a corrupt_archive rather than a
/// decoding error later.
template <persistent T>
void check_utf8(const T& object);
void check_utf8(const persistent_object& object);

/// The sufficient statistics in a funnel_model archive, without deriving the model. Loading a model
/// derives every estimate again, at the cost of a fit with its options (groups, draws): for files
/// from untrusted sources, check the options here before funnel_model::from_statistics.
/// Throws the errors of load<funnel_model>.
[[nodiscard]] fit_statistics load_model_statistics(const std::filesystem::path& path);

/// Checks the envelope of a file (header and checksum) without loading the object.
[[nodiscard]] archive_info read_archive_info(const std::filesystem::path& path);
[[nodiscard]] archive_info read_archive_info_from_string(std::string_view bytes);

namespace detail {
/// Loads the object of a payload (the archive inside an envelope) without any envelope, so without
/// the checksum: what load_any does once the envelope is verified. For the fuzz tests (tests/fuzz/),
/// which must reach the payload parser with arbitrary bytes; no stability promise.
/// \throws archive_error (or a subclass) for any payload that does not load
[[nodiscard]] persistent_object load_payload(archive_type type, archive_format format,
                                             std::string_view payload);
/// The statistics in a funnel_model payload, without deriving the model (load_model_statistics
/// without the envelope).
[[nodiscard]] fit_statistics load_model_statistics_payload(archive_format format, std::string_view payload);
} // namespace detail

} // namespace smartfunnel
