// SpoolIndex: which stored messages are still pending, for which groups and
// where they are on disk. Built by replaying records in file order (on
// recovery and by read_spool) and kept current by the writer as records
// become durable. About 70 bytes per pending message.
#pragma once

#include <cstdint>
#include <cstring>
#include <deque>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "detail/id_table.hpp"
#include "mqkit/message_id.hpp"
#include "spool/records.hpp"

namespace mqkit::detail::spool {

struct Location {
  std::uint32_t segment = 0;
  std::uint32_t offset = 0;
  std::uint32_t size = 0;
};

struct IndexEntry {
  std::uint64_t seq = 0;
  std::uint64_t groups = 0;  // bit i: pending for groups()[i]
  Location where;
};

// What an ATTEMPT record says about one group's failed deliveries of a message.
struct Failures {
  int group_bit = 0;
  std::uint32_t attempts = 0;
  std::uint64_t first_failure_ms = 0;
  std::string last_error;
  std::uint32_t record_size = 0;  // of the ATTEMPT record that said so
};

struct SegmentUsage {
  std::uint64_t live_messages = 0;
  std::uint64_t live_bytes = 0;
  // The latest ATTEMPT records of this segment's live messages: a rewrite
  // copies them along, so they count as live when compaction weighs it.
  std::uint64_t history_bytes = 0;
  // Older segment -> how many settling records here (ACK, DEAD, TOMBSTONE,
  // ATTEMPT) named a message stored there: this segment must outlive those.
  std::map<std::uint32_t, std::uint64_t> settles;
};

// A dead-letter spool keeps one dead letter per (message, group): two groups
// may dead-letter the same message. Its entries are keyed by the id with the
// group's hash folded into the random half; the records keep the real id.
MessageId dead_letter_key(const MessageId& id, std::string_view group) noexcept;

class SpoolIndex {
 public:
  static constexpr std::size_t kMaxGroups = 64;

  // Applies one durable record found at `where`. Returns false when it names
  // more than kMaxGroups groups.
  bool apply(const DecodedRecord& record, const Location& where);
  // The key of the entry a record is about: its id, or for DEAD_LETTER and
  // TOMBSTONE records dead_letter_key(id, group).
  static MessageId key_of(const DecodedRecord& record) noexcept;

  // The group's bit, creating it (in a released group's place if need be);
  // -1 when the table is full.
  int group_bit(const std::string& name);
  // A deleted group: no message is pending for it any more and its bit goes
  // to the next new group (its slot's name becomes empty until then).
  void release_group(const std::string& name);
  // Only while replaying records (recovery, dead letters): the bit of a group
  // with nothing pending (and not in `keep`) for `name`; -1 when none is free.
  int reclaim_bit(const std::string& name, std::uint64_t keep);
  int find_group(const std::string& name) const;
  std::uint64_t mask_of(const std::vector<std::string>& groups);

  std::vector<MessageId> pending(const std::string& group) const;
  std::map<std::string, std::uint64_t> pending_counts() const;
  std::vector<std::string> groups_of(std::uint64_t mask) const;

  // Failed-delivery history of pending messages, only for those that failed.
  const Failures* failures_of(const MessageId& id, int group_bit) const;

  // The ids of the last `recent_capacity` messages first stored (rewritten
  // copies aside), oldest first, acked ones too: a device's dedup window.
  std::size_t recent_capacity = 0;
  std::deque<MessageId> recent;

  mqkit::detail::IdTable<IndexEntry> entries;
  std::unordered_map<MessageId, std::vector<Failures>> failures;
  std::vector<std::string> group_names;
  std::map<std::uint32_t, SegmentUsage> usage;  // per segment number
  std::uint64_t next_seq = 1;

 private:
  void forget(mqkit::detail::IdTable<IndexEntry>::iterator it);
  void forget_failures(const MessageId& id, int group_bit);
  // The history record bytes of `id` (a pending message), all groups.
  std::uint64_t history_bytes_of(const MessageId& id) const;
  void note_settle(const Location& message, const Location& record);
};

}  // namespace mqkit::detail::spool
