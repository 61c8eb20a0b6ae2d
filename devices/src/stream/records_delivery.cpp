// Delivering RECORDS batches to the stream's readers.
#include "stream/records_delivery.hpp"

#include <algorithm>

#include "mqkit/error.hpp"
#include "protocol/records_batch.hpp"
#include "router_peers.hpp"

namespace mqkit::devices::detail {
namespace {

using namespace mqkit::detail::protocol;

constexpr auto kReadRetryEvery = std::chrono::seconds(1);  // a record that could not be read

}  // namespace

RecordsDelivery::RecordsDelivery(RouterPeers back, Readers& readers, const Partitions& partitions,
                                 CommittedPositions& positions)
    : back_(back), readers_(readers), partitions_(partitions), positions_(positions) {}

void RecordsDelivery::deliver_all() {
  // Delivering may lose a reader (and rebalance others): walk a copy of the keys.
  readers_.identities(identities_);
  for (const auto& identity : identities_) {
    for (int batches = 0; batches < 64; ++batches) {
      Reader* reader = readers_.find(identity);
      if (reader == nullptr || !deliver_batch(identity, *reader)) break;
    }
  }
}

// Sends one RECORDS batch from the next partition with records to send;
// false when there is nothing to send or no credit (records, or bytes: a
// reader that does not read makes the device stop reading the log for it).
bool RecordsDelivery::deliver_batch(const std::string& identity, Reader& reader) {
  const std::uint64_t in_flight = reader.in_flight();
  if (in_flight >= reader.window || reader.cursors.empty()) return false;
  const std::uint64_t in_flight_bytes = reader.in_flight_bytes();
  if (in_flight > 0 && in_flight_bytes >= kMaxReaderBytes) return false;
  for (std::size_t tried = 0; tried < reader.cursors.size(); ++tried) {
    Cursor& cursor = reader.cursors[reader.next_cursor++ % reader.cursors.size()];
    const StreamLog& log = partitions_.log(cursor.partition);
    if (cursor.next < log.first_offset() && !reset_to_earliest(identity, reader, cursor))
      return false;  // the reader is gone
    if (cursor.next >= log.readable_end()) continue;
    if (cursor.failed_at == cursor.next && Clock::now() < cursor.retry_at) continue;
    const std::size_t n = static_cast<std::size_t>(
        std::min<std::uint64_t>(reader.window - in_flight, kMaxRecordBatch));
    const std::size_t max_bytes = static_cast<std::size_t>(std::max<std::uint64_t>(
        std::min<std::uint64_t>(kMaxBatchBytes,
                                kMaxReaderBytes - std::min(in_flight_bytes, kMaxReaderBytes)),
        1));
    std::vector<StreamRecord> records;
    if (!read_for(identity, cursor, n, max_bytes, records)) return false;  // the reader is gone
    if (records.empty()) {
      // The log stops before a damaged record: once the reader holds
      // nothing before it, it is told and steps over the damaged run.
      if (cursor.failed_at == cursor.next || cursor.acked < cursor.next) continue;
      std::string why;
      const std::uint64_t damaged = log.damaged_from(cursor.next, &why);
      if (damaged == 0) continue;
      if (!skip_damaged(identity, reader, cursor, cursor.next + damaged, why)) return false;
      return true;
    }
    if (records.front().offset > cursor.next) {
      // The log skipped damaged records here: once the reader holds nothing
      // before them, it is told and goes on after them.
      if (cursor.acked < cursor.next) continue;
      if (!skip_damaged(identity, reader, cursor, records.front().offset)) return false;
    }
    std::size_t run = 1;  // one batch is consecutive offsets
    while (run < records.size() && records[run].offset == records[run - 1].offset + 1) ++run;
    records.resize(run);
    const auto encoded = encode_command(records_command(cursor.partition, records));
    const std::size_t bytes = records_frame_size(records);
    const Sent sent = back_.send_with_frame(identity, encoded, bytes, [&](char* frame) {
      pack_records_frame(records, {frame, bytes});
    });
    if (sent == Sent::busy) return false;  // its queue is full for now
    if (sent == Sent::gone) {
      readers_.lose(identity);
      return false;
    }
    cursor.sent_batch(records.size(), bytes);
    delivered_.add(records.size());
    return true;
  }
  return false;
}

// Reads the next records for a cursor. A read that fails is contained to
// this reader: the records before the one that does not read still go;
// at that one the reader is told (once) and it is tried again every
// second, while the device and its other readers go on. False when the
// reader turned out to be gone.
bool RecordsDelivery::read_for(const std::string& identity, Cursor& cursor, std::size_t n,
                               std::size_t max_bytes, std::vector<StreamRecord>& out) {
  const StreamLog& log = partitions_.log(cursor.partition);
  try {
    out = log.read(cursor.next, n, max_bytes);
    while (!out.empty() && out.back().offset >= log.readable_end()) out.pop_back();
    return true;
  } catch (const Error& e) {
    out.clear();
    std::string why = e.what();
    for (std::uint64_t at = cursor.next; out.size() < n && at < log.readable_end(); ++at) {
      try {
        auto one = log.read(at, 1);
        if (one.empty() || (!out.empty() && one.front().offset != out.back().offset + 1)) break;
        at = one.front().offset;
        out.push_back(std::move(one.front()));
      } catch (const Error& single) {
        why = single.what();
        break;
      }
    }
    if (!out.empty()) return true;
    cursor.retry_at = Clock::now() + kReadRetryEvery;
    if (cursor.failed_at == cursor.next) return true;  // told already
    cursor.failed_at = cursor.next;
    read_errors_.add();
    return notify(identity, cursor.partition, cursor.next,
                  "the record at offset " + std::to_string(cursor.next) + " of partition " +
                      std::to_string(cursor.partition) + " cannot be read (" + why +
                      "); reading this partition stops there and is tried again every second");
  }
}

// The log left out damaged records before `to`: the reader is told and
// goes on from `to` (for a name, that becomes its position). `why`: the
// log's reason, when it gave one.
bool RecordsDelivery::skip_damaged(const std::string& identity, Reader& reader, Cursor& cursor,
                                   std::uint64_t to, const std::string& why) {
  const std::uint64_t from = cursor.next;
  damaged_skipped_.add(to - from);
  cursor.move_to(to);
  if (!reader.name.empty()) positions_.advance(reader.name, cursor.partition, to);
  const bool one = to - from == 1;
  return notify(
      identity, cursor.partition, to,
      (one ? "the record at offset " + std::to_string(from)
           : "the records at offsets " + std::to_string(from) + "-" + std::to_string(to - 1)) +
          " of partition " + std::to_string(cursor.partition) +
          (one ? " is damaged" : " are damaged") + (why.empty() ? "" : " (" + why + ")") +
          (one ? " and was" : " and were") + " skipped; reading on from offset " +
          std::to_string(to));
}

// Sends a NOTICE; false when the reader turned out to be gone (and was lost).
bool RecordsDelivery::notify(const std::string& identity, std::uint32_t partition,
                             std::uint64_t offset, const std::string& why) {
  const auto encoded = encode_command(
      {.command = Command::notice, .reason = why, .partition = partition, .offset = offset});
  if (back_.send(identity, encoded) != Sent::gone) return true;
  readers_.lose(identity);
  return false;
}

// The reader's position is no longer retained: say so and go on from the
// earliest record there is. False when the reader turned out to be gone
// (and was lost: `reader` and `cursor` are no more).
bool RecordsDelivery::reset_to_earliest(const std::string& identity, Reader& reader,
                                        Cursor& cursor) {
  const std::uint64_t first = partitions_.log(cursor.partition).first_offset();
  const std::string why = "offset " + std::to_string(cursor.next) + " of partition " +
                          std::to_string(cursor.partition) +
                          " is no longer retained; reading on from the earliest retained "
                          "record, offset " +
                          std::to_string(first);
  position_resets_.add();
  cursor.move_to(first);
  if (!reader.name.empty()) positions_.set(reader.name, cursor.partition, first);
  return notify(identity, cursor.partition, first, why);
}

}  // namespace mqkit::devices::detail
