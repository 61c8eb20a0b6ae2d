// The bodies of spool records, encoded with msgpack-cxx as arrays:
//   PUBLISH      [seq, id(bin16), [group...], frame(bin)]
//   ACK          [id, group]
//   DEAD         [id, group, reason, attempts, last_error]
//   DEAD_LETTER  [seq, id, [group], frame, reason, attempts, first_ms, last_ms, last_error]
//   TOMBSTONE    [id, group]
//   ATTEMPT      [id, group, attempts, first_failure_ms, last_error]
// Decoding is strict and bounded; a body that does not decode is corruption.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mqkit/spool.hpp"
#include "spool/format.hpp"

namespace mqkit::detail::spool {

struct DecodedRecord {
  RecordType type{};
  MessageId id;
  std::uint64_t seq = 0;
  std::vector<std::string> groups;  // PUBLISH, DEAD_LETTER; one entry for ACK/DEAD/TOMBSTONE
  std::string_view frame;           // points into the record body
  std::string reason, last_error;
  std::uint32_t attempts = 0;
  std::uint64_t first_failure_ms = 0, last_failure_ms = 0;
  // Set by the writer's own appends instead of `groups`, to spare the hot
  // path an allocation: the groups' bits (PUBLISH), or the one group.
  std::uint64_t group_mask = 0;
  std::string group;

  const std::string& one_group() const noexcept { return groups.empty() ? group : groups.front(); }
  bool names_a_group() const noexcept { return !groups.empty() || !group.empty(); }
};

std::string encode_publish(std::uint64_t seq, const MessageId& id,
                           const std::vector<std::string>& groups, std::string_view frame);
std::string encode_ack(const MessageId& id, std::string_view group);
std::string encode_dead(const MessageId& id, std::string_view group, std::string_view reason,
                        std::uint32_t attempts, std::string_view last_error);
std::string encode_attempt(const MessageId& id, std::string_view group, std::uint32_t attempts,
                           std::uint64_t first_failure_ms, std::string_view last_error);
std::string encode_dead_letter(std::uint64_t seq, const MessageId& id, std::string_view frame,
                               const DeadLetterInfo& info);

// Empty when the body is not a valid record of that type.
[[nodiscard]] std::optional<DecodedRecord> decode_record(RecordType type, std::string_view body);

}  // namespace mqkit::detail::spool
