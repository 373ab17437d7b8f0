// check_utf8: the strings of a persistent object that callers holding names as text (the Python
// package) must be able to decode, each checked as UTF-8 and named when it is not.
#include "smartfunnel/error.hpp"
#include "smartfunnel/serialization.hpp"

#include <cstdio>
#include <string>
#include <string_view>

namespace smartfunnel {

namespace {

constexpr std::size_t valid = std::string_view::npos;

// Offset of the first byte that does not belong to well-formed UTF-8 (RFC 3629 / Unicode table 3-7:
// no overlong forms, no surrogates, nothing above U+10FFFF), or `valid`: what Python's strict
// decoder accepts.
std::size_t invalid_utf8_at(std::string_view s) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  std::size_t i = 0;
  auto cont = [&](std::size_t k, unsigned char lo = 0x80, unsigned char hi = 0xBF) {
    return i + k < n && p[i + k] >= lo && p[i + k] <= hi;
  };
  while (i < n) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
    } else if (c >= 0xC2 && c <= 0xDF) {
      if (!cont(1)) return i;
      i += 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      const unsigned char lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
      if (!cont(1, lo, hi) || !cont(2)) return i;
      i += 3;
    } else if (c >= 0xF0 && c <= 0xF4) {
      const unsigned char lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
      if (!cont(1, lo, hi) || !cont(2) || !cont(3)) return i;
      i += 4;
    } else {
      return i;
    }
  }
  return valid;
}

// Checks one string; `field` names it (called only when it is not text).
template <class Field>
void check(std::string_view s, const char* type, Field&& field) {
  const std::size_t at = invalid_utf8_at(s);
  if (at == valid) return;
  char byte[8];
  std::snprintf(byte, sizeof byte, "0x%02X", static_cast<unsigned>(static_cast<unsigned char>(s[at])));
  throw corrupt_archive("corrupt archive: the " + std::string(type) + "'s " + std::string(field()) +
                        " is not valid UTF-8 text (byte " + byte + " at offset " + std::to_string(at) + ")");
}

template <class Names, class Field>
void check_all(const Names& names, const char* type, Field&& field) {
  std::size_t i = 0;
  for (const auto& s : names) {
    check(s, type, [&] { return field(i); });
    ++i;
  }
}

void check_funnel(const funnel& f, const char* type) {
  check(f.name(), type, [] { return std::string("funnel name"); });
  check_all(f.names(), type, [](std::size_t i) { return "stage name " + std::to_string(i); });
  for (std::size_t s = 0; s < f.n_open(); ++s)
    check(f.exit_criterion(static_cast<stage_code>(s)), type,
          [s] { return "exit criterion of stage " + std::to_string(s); });
}

void check_options(const fit_options& o, const char* type) {
  check_all(o.groups, type, [](std::size_t i) { return "fit option groups[" + std::to_string(i) + "]"; });
}

void check_statistics(const fit_statistics& s, const char* type) {
  check_funnel(s.funnel, type);
  check_options(s.options, type);
  std::size_t k = 0;
  for (const auto& entry : s.cells) {
    check_all(entry.first, type, [k](std::size_t i) {
      return "group key " + std::to_string(k) + " value " + std::to_string(i);
    });
    ++k;
  }
}

} // namespace

template <persistent T>
void check_utf8(const T& object) {
  if constexpr (std::same_as<T, funnel>) {
    check_funnel(object, "funnel");
  } else if constexpr (std::same_as<T, fit_options>) {
    check_options(object, "fit_options");
  } else if constexpr (std::same_as<T, fit_statistics>) {
    check_statistics(object, "fit_statistics");
  } else if constexpr (std::same_as<T, funnel_model>) {
    check_statistics(object.statistics(), "funnel_model");
  } else {
    const char* type = "event_log";
    check_funnel(object.funnel(), type);
    check_all(object.string_id_values(), type,
              [](std::size_t i) { return "opportunity id " + std::to_string(i); });
    check_all(object.owner_names().names(), type,
              [](std::size_t i) { return "owner name " + std::to_string(i); });
    for (const auto& a : object.attributes()) {
      check(a.name, type, [] { return std::string("attribute name"); });
      check_all(a.values.names(), type,
                [&a](std::size_t i) { return "attribute '" + a.name + "' value " + std::to_string(i); });
    }
    std::size_t i = 0;
    for (const auto& r : object.report().rejected) {
      check(r.column, type, [i] { return "rejected row " + std::to_string(i) + " column"; });
      check(r.reason, type, [i] { return "rejected row " + std::to_string(i) + " reason"; });
      ++i;
    }
  }
}

void check_utf8(const persistent_object& object) {
  std::visit([](const auto& o) { check_utf8(o); }, object);
}

template void check_utf8<funnel>(const funnel&);
template void check_utf8<event_log>(const event_log&);
template void check_utf8<fit_options>(const fit_options&);
template void check_utf8<fit_statistics>(const fit_statistics&);
template void check_utf8<funnel_model>(const funnel_model&);

} // namespace smartfunnel
