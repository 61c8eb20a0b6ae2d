// The RECORDS batch (docs/stream-protocol.md), stream -> reader: the command
// [partition, first offset, [append time ms, ...]], then ONE frame holding
// each record's mqkit frame after its length (4 bytes, big-endian). One
// ZeroMQ message per batch instead of one per record is what lets a backlog
// be read at disk or memory speed. The stream device packs it; the
// StreamConsumer unpacks it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "envelope/codec.hpp"
#include "mqkit/stream_log.hpp"
#include "protocol/commands.hpp"

namespace mqkit::detail::protocol {

// Packing. `records` are consecutive offsets of one partition, at least one.
// The RECORDS command for them: the partition, the first offset, the times.
CommandFrame records_command(std::uint32_t partition, std::span<const StreamRecord> records);
// The size of the batch frame, then its bytes written to `out` (that size),
// so that the caller packs straight into the buffer it sends.
std::size_t records_frame_size(std::span<const StreamRecord> records) noexcept;
void pack_records_frame(std::span<const StreamRecord> records, std::span<char> out) noexcept;

// One record of an unpacked batch; `frame` points into the batch frame.
struct BatchRecord {
  std::uint64_t offset = 0;
  std::uint64_t time_ms = 0;  // append time, ms since the Unix epoch
  std::string_view frame;
};

// Unpacking: the records of a decoded RECORDS command and its batch frame.
// The frame must hold exactly one record per time: one with a length that
// runs past its end is `truncated`, one with fewer or more records is
// `malformed`; `out` then holds the whole records before the fault.
DecodeResult unpack_records(const CommandFrame& command, std::string_view frame,
                            std::vector<BatchRecord>& out) noexcept;

}  // namespace mqkit::detail::protocol
