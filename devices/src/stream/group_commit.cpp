// The stream's group commit.
#include "stream/group_commit.hpp"

#include "mqkit/devices/stream.hpp"
#include "mqkit/error.hpp"
#include "publish_intake.hpp"

namespace mqkit::devices {

std::uint32_t partition_of_key(std::string_view key, std::uint32_t partitions) noexcept {
  std::uint64_t hash = 14695981039346656037ull;  // FNV-1a 64
  for (const char c : key) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 1099511628211ull;
  }
  return partitions == 0 ? 0 : static_cast<std::uint32_t>(hash % partitions);
}

namespace detail {

using mqkit::detail::protocol::ConfirmStatus;

GroupCommit::GroupCommit(Partitions& partitions, const StreamLogOptions& log)
    : partitions_(partitions), log_(log), pending_(partitions.count()) {}

void GroupCommit::add(const std::optional<std::string>& key, std::string_view frame,
                      const MessageId& id) {
  const std::uint32_t partitions = partitions_.count();
  const std::uint32_t p =
      key ? partition_of_key(*key, partitions) : static_cast<std::uint32_t>(spread_++ % partitions);
  pending_[p].frames.push_back(frame);
  pending_[p].ids.push_back(id);
}

// Under interval=D: the logs whose first unsynced append is D old are
// synced now (an append does so itself; this covers an idle device). A
// failed sync makes that log's appends fail until one succeeds, so the
// producers hear it in their confirms.
void GroupCommit::sync_due() {
  if (log_.durability != Durability::interval) return;
  for (std::uint32_t p = 0; p < partitions_.count(); ++p) {
    try {
      partitions_.log(p).sync_if_due();
    } catch (const Error&) {  // tried again next turn
    }
  }
}

// The group commit: one append (one write, one sync) per partition.
void GroupCommit::append(PublishIntake& intake) {
  for (std::uint32_t p = 0; p < pending_.size(); ++p) {
    PendingAppend& batch = pending_[p];
    if (batch.frames.empty()) continue;
    try {
      StreamLog& log = partitions_.log(p);
      log.append_batch(batch.frames);
      appended_.add(batch.frames.size());
      // Over the size limit: the oldest segments go now, not at the next tick.
      if (log_.retain_bytes > 0 && log.bytes() > log_.retain_bytes) partitions_.apply_retention(p);
      for (const auto& id : batch.ids) intake.settle(id, ConfirmStatus::stored, "");
    } catch (const Error& e) {
      // Nothing of the batch was appended: the producers may send again.
      const std::string why = "partition " + std::to_string(p) + " could not store it: " + e.what();
      for (const auto& id : batch.ids) intake.settle(id, ConfirmStatus::rejected, why);
    }
    batch.frames.clear();
    batch.ids.clear();
  }
}

}  // namespace detail
}  // namespace mqkit::devices
