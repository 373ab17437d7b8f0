// Fuzz target: the archive payload parser, with the envelope (and its checksum) bypassed.
//
// Input: byte 0 picks the object type (1..5, taken modulo 5), byte 1 the archive format (binary,
// text, xml, modulo 3), the rest is the payload handed to detail::load_payload, i.e. what load_any
// reads once the envelope checks out. Every input must either load or throw archive_error; anything
// else (another exception, a crash, a leak, undefined behaviour) is a bug.
// Models are derived only when their options keep the cost of the derivation small (see below).
#include <smartfunnel/error.hpp>
#include <smartfunnel/serialization.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace {
constexpr std::size_t max_draws = 64;
constexpr std::size_t max_group_levels = 2;
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace sf = smartfunnel;
  if (size < 2) return 0;
  const auto type = static_cast<sf::archive_type>(1 + data[0] % 5);
  const auto format = static_cast<sf::archive_format>(1 + data[1] % 3);
  const std::string_view payload(reinterpret_cast<const char*>(data) + 2, size - 2);
  try {
    if (type == sf::archive_type::funnel_model) {
      // Loading a model costs a fit with the archive's options (docs/guide/persistence.md, threat
      // model): like a careful caller of untrusted files, read the statistics first and derive only
      // models whose options keep that cost small (the derivation itself is still fuzzed).
      const auto stats = sf::detail::load_model_statistics_payload(format, payload);
      if (stats.options.draws > max_draws || stats.options.groups.size() > max_group_levels) return 0;
    }
    const auto object = sf::detail::load_payload(type, format, payload);
    (void)object;
  } catch (const sf::archive_error&) {
    // the documented outcome for a payload that does not load
  }
  return 0;
}
