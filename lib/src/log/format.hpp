// The segment-log format that the spool and the stream log share: a segment
// header, then framed records. The prose specification is
// docs/spool-format.md; change both together.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mqkit::detail::log {

// Segment file: a 16-byte header, then records back to back.
//   header:  "MQKSPOOL" | format version (u32 LE) | salt (u32 LE)
//   record:  length (u32 LE, bytes of body) | crc32c (u32 LE) | type (u8) | body
// Version 1: the salt field is 0 and the crc covers type+body.
// Version 2: the salt is random per segment and the crc covers
//            salt (4 bytes LE) + type + body, so a record-shaped run of bytes
//            inside a payload can never pass as a record when a reader
//            resynchronises after damage (nor in a compaction copy, which
//            lands in a segment with another salt).
inline constexpr char kSegmentMagic[8] = {'M', 'Q', 'K', 'S', 'P', 'O', 'O', 'L'};
inline constexpr std::uint32_t kFormatVersion = 2;
inline constexpr std::uint32_t kUnsaltedVersion = 1;
inline constexpr std::size_t kSegmentHeaderSize = 16;
inline constexpr std::size_t kRecordHeaderSize = 9;
// Record positions are u32 in the indexes: a segment never grows past this.
inline constexpr std::uint64_t kMaxSegmentSize = 0xFFFFFFFFull - 16ull * 1024 * 1024;

enum class RecordType : std::uint8_t {
  publish = 1,      // [seq, id, groups, frame]: a message stored for these groups
  ack = 2,          // [id, group]: the group is done with the message
  dead = 3,         // [id, group, reason, attempts, last_error]: moved to the DLQ
  dead_letter = 4,  // DLQ: [seq, id, [group], frame, {reason, attempts, first, last, error}]
  tombstone = 5,    // DLQ: [id, group]: the dead letter was removed (replayed or purged)
  attempt = 6,      // [id, group, attempts, first_failure_ms, last_error]: a failed delivery
  stream = 7,       // stream logs: [offset, time_ms, frame]
};

const char* record_type_name(RecordType type) noexcept;
bool is_known_record_type(std::uint8_t type) noexcept;

}  // namespace mqkit::detail::log
