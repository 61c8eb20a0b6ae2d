// Reading the newest ids back from the logs' tails.
#include "stream/recent_ids.hpp"

#include <algorithm>
#include <queue>
#include <utility>

#include "envelope/codec.hpp"
#include "mqkit/error.hpp"

namespace mqkit::devices::detail {
namespace {

namespace md = mqkit::detail;

constexpr std::size_t kReadBytes = 1024 * 1024;  // held at a time (as in one RECORDS batch)

// Calls `visit` with each record of [begin, end) that reads, in order. A
// damaged record is stepped over (its id is gone with it, so a re-send of
// it is stored again: kept, not lost); a read the disk fails (EIO) is
// tried again a few times before that record is left out. A few MiB are
// held at a time, however large the range: only what `visit` keeps stays.
template <typename Visit>
void for_each_readable(const StreamLog& log, std::uint64_t begin, std::uint64_t end,
                       Visit&& visit) {
  constexpr int kReadTries = 4;
  for (std::uint64_t at = begin; at < end;) {
    std::vector<StreamRecord> records;
    bool read = false;
    // A run is read with one pread: when it keeps failing, the record at
    // `at` alone (the bad sector may be further on), and only then is it
    // left out.
    for (int tries = 0; !read && tries < kReadTries + 1; ++tries) {
      try {
        const std::size_t wanted = tries < kReadTries ? static_cast<std::size_t>(end - at) : 1;
        records = log.read(at, wanted, kReadBytes);
        read = true;
      } catch (const Error&) {
      }
    }
    if (!read) {  // the disk keeps failing this one
      ++at;
      continue;
    }
    if (records.empty()) {  // a damaged record here, or the end
      const std::uint64_t damaged = log.damaged_from(at);
      if (damaged == 0) break;
      at += damaged;
      continue;
    }
    at = records.back().offset + 1;
    for (const auto& r : records)
      if (r.offset < end) visit(r);
  }
}

}  // namespace

// The newest ids of all partitions together (newest first by append time,
// however the keys spread them) are read back from the logs' tails, a chunk
// at a time, until the window is full.
std::vector<MessageId> newest_ids(const Partitions& partitions, std::size_t window,
                                  const Limits& limits) {
  std::vector<MessageId> newest_first;
  if (window == 0) return newest_first;
  md::EnvelopeCodec codec;
  Message decoded;
  const std::uint64_t chunk = std::clamp<std::uint64_t>(window / partitions.count(), 16, 4096);
  struct Tail {
    std::uint64_t begin = 0;                                  // read back to here
    std::vector<std::pair<std::uint64_t, MessageId>> newest;  // time, id; newest last
  };
  std::vector<Tail> tails(partitions.count());
  // Refills a partition's tail with the chunk before what was read; false at its start.
  auto refill = [&](std::uint32_t p) {
    Tail& tail = tails[p];
    const StreamLog& log = partitions.log(p);
    while (tail.newest.empty() && tail.begin > log.first_offset()) {
      const std::uint64_t end = tail.begin;
      tail.begin = end - std::min(end - log.first_offset(), chunk);
      for_each_readable(log, tail.begin, end, [&](const StreamRecord& r) {
        if (md::envelope_offset(r.frame) && codec.decode(r.frame, decoded, limits))
          tail.newest.emplace_back(r.time_ms, decoded.id());
      });
    }
    return !tail.newest.empty();
  };
  using Head = std::pair<std::uint64_t, std::uint32_t>;  // time, partition
  std::priority_queue<Head> heads;
  for (std::uint32_t p = 0; p < partitions.count(); ++p) {
    tails[p].begin = partitions.log(p).next_offset();
    if (refill(p)) heads.emplace(tails[p].newest.back().first, p);
  }
  while (newest_first.size() < window && !heads.empty()) {
    const std::uint32_t p = heads.top().second;
    heads.pop();
    newest_first.push_back(tails[p].newest.back().second);
    tails[p].newest.pop_back();
    if (refill(p)) heads.emplace(tails[p].newest.back().first, p);
  }
  return newest_first;
}

}  // namespace mqkit::devices::detail
