// GroupCommit: the PUBLISHes of one loop turn, gathered per partition and
// appended in one write (and one fdatasync under `always`) per partition
// before any of them is confirmed. A record with a key goes to the partition
// its key hashes to (partition_of_key); records without one are spread
// round-robin.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "detail/counter.hpp"
#include "mqkit/message_id.hpp"
#include "mqkit/stream_log.hpp"
#include "stream/partitions.hpp"

namespace mqkit::devices::detail {

class PublishIntake;

class GroupCommit {
 public:
  GroupCommit(Partitions& partitions, const StreamLogOptions& log);

  // A record new to the stream joins its partition's commit. `frame` must
  // stay valid until append() (a view into the intake's frames of the turn).
  void add(const std::optional<std::string>& key, std::string_view frame, const MessageId& id);
  // The group commit: one append per partition with records; each record is
  // settled with the intake (stored, or rejected with why).
  void append(PublishIntake& intake);
  // Under interval=D: syncs the logs whose first unsynced append is D old.
  void sync_due();

  const mqkit::detail::Counter& appended() const noexcept { return appended_; }

 private:
  // One partition's records waiting for this turn's group commit.
  struct PendingAppend {
    std::vector<std::string_view> frames;  // views into the intake's frames of this turn
    std::vector<MessageId> ids;            // theirs, to settle
  };

  Partitions& partitions_;
  StreamLogOptions log_;
  std::vector<PendingAppend> pending_;
  std::uint64_t spread_ = 0;  // round-robin for records without a key
  mqkit::detail::Counter appended_;
};

}  // namespace mqkit::devices::detail
