#pragma once
// Open-addressing hash map from 64-bit integer keys to dense 32-bit values: one flat array, linear
// probing, no allocation per key. Used to intern opportunity ids at ingestion speed.

#include "smartfunnel/detail/random.hpp"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace smartfunnel::detail {

class flat_int_map {
public:
  explicit flat_int_map(std::size_t expected = 16) { rehash(capacity_for(expected)); }

  /// The value of `key`, inserting `value_if_new` when absent; second: whether it was inserted.
  std::pair<std::uint32_t, bool> try_emplace(std::int64_t key, std::uint32_t value_if_new) {
    if ((size_ + 1) * 2 > slots_.size()) rehash(slots_.size() * 2);
    std::size_t i = index(key);
    for (;;) {
      auto& s = slots_[i];
      if (s.value == empty) {
        s = {key, value_if_new};
        ++size_;
        return {value_if_new, true};
      }
      if (s.key == key) return {s.value, false};
      i = (i + 1) & mask_;
    }
  }
  /// Hints the cache to fetch the slot of `key` (a later try_emplace of it then does not stall).
  void prefetch(std::int64_t key) const noexcept {
#if defined(__GNUC__) || defined(__clang__)
    __builtin_prefetch(&slots_[index(key)]);
#else
    (void)key;
#endif
  }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  /// Calls f(key, value) for every entry.
  template <class F>
  void for_each(F&& f) const {
    for (const auto& s : slots_)
      if (s.value != empty) f(s.key, s.value);
  }

private:
  static constexpr std::uint32_t empty = 0xffffffffu;
  struct slot {
    std::int64_t key = 0;
    std::uint32_t value = empty;
  };
  static std::size_t capacity_for(std::size_t n) {
    std::size_t c = 16;
    while (c < 2 * n) c *= 2;
    return c;
  }
  std::size_t index(std::int64_t key) const noexcept {
    return static_cast<std::size_t>(mix64(static_cast<std::uint64_t>(key))) & mask_;
  }
  void rehash(std::size_t capacity) {
    std::vector<slot> old(capacity);
    old.swap(slots_);
    mask_ = capacity - 1;
    size_ = 0;
    for (const auto& s : old)
      if (s.value != empty) try_emplace(s.key, s.value);
  }
  std::vector<slot> slots_;
  std::size_t mask_ = 0;
  std::size_t size_ = 0;
};

} // namespace smartfunnel::detail
