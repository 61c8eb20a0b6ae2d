// StreamLog: one partition of a stream (issue 7's durable, ordered,
// replayable log). Records are appended with strictly increasing offsets and
// their append time, in segment files named by their first offset
// (00000000000000000000.log, ...) written by the segment-log engine the
// spool uses (lib/src/log/: a 16-byte header, then length + CRC32C + type +
// body per record). Reopening recovers every complete record and cuts a torn
// tail; a damaged record is skipped and its offset is never given again.
// Retention deletes whole old segments (by size and by age), never the one
// being written.
//
// Not thread-safe: one owner (a stream device's writer thread) appends and
// reads. A directory has one owner process at a time (a flock'ed LOCK file).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mqkit/spool.hpp"

namespace mqkit {

struct StreamLogOptions {
  Durability durability = Durability::always;        // always: fdatasync per append_batch
  std::chrono::milliseconds sync_interval{10};       // interval: fdatasync at least this often
  std::uint64_t segment_size = 64ull * 1024 * 1024;  // a new segment starts past this
  std::uint64_t retain_bytes = 0;                    // 0: no size limit
  std::chrono::milliseconds retain_age{0};           // 0: no age limit
  std::uint64_t max_record_size = 16ull * 1024 * 1024 + 64 * 1024;
  // The file I/O seam (lib/src/log/env.hpp); null: the real file system.
  detail::log::Env* env = nullptr;
};

struct StreamRecord {
  std::uint64_t offset = 0;
  std::uint64_t time_ms = 0;  // append time, ms since the Unix epoch
  std::string frame;          // the mqkit frame: topic, envelope, payload
};

class StreamLog {
 public:
  // Opens DIR (creating it), recovers its records. Throws Error when DIR is
  // owned by another process or cannot be read.
  StreamLog(const std::string& dir, const StreamLogOptions& options = {});
  ~StreamLog();
  StreamLog(const StreamLog&) = delete;
  StreamLog& operator=(const StreamLog&) = delete;

  // Appends the frames in order with one write (and one fdatasync under
  // `always`); returns the offset of the first. Throws Error on I/O failure
  // (a full disk: errc ENOSPC, and appends work again once space returns),
  // having appended none of them.
  std::uint64_t append_batch(const std::vector<std::string_view>& frames,
                             std::uint64_t time_ms = 0);  // 0: now
  std::uint64_t append(std::string_view frame, std::uint64_t time_ms = 0) {
    return append_batch({frame}, time_ms);
  }

  // Up to `max_records` records (and about `max_bytes`) from `offset` on, in
  // order and contiguous: it stops before a damaged record (see
  // damaged_from). Empty at the end. Throws Error(bad_argument) for an
  // offset before the first retained one or past the end, and Error with
  // the errno when the disk fails the read (EIO) before any record was read:
  // try again later. Never for damage.
  std::vector<StreamRecord> read(std::uint64_t offset, std::size_t max_records,
                                 std::size_t max_bytes = 16 * 1024 * 1024) const;

  // How many records from `offset` on cannot be read (damaged on disk, or
  // lost to corruption at recovery): a reader skips them and tells its
  // consumer why (`why`). 0 when the record at `offset` reads fine, and
  // when the disk fails to read it (that is not damage: it is not skipped).
  std::uint64_t damaged_from(std::uint64_t offset, std::string* why = nullptr) const;

  // Under `interval`: syncs now if the interval has passed since the first
  // unsynced append (an owner calls this from its loop when idle). Throws
  // Error when the sync fails; appends then fail until one succeeds.
  void sync_if_due();

  std::uint64_t first_offset() const noexcept;  // the oldest retained record
  std::uint64_t next_offset() const noexcept;   // what the next append gets
  // What readers may be given: under `interval`, the records synced so far
  // (a power loss may take the others back, and their offsets go to the
  // next records: an offset once read must never hold another record);
  // otherwise next_offset().
  std::uint64_t readable_end() const noexcept;
  // The first record appended at or after `time_ms`; next_offset() if none.
  std::uint64_t offset_at(std::uint64_t time_ms) const noexcept;

  // Deletes whole segments past the retention limits (never the active one).
  // Returns how many records went.
  std::uint64_t enforce_retention(std::uint64_t now_ms = 0);

  std::uint64_t bytes() const noexcept;
  std::size_t segments() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mqkit
