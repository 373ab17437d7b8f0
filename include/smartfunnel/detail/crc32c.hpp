#pragma once
/// \file detail/crc32c.hpp
/// CRC-32C (Castagnoli): the checksum of smartfunnel's archive envelopes. Part of
/// smartfunnel::serialization; no stability promise beyond the value it computes.

#include <cstddef>
#include <cstdint>

namespace smartfunnel::detail {

/// CRC-32C of `size` bytes: reflected polynomial 0x82F63B78, initial value and final XOR
/// 0xFFFFFFFF (the CRC of iSCSI, ext4 and the SSE4.2 crc32 instruction; crc32c("123456789") is
/// 0xE3069283). Pass the previous result as `crc` to continue over more bytes. Uses the SSE4.2
/// instruction when the CPU has it, else slicing-by-8 tables; both give the same value.
[[nodiscard]] std::uint32_t crc32c(const void* data, std::size_t size, std::uint32_t crc = 0) noexcept;

/// The table-driven implementation alone (for tests of the dispatch).
[[nodiscard]] std::uint32_t crc32c_portable(const void* data, std::size_t size,
                                            std::uint32_t crc = 0) noexcept;

} // namespace smartfunnel::detail
