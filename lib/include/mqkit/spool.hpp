// Spool: durable storage for the reliable proxy. Messages are appended to
// numbered segment files in one directory, each record framed with its
// length and CRC32C; acks and dead-letterings are records too. One writer
// thread batches every record that arrives while the previous fdatasync runs
// (group commit) and reports each record's completion only once it is as
// durable as the policy says. Reopening a spool recovers, per group, every
// message that is stored and neither acked nor dead, in publish order.
// Segments whose messages are all done are deleted, and the live remainder
// of mostly-done old segments is rewritten, so disk use follows what is
// pending. The on-disk format is docs/spool-format.md.
//
// A spool directory has one writer process at a time (a flock'ed LOCK file);
// read_spool() reads one that a live process owns.
//
// Thread safety: every method may be called from any thread. Completions run
// on the writer thread (or on the caller's thread when an append fails at
// once, e.g. `full`); keep them short.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "mqkit/message_id.hpp"

namespace mqkit {

namespace detail::log {
class Env;
}

enum class Durability {
  always,    // completion after fdatasync (group commit)
  interval,  // completion after write; fdatasync at least every sync_interval
  never,     // completion after write; the page cache decides
};

struct SpoolOptions {
  Durability durability = Durability::always;
  std::chrono::milliseconds sync_interval{10};
  std::uint64_t segment_size = 64ull * 1024 * 1024;  // a new segment starts past this
  std::uint64_t max_size = 0;                        // bytes on disk; 0: no limit
  std::uint64_t max_record_size = 16ull * 1024 * 1024 + 64 * 1024;
  bool dead_letters = false;  // a dead-letter spool (DEAD_LETTER/TOMBSTONE records)
  // On open, remember the ids of the last N messages whose PUBLISH records
  // are still on disk, acked or not (see Spool::take_recent_ids).
  std::size_t recall_recent_ids = 0;
  // On open, remember the not_before times of pending messages that carry
  // one (see Spool::take_schedule): their frames are read then anyway.
  bool recall_schedule = false;
  // The file I/O seam (lib/src/log/env.hpp); null: the real file system.
  // Tests pass a fault-injecting one. Not owned; must outlive the spool.
  detail::log::Env* env = nullptr;
};

// "always", "never" or "interval=DURATION" (e.g. interval=10ms). Throws Error.
void parse_durability(std::string_view text, SpoolOptions& options);

enum class AppendStatus {
  durable,   // stored as the durability policy promises
  full,      // refused: the spool is at max_size (backpressure; retry later)
  io_error,  // the write failed (errno in AppendResult::error); nothing was stored
  closed,    // the spool was closing
};

struct AppendResult {
  AppendStatus status = AppendStatus::durable;
  int error = 0;  // errno for io_error
  explicit operator bool() const noexcept { return status == AppendStatus::durable; }
};

using Completion = std::function<void(AppendResult)>;

// Why a message went to the dead-letter spool, and its history.
struct DeadLetterInfo {
  std::string group;
  std::string reason;
  std::uint32_t attempts = 0;
  std::uint64_t first_failure_ms = 0;
  std::uint64_t last_failure_ms = 0;
  std::string last_error;
};

// A group's failed deliveries of a pending message (ATTEMPT records), so
// attempt counts survive a restart.
struct DeliveryHistory {
  std::uint32_t attempts = 0;  // failed deliveries so far
  std::uint64_t first_failure_ms = 0;
  std::string last_error;
};

struct StoredMessage {
  MessageId id;
  std::uint64_t seq = 0;            // publish order
  std::vector<std::string> groups;  // still pending for these groups
  std::string frame;                // the mqkit frame: topic, envelope, payload
  std::optional<DeadLetterInfo> dead_letter;
};

struct RecoveryReport {
  std::uint64_t segments = 0;
  std::uint64_t records = 0;
  std::uint64_t corrupt_records = 0;  // skipped in the middle of a segment
  std::uint64_t corrupt_bytes = 0;
  std::uint64_t torn_tail_bytes = 0;  // truncated away (writer) or ignored (reader)
  std::vector<std::string> problems;
};

struct SpoolStats {
  std::uint64_t bytes = 0;  // on disk, all segments
  std::uint64_t segments = 0;
  std::uint64_t messages = 0;  // stored and pending for at least one group
  std::uint64_t syncs = 0;     // fdatasync calls since open
  std::uint64_t records_written = 0;
  // Stored messages compaction found it cannot read back (damaged since
  // written): their segment is kept rather than deleted.
  std::uint64_t unreadable = 0;
  std::map<std::string, std::uint64_t> pending;  // per group
};

class Spool {
 public:
  // Opens DIR for writing, creating it if needed, and recovers its contents.
  // Throws Error when DIR cannot be created, is owned by another process
  // (the message names its pid), or holds a segment of a newer format.
  Spool(const std::string& dir, const SpoolOptions& options = {});
  ~Spool();  // completes everything appended so far, then closes
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  static constexpr std::size_t kMaxGroups = 64;  // groups with messages pending at once

