// Packing and unpacking the RECORDS batch.
#include "protocol/records_batch.hpp"

#include <cstring>
#include <new>

namespace mqkit::detail::protocol {

CommandFrame records_command(std::uint32_t partition, std::span<const StreamRecord> records) {
  CommandFrame c{
      .command = Command::records, .partition = partition, .offset = records.front().offset};
  c.times.reserve(records.size());
  for (const auto& r : records) c.times.push_back(r.time_ms);
  return c;
}

std::size_t records_frame_size(std::span<const StreamRecord> records) noexcept {
  std::size_t total = 0;
  for (const auto& r : records) total += 4 + r.frame.size();
  return total;
}

void pack_records_frame(std::span<const StreamRecord> records, std::span<char> out) noexcept {
  auto* at = reinterpret_cast<unsigned char*>(out.data());
  for (const auto& r : records) {
    const auto n = static_cast<std::uint32_t>(r.frame.size());
    at[0] = static_cast<unsigned char>(n >> 24);
    at[1] = static_cast<unsigned char>(n >> 16);
    at[2] = static_cast<unsigned char>(n >> 8);
    at[3] = static_cast<unsigned char>(n);
    std::memcpy(at + 4, r.frame.data(), n);
    at += 4 + n;
  }
}

DecodeResult unpack_records(const CommandFrame& command, std::string_view frame,
                            std::vector<BatchRecord>& out) noexcept {
  out.clear();
  if (command.command != Command::records)
    return {errc::malformed, "a records batch follows a RECORDS command"};
  const std::size_t expected = command.times.size();
  try {
    out.reserve(expected);
  } catch (const std::bad_alloc&) {
    return {errc::too_large, "records batch too large"};
  }
  std::string_view rest = frame;
  while (out.size() < expected) {
    if (rest.empty()) return {errc::malformed, "records batch holds fewer records than times"};
    if (rest.size() < 4) return {errc::truncated, "records batch is cut short in a length"};
    const auto* p = reinterpret_cast<const unsigned char*>(rest.data());
    const std::size_t n = (std::size_t{p[0]} << 24) | (std::size_t{p[1]} << 16) |
                          (std::size_t{p[2]} << 8) | std::size_t{p[3]};
    if (rest.size() - 4 < n)
      return {errc::truncated, "a record's length runs past the end of its batch"};
    out.push_back({command.offset + out.size(), command.times[out.size()], rest.substr(4, n)});
    rest.remove_prefix(4 + n);
  }
  if (!rest.empty()) return {errc::malformed, "records batch holds more records than times"};
  return {};
}

}  // namespace mqkit::detail::protocol
