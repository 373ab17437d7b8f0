#pragma once
/// \file string_interner.hpp
/// Text values to dense codes in order of first appearance (what pandas.factorize gives), at
/// about the cost of reading codes: the columns ingestion sees most (stages, owners, kinds) hold
/// few distinct short values, so each row is first looked up in a small direct-mapped cache keyed
/// by the value's bytes themselves (length and up to 16 bytes: equal keys are equal values, no
/// comparison of the text), and only a miss goes to the hash table.

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace smartfunnel::detail {

class string_interner {
public:
  /// The code of `s`, assigning the next one when it is new.
  std::uint32_t intern(std::string_view s) {
    if (s.size() > 16) return lookup(s);
    const auto [a, b] = words(s);
    return cached(s, a, b);
  }
  /// The same for the value at [begin, end) of a buffer of `size` bytes (an Arrow data buffer):
  /// where 8 bytes can be read from `begin` and up to `end`, whole words are loaded and masked
  /// without a branch on the length (stages of random lengths would mispredict every row).
  std::uint32_t intern_in(const char* data, std::size_t begin, std::size_t end, std::size_t size) {
    const std::size_t n = end - begin;
    if (std::endian::native != std::endian::little || n - 1 >= 16 || begin + 8 > size || end < 8)
      return intern({data + begin, n}); // empty, long, or at the very start or end of the buffer
    const std::uint64_t first = load(data + begin, 8), last = load(data + end - 8, 8);
    const std::size_t m = std::min<std::size_t>(n, 8); // 1..8 bytes in the first word
    const std::uint64_t keep = ((std::uint64_t{1} << (8 * m - 1)) << 1) - 1;
    return cached({data + begin, n}, first & keep,
                  last & (std::uint64_t{0} - static_cast<std::uint64_t>(n > 8)));
  }
  [[nodiscard]] std::size_t size() const noexcept { return names_.size(); }
  /// The values by code.
  [[nodiscard]] const std::vector<std::string>& names() const noexcept { return names_; }
  std::vector<std::string> take_names() { return std::move(names_); }

private:
  static constexpr std::uint32_t none = 0xffffffffu;
  static constexpr int cache_bits = 10;
  struct cache_slot {
    std::uint64_t a = 0, b = 0, len = 0;
    std::uint32_t code = none;
  };

  std::uint32_t cached(std::string_view s, std::uint64_t a, std::uint64_t b) {
    const std::uint64_t len = s.size();
    const auto h = (a ^ (len << 56)) * 0x9e3779b97f4a7c15ull + b * 0xc2b2ae3d27d4eb4full;
    auto& slot = cache_[h >> (64 - cache_bits)];
    if (slot.a == a && slot.b == b && slot.len == len && slot.code != none) return slot.code;
    const auto code = lookup(s);
    slot = {a, b, len, code};
    return code;
  }
  static std::uint64_t mix(std::uint64_t h) noexcept {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
  }
  static std::uint64_t load(const char* p, std::size_t n) noexcept {
    std::uint64_t w = 0;
    std::memcpy(&w, p, n);
    return w;
  }
  static std::uint64_t load4(const char* p) noexcept {
    std::uint32_t w;
    std::memcpy(&w, p, 4);
    return w;
  }
  /// A value of at most 16 bytes as two words: its first 8 bytes and its last 8 (overlapping
  /// when shorter than 16), or its bytes zero-padded in the first word when shorter than 9.
  /// With the length they determine it. Fixed-size loads only (no copy of a variable length).
  static std::pair<std::uint64_t, std::uint64_t> words(std::string_view s) noexcept {
    const char* p = s.data();
    const std::size_t n = s.size();
    if constexpr (std::endian::native != std::endian::little) {
      return n <= 8 ? std::pair{load(p, n), std::uint64_t{0}} : std::pair{load(p, 8), load(p + n - 8, 8)};
    } else {
      if (n >= 8) return {load(p, 8), n > 8 ? load(p + n - 8, 8) : 0};
      if (n >= 4) return {load4(p) | (load4(p + n - 4) << (8 * (n - 4))), 0}; // overlapping bytes agree
      if (n == 0) return {0, 0};
      const auto* u = reinterpret_cast<const unsigned char*>(p);
      return {std::uint64_t{u[0]} | (std::uint64_t{u[n >> 1]} << (8 * (n >> 1))) |
                  (std::uint64_t{u[n - 1]} << (8 * (n - 1))),
              0};
    }
  }
  static std::uint64_t hash(std::string_view s) noexcept {
    std::uint64_t h = s.size() * 0x9e3779b97f4a7c15ull;
    std::size_t i = 0;
    for (; i + 8 <= s.size(); i += 8) h = mix(h ^ load(s.data() + i, 8));
    if (i < s.size()) h = mix(h ^ load(s.data() + i, s.size() - i));
    return mix(h);
  }
  std::uint32_t lookup(std::string_view s) {
    if (2 * (names_.size() + 1) > slots_.size()) grow();
    const auto h = hash(s);
    for (auto i = h & (slots_.size() - 1);; i = (i + 1) & (slots_.size() - 1)) {
      const auto slot = slots_[i];
      if (slot == none) {
        const auto code = static_cast<std::uint32_t>(names_.size());
        slots_[i] = code;
        names_.emplace_back(s);
        hashes_.push_back(h);
        return code;
      }
      if (hashes_[slot] == h && names_[slot] == s) return slot;
    }
  }
  void grow() {
    std::vector<std::uint32_t> bigger(slots_.empty() ? 64 : 2 * slots_.size(), none);
    for (std::uint32_t code = 0; code < names_.size(); ++code)
      for (auto i = hashes_[code] & (bigger.size() - 1);; i = (i + 1) & (bigger.size() - 1))
        if (bigger[i] == none) {
          bigger[i] = code;
          break;
        }
    slots_ = std::move(bigger);
  }

  std::vector<cache_slot> cache_ = std::vector<cache_slot>(std::size_t{1} << cache_bits);
  std::vector<std::uint32_t> slots_;
  std::vector<std::uint64_t> hashes_;
  std::vector<std::string> names_;
};

} // namespace smartfunnel::detail