  // Stores a message for `groups` (at most kMaxGroups groups per spool, a
  // forgotten group's place is reused). Throws Error(bad_argument) past that,
  // before anything is appended.
  //
  // Publishes of one non-zero `order_key` (one producer's, say) are never
  // stored out of order: once one is refused `full`, every later one with
  // that key is refused too (those already queued as well), however small,
  // until release_order_key(key), called when the refused one comes again.
  void publish(const MessageId& id, const std::vector<std::string>& groups, std::string_view frame,
               Completion done, std::uint64_t order_key = 0);
  void release_order_key(std::uint64_t key);
  void ack(const MessageId& id, const std::string& group, Completion done);
  void dead(const MessageId& id, const std::string& group, std::string_view reason,
            std::uint32_t attempts, std::string_view last_error, Completion done);

  // Records that a delivery of a pending message to `group` failed; the
  // latest record replaces the earlier ones.
  void record_attempt(const MessageId& id, const std::string& group, const DeliveryHistory& history,
                      Completion done);
  // The recorded history; empty when no delivery to `group` failed.
  [[nodiscard]] std::optional<DeliveryHistory> history(const MessageId& id,
                                                       const std::string& group) const;

  // Dead-letter spools: a full copy of the message and why it died, one per
  // (message, group) (info.group); removal is a tombstone record.
  void add_dead_letter(const MessageId& id, std::string_view frame, const DeadLetterInfo& info,
                       Completion done);
  void remove_dead_letter(const MessageId& id, const std::string& group, Completion done);
  // Every dead letter of the message, whatever its group.
  void remove_dead_letter(const MessageId& id, Completion done);
  [[nodiscard]] std::optional<StoredMessage> read_dead_letter(const MessageId& id,
                                                              const std::string& group) const;

  // A deleted group: its messages stop being pending for it now (the caller
  // appends their ACKs for a restart), and its place goes to the next new
  // group. Waits for the records already queued first (a PUBLISH naming the
  // group is stored, then released with it): never call it from a Completion.
  void forget_group(const std::string& group);

  // Blocking conveniences: append and wait for the completion.
  [[nodiscard]] AppendResult publish_sync(const MessageId& id,
                                          const std::vector<std::string>& groups,
                                          std::string_view frame);
  [[nodiscard]] AppendResult ack_sync(const MessageId& id, const std::string& group);

  // The ids SpoolOptions::recall_recent_ids asked for, oldest first; later
  // calls return nothing. Segments compacted away took their ids with them.
  std::vector<MessageId> take_recent_ids();
  // With SpoolOptions::recall_schedule: each message pending at open whose
  // envelope has a not_before time, with that time (ms since the Unix
  // epoch). Later calls return nothing.
  std::unordered_map<MessageId, std::uint64_t> take_schedule();

  // Ids pending for `group`, in publish order.
  std::vector<MessageId> pending(const std::string& group) const;
  // Whether `id` is stored and some group has not settled it yet, as the
  // records durable so far say (a settle still being written leaves it held).
  bool holds(const MessageId& id) const;
  // A stored message (pending for some group, or a dead letter: the first of
  // its groups').
  [[nodiscard]] std::optional<StoredMessage> read(const MessageId& id) const;
  std::vector<StoredMessage> dead_letters() const;
  std::vector<std::string> groups() const;  // that messages were stored for, not forgotten

  // Waits until every record appended so far has completed (and the
  // compaction that follows each batch has run).
  void flush();
  // Under interval or never: flush(), then a sync of everything written so
  // far; what was confirmed is durable when it returns 0 (else the errno of
  // the failed sync). Under always, confirmed already means synced. For a step that must not
  // outlive what it relies on, e.g. a dead letter removed once its replayed copy is stored.
  [[nodiscard]] int sync();

  // Records where tools can reach this spool's owner (its admin endpoint)
  // in DIR/LOCK, next to the pid.
  void set_admin_endpoint(const std::string& endpoint);

  SpoolStats stats() const;
  std::uint64_t bytes() const noexcept;  // on disk, all segments (cheap)
  const RecoveryReport& recovery() const noexcept;
  const std::string& dir() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Reads a spool without taking its lock (for dump, check, dlq ls/show): stops
// quietly at a tail that is being written. Throws Error if DIR is unreadable.
struct SpoolRecord {
  std::string type;  // PUBLISH, ACK, DEAD, DEAD_LETTER, TOMBSTONE, ATTEMPT
  std::string segment;
  std::uint64_t offset = 0;
  MessageId id;
  std::vector<std::string> groups;
  std::uint64_t seq = 0;
  std::string frame;  // PUBLISH / DEAD_LETTER
  std::optional<DeadLetterInfo> dead_letter;
  std::string reason, last_error;  // DEAD (last_error also ATTEMPT)
  std::uint32_t attempts = 0;      // DEAD, ATTEMPT
};

struct SpoolContents {
  std::vector<SpoolRecord> records;
  RecoveryReport report;
  std::uint64_t bytes = 0;
  std::map<std::string, std::uint64_t> pending;  // per group
  std::vector<StoredMessage> dead_letters;       // for a dead-letter spool
};

// The process that holds DIR's lock now (its pid, and its admin endpoint if
// it recorded one); empty when no process does.
struct SpoolOwner {
  int pid = 0;
  std::string admin_endpoint;
};
[[nodiscard]] std::optional<SpoolOwner> spool_owner(const std::string& dir);

SpoolContents read_spool(const std::string& dir,
                         std::uint64_t max_record_size = 16ull * 1024 * 1024 + 64 * 1024);

}  // namespace mqkit
