// Partitions: the stream's directory and its logs, one per partition
// (DIR/p0, DIR/p1, ...). Opening it takes the directory's lock, its
// STREAM_ID and its partition count (DIR/PARTITIONS, fixed once the stream
// holds records). Also where a reader's start position begins in each
// partition, and retention.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "detail/counter.hpp"
#include "log/lock_file.hpp"
#include "mqkit/stream_log.hpp"
#include "protocol/start_position.hpp"

namespace mqkit::devices::detail {

class Partitions {
 public:
  // Opens (recovering) every partition of `dir`; `requested` 0: as many as
  // it has (1 for a new stream). Throws Error naming what failed.
  Partitions(const std::string& dir, std::uint32_t requested, const StreamLogOptions& log);
  Partitions(const Partitions&) = delete;
  Partitions& operator=(const Partitions&) = delete;

  std::uint32_t count() const noexcept { return static_cast<std::uint32_t>(logs_.size()); }
  StreamLog& log(std::uint32_t p) { return *logs_[p]; }
  const StreamLog& log(std::uint32_t p) const { return *logs_[p]; }
  const std::string& stream_id() const noexcept { return stream_id_; }
  void announce_admin_endpoint(const std::string& endpoint) { lock_->set_admin_endpoint(endpoint); }

  // Throws Error(bad_argument) for a partition that does not exist or an
  // offset past a partition's end.
  void check_start(const mqkit::detail::protocol::StartPosition& from) const;
  // Where a reader starting at `from` begins in partition `p`.
  std::uint64_t start_of(const mqkit::detail::protocol::StartPosition& from, std::uint32_t p) const;

  // Deletes the segments of `p` retention lets go.
  void apply_retention(std::uint32_t p);
  void apply_retention() {
    for (std::uint32_t p = 0; p < count(); ++p) apply_retention(p);
  }
  const mqkit::detail::Counter& retention_deleted() const noexcept { return retention_deleted_; }

 private:
  std::string partition_dir(std::uint32_t p) const;

  std::string dir_;
  std::optional<mqkit::detail::log::LockFile> lock_;
  std::string stream_id_;  // DIR/STREAM_ID: readers tell a reset stream by it
  std::vector<std::unique_ptr<StreamLog>> logs_;
  mqkit::detail::Counter retention_deleted_, retention_errors_;
};

}  // namespace mqkit::devices::detail
