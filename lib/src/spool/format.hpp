// The constants that the spool's writer and every reader share. The prose
// specification is docs/spool-format.md; change both together.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace mqkit::detail::spool {

// Segment file: a 16-byte header, then records back to back.
//   header: "MQKSPOOL" | format version (u32 LE) | reserved (u32, 0)
//   record: length (u32 LE, bytes of body) | crc32c (u32 LE, of type+body) | type (u8) | body
inline constexpr char kSegmentMagic[8] = {'M', 'Q', 'K', 'S', 'P', 'O', 'O', 'L'};
inline constexpr std::uint32_t kFormatVersion = 1;
inline constexpr std::size_t kSegmentHeaderSize = 16;
inline constexpr std::size_t kRecordHeaderSize = 9;
inline constexpr const char* kSegmentSuffix = ".seg";  // 00000001.seg, 00000002.seg, ...
inline constexpr const char* kLockFile = "LOCK";

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
std::string segment_name(std::uint32_t number);  // 00000001.seg
// Segment numbers present in `dir`, ascending. Throws Error if unreadable.
std::vector<std::uint32_t> list_segments(const std::string& dir);
bool is_known_record_type(std::uint8_t type) noexcept;

}  // namespace mqkit::detail::spool
