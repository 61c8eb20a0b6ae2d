// read_spool: the lock-free, read-only view of a spool for dump, check and
// `dlq ls/show`. A torn tail is where a live writer is still writing: the
// reader stops there without calling it corruption.
#include "log/segment_reader.hpp"
#include "mqkit/error.hpp"
#include "mqkit/spool.hpp"
#include "spool/records.hpp"
#include "spool/spool_index.hpp"

namespace mqkit {

using namespace detail::spool;
using namespace detail::log;

SpoolContents read_spool(const std::string& dir, std::uint64_t max_record_size) {
  SpoolContents out;
  SpoolIndex index;
  std::map<std::pair<MessageId, std::string>, StoredMessage> dead_letters;  // per (id, group)
  const auto numbers = list_segments(dir);
  for (const std::uint32_t number : numbers) {
    const std::string name = segment_name(number);
    const bool last = number == numbers.back();
    SegmentReader reader(dir + "/" + name, max_record_size);
    const ScanReport scan = reader.scan([&](const RecordView& r) {
      auto d = decode_record(r.type, r.body);
      if (!d) {
        ++out.report.corrupt_records;
        out.report.problems.push_back(name + ": record at offset " + std::to_string(r.offset) +
                                      " has a valid CRC but an unreadable body");
        return;
      }
      index.apply(*d, {number, static_cast<std::uint32_t>(r.offset), r.size});
      SpoolRecord rec;
      rec.type = record_type_name(r.type);
      rec.segment = name;
      rec.offset = r.offset;
      rec.id = d->id;
      rec.groups = d->groups;
      rec.seq = d->seq;
      rec.frame = std::string(d->frame);
      rec.reason = d->reason;
      rec.last_error = d->last_error;
      rec.attempts = d->attempts;
      if (r.type == RecordType::dead_letter) {
        rec.dead_letter = DeadLetterInfo{d->groups.front(),   d->reason,          d->attempts,
                                         d->first_failure_ms, d->last_failure_ms, d->last_error};
        dead_letters[{d->id, d->one_group()}] =
            StoredMessage{d->id, d->seq, d->groups, rec.frame, rec.dead_letter};
      } else if (r.type == RecordType::tombstone) {
        dead_letters.erase({d->id, d->one_group()});
      }
      out.records.push_back(std::move(rec));
    });
    ++out.report.segments;
    out.report.records += scan.records;
    out.report.corrupt_records += scan.corrupt_records;
    out.report.corrupt_bytes += scan.corrupt_bytes;
    if (reader.header_state() == HeaderState::damaged) {
      ++out.report
            .corrupt_records;  // a bad header byte: corruption, records read where they check out
      out.report.torn_tail_bytes += scan.torn_tail_bytes;
    } else if (reader.header_state() == HeaderState::incomplete && !last) {
      // Unreadable in the middle: corruption. On the last segment it may be
      // a writer that has just created the file.
      ++out.report.corrupt_records;
      out.report.corrupt_bytes += reader.file_size();
    } else {
      out.report.torn_tail_bytes += scan.torn_tail_bytes;
    }
    out.report.problems.insert(out.report.problems.end(), scan.problems.begin(),
                               scan.problems.end());
    out.bytes += reader.file_size();
  }
  out.pending = index.pending_counts();
  for (auto& [id, m] : dead_letters) out.dead_letters.push_back(std::move(m));
  std::sort(out.dead_letters.begin(), out.dead_letters.end(),
            [](const auto& a, const auto& b) { return a.seq < b.seq; });
  return out;
}

}  // namespace mqkit
