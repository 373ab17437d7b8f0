// Fuzz target: archives, from the envelope down to the payload parser and the invariant checks.
//
// The top two bits of byte 0 choose a mode:
//   0 (0x00-0x3F) payload only: the rest of byte 0 picks the object type (taken modulo 5), byte 1
//     the archive format (modulo 3), the rest is the payload handed to detail::load_payload, i.e.
//     what load_any reads once the envelope checks out (the envelope and checksum skipped);
//   1 (0x40-0x7F) a whole archive, resealed: the rest is an envelope, metadata and payload; the
//     harness first sets the payload length to the bytes there are (the metadata length is clamped
//     to them) and recomputes both CRC-32C checksums, as a forger would, so that mutations of the
//     payload get past the envelope into Boost's loader and smartfunnel's own checks
//     (load_any_from_string);
//   2 (0x80-0xBF) a whole archive as it is (the envelope's own checks: magic, versions, lengths,
//     checksums);
//   3 (0xC0-0xFF) as 1, read from a stream (load_any(std::istream&)).
// Every input must either load or throw archive_error; anything else (another exception, a crash,
// a leak, undefined behaviour) is a bug. An object that loads must pass check_utf8 or throw
// corrupt_archive, and must save and load back to the same bytes (nothing a loader accepts is lost
// or altered by a round trip).
// Models are derived only when their options keep the cost of the derivation small (see below).
#include <smartfunnel/detail/crc32c.hpp>
#include <smartfunnel/error.hpp>
#include <smartfunnel/serialization.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>
#include <string_view>
#include <variant>

namespace {

namespace sf = smartfunnel;

constexpr std::size_t max_draws = 64;
constexpr std::size_t max_group_levels = 2;
constexpr std::size_t header_bytes = 40; // the envelope header (docs/guide/persistence.md)

std::uint64_t get(const std::string& s, std::size_t at, int bytes) {
  std::uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i)
    v = (v << 8) | static_cast<unsigned char>(s[at + static_cast<std::size_t>(i)]);
  return v;
}

void put(std::string& s, std::size_t at, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i)
    s[at + static_cast<std::size_t>(i)] = static_cast<char>((v >> (8 * i)) & 0xFF);
}

// Lengths and checksums recomputed over the bytes as they are (clamping the metadata length).
void reseal(std::string& b) {
  if (b.size() < header_bytes) return;
  const std::uint64_t body = b.size() - header_bytes;
  std::uint64_t meta = get(b, 24, 4);
  if (meta > body) meta = body;
  put(b, 24, meta, 4);
  put(b, 16, body - meta, 8);
  put(b, 28, sf::detail::crc32c(b.data() + header_bytes, body), 4);
  put(b, 32, 0, 4);
  put(b, 36, sf::detail::crc32c(b.data(), 36), 4);
}

// Whether deriving the model of this funnel_model payload stays cheap (see LLVMFuzzerTestOneInput).
bool cheap_model(sf::archive_format format, std::string_view payload) {
  const auto stats = sf::detail::load_model_statistics_payload(format, payload);
  return stats.options.draws <= max_draws && stats.options.groups.size() <= max_group_levels;
}

// Whether a whole archive is cheap to load: anything but a model with large options is.
bool cheap_archive(const std::string& bytes) {
  const auto info = sf::read_archive_info_from_string(bytes);
  if (info.type != sf::archive_type::funnel_model) return true;
  return cheap_model(info.format, std::string_view(bytes).substr(header_bytes + info.metadata.size()));
}

// The oracles for an object that loaded.
void check_loaded(const sf::persistent_object& object, sf::archive_format format) {
  try {
    sf::check_utf8(object);
  } catch (const sf::corrupt_archive&) {
    // bytes a C++ caller may hold, refused for callers that hold text: the documented outcome
  }
  std::visit(
      [format](const auto& o) {
        const std::string once = sf::save_to_string(o, format);
        const auto again = sf::load_any_from_string(once);
        const std::string twice =
            std::visit([format](const auto& a) { return sf::save_to_string(a, format); }, again);
        if (once != twice) std::abort(); // a loaded object did not survive a round trip
      },
      object);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const int mode = data[0] >> 6;
  try {
    if (mode == 0) {
      const auto type = static_cast<sf::archive_type>(1 + (data[0] & 0x3F) % 5);
      const auto format = static_cast<sf::archive_format>(1 + data[1] % 3);
      const std::string_view payload(reinterpret_cast<const char*>(data) + 2, size - 2);
      // Loading a model costs a fit with the archive's options (docs/guide/persistence.md, threat
      // model): like a careful caller of untrusted files, read the statistics first and derive only
      // models whose options keep that cost small (the derivation itself is still fuzzed).
      if (type == sf::archive_type::funnel_model && !cheap_model(format, payload)) return 0;
      check_loaded(sf::detail::load_payload(type, format, payload), format);
      return 0;
    }
    std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
    if (mode != 2) reseal(bytes);
    if (!cheap_archive(bytes)) return 0;
    sf::archive_info info;
    if (mode == 3) {
      std::istringstream in(bytes);
      const auto object = sf::load_any(in, &info);
      check_loaded(object, info.format);
    } else {
      const auto object = sf::load_any_from_string(bytes, &info);
      check_loaded(object, info.format);
    }
  } catch (const sf::archive_error&) {
    // the documented outcome for an archive that does not load
  }
  return 0;
}
