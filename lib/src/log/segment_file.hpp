// SegmentFile: one segment open for appends, through the Env seam. Both the
// spool and the stream log write through it: a new segment gets a salted
// header that is synced (and its directory entry, so the file survives a
// power loss) before anything is appended; appends are cut back on failure,
// so a failed append leaves nothing behind. Owned by one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "log/env.hpp"
#include "log/format.hpp"

namespace mqkit::detail::log {

class SegmentFile {
 public:
  // Creates (or empties) `path` with a fresh header. With `durable`, syncs
  // the header and the directory. Returns 0 or an errno (and removes the file).
  static int create(Env& env, const std::string& path, bool durable,
                    std::unique_ptr<SegmentFile>& out);
  // Opens an existing segment to append after its first `size` bytes, with
  // the CRC seed its header gives.
  static int open(Env& env, const std::string& path, std::uint64_t size, std::uint32_t seed,
                  std::unique_ptr<SegmentFile>& out);

  // Writes `bytes` at the end. On failure the file is cut back to its size
  // before the call and the errno returned.
  int append(std::string_view bytes);
  int sync();  // fdatasync; 0 or errno
  // Cuts the file to `size` (an earlier end) and syncs that.
  int cut_to(std::uint64_t size);

  // Takes back everything after `size`: a truncate, or when that fails,
  // zeros over it (never a record). Does not sync. 0 or errno.
  int discard_after(std::uint64_t size);

  std::uint64_t size() const noexcept { return size_; }
  std::uint32_t seed() const noexcept { return seed_; }
  const std::string& path() const noexcept { return path_; }
  File& file() noexcept { return *file_; }

 private:
  SegmentFile(std::unique_ptr<File> file, std::string path, std::uint64_t size, std::uint32_t seed)
      : file_(std::move(file)), path_(std::move(path)), size_(size), seed_(seed) {}
  std::unique_ptr<File> file_;
  std::string path_;
  std::uint64_t size_;
  std::uint32_t seed_;
};

// When an `interval` log must sync next: after its first unsynced write,
// at most `interval` later.
class SyncDeadline {
 public:
  using Clock = std::chrono::steady_clock;
  void wrote() noexcept { dirty_ = true; }
  void synced() noexcept {
    dirty_ = false;
    last_ = Clock::now();
  }
  bool dirty() const noexcept { return dirty_; }
  bool due(std::chrono::milliseconds interval) const noexcept {
    return dirty_ && Clock::now() - last_ >= interval;
  }
  Clock::time_point next(std::chrono::milliseconds interval) const noexcept {
    return last_ + interval;
  }

 private:
  bool dirty_ = false;
  Clock::time_point last_ = Clock::now();
};

}  // namespace mqkit::detail::log
