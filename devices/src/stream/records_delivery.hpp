// RecordsDelivery: RECORDS batches from the partitions' logs to the readers,
// each within its reader's credit (records, and bytes: a reader that does not
// read makes the device stop reading the log for it). Where the log cannot
// give a reader what it asked for (a position no longer retained, damaged
// records, a read that fails), the reader is told in a NOTICE and goes on.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "detail/counter.hpp"
#include "mqkit/stream_log.hpp"
#include "router_peers.hpp"
#include "stream/committed_positions.hpp"
#include "stream/cursor.hpp"
#include "stream/partitions.hpp"
#include "stream/readers.hpp"

namespace mqkit::devices::detail {

class RecordsDelivery {
 public:
  static constexpr std::size_t kMaxRecordBatch = 256;  // records in one RECORDS
  static constexpr std::size_t kMaxBatchBytes = 1024 * 1024;
  // What one reader may hold sent and not yet committed, in bytes (its
  // credit caps the records: Readers::kMaxCredit), so that a reader that
  // never reads cannot make the device queue its log in memory.
  static constexpr std::uint64_t kMaxReaderBytes = 8 * 1024 * 1024;

  RecordsDelivery(RouterPeers back, Readers& readers, const Partitions& partitions,
                  CommittedPositions& positions);
  RecordsDelivery(const RecordsDelivery&) = delete;
  RecordsDelivery& operator=(const RecordsDelivery&) = delete;

  // Sends each reader what its credit allows (up to 64 batches each).
  void deliver_all();

  const mqkit::detail::Counter& delivered() const noexcept { return delivered_; }
  const mqkit::detail::Counter& position_resets() const noexcept { return position_resets_; }
  const mqkit::detail::Counter& read_errors() const noexcept { return read_errors_; }
  const mqkit::detail::Counter& damaged_skipped() const noexcept { return damaged_skipped_; }

 private:
  bool deliver_batch(const std::string& identity, Reader& reader);
  bool read_for(const std::string& identity, Cursor& cursor, std::size_t n, std::size_t max_bytes,
                std::vector<StreamRecord>& out);
  bool skip_damaged(const std::string& identity, Reader& reader, Cursor& cursor, std::uint64_t to,
                    const std::string& why = {});
  bool notify(const std::string& identity, std::uint32_t partition, std::uint64_t offset,
              const std::string& why);
  bool reset_to_earliest(const std::string& identity, Reader& reader, Cursor& cursor);

  RouterPeers back_;
  Readers& readers_;
  const Partitions& partitions_;
  CommittedPositions& positions_;
  std::vector<std::string> identities_;
  mqkit::detail::Counter delivered_, position_resets_, read_errors_, damaged_skipped_;
};

}  // namespace mqkit::devices::detail
