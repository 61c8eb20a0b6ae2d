// CRC32C (Castagnoli), hardware-accelerated through Intel ISA-L.
#pragma once

#include <cstdint>
#include <string_view>

namespace mqkit::detail {

std::uint32_t crc32c(std::string_view bytes) noexcept;
// Continues a running CRC: crc32c(a + b) == crc32c_extend(crc32c(a), b).
std::uint32_t crc32c_extend(std::uint32_t crc, std::string_view bytes) noexcept;

}  // namespace mqkit::detail
