// ISA-L's crc32_iscsi without its final inversion; we apply the standard
// pre- and post-inversion so results match every other CRC32C.
#include "log/crc32c.hpp"

#include <isa-l/crc.h>

namespace mqkit::detail {

std::uint32_t crc32c_extend(std::uint32_t crc, std::string_view bytes) noexcept {
  auto* data = reinterpret_cast<unsigned char*>(const_cast<char*>(bytes.data()));
  return ~crc32_iscsi(data, static_cast<int>(bytes.size()), ~crc);
}

std::uint32_t crc32c(std::string_view bytes) noexcept {
  return crc32c_extend(0, bytes);
}

}  // namespace mqkit::detail
