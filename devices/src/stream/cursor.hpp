// Cursor: one partition a stream reader reads, and what of it the reader
// holds sent and not yet committed (its credit is counted from this).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <utility>

namespace mqkit::devices::detail {

using Clock = std::chrono::steady_clock;

constexpr std::uint64_t kNoOffset = UINT64_MAX;

// One partition a reader reads: `next` is the next offset to send, `acked`
// the offset the reader has processed up to (COMMIT); in between: in flight,
// `sent_bytes` of it in the batches `sent` (their end offsets and sizes).
struct Cursor {
  std::uint32_t partition = 0;
  std::uint64_t next = 0;
  std::uint64_t acked = 0;
  std::deque<std::pair<std::uint64_t, std::uint64_t>> sent;
  std::uint64_t sent_bytes = 0;
  std::uint64_t failed_at = kNoOffset;  // a record that could not be read (reader told)
  Clock::time_point retry_at{};

  Cursor(std::uint32_t p, std::uint64_t at) : partition(p), next(at), acked(at) {}

  void sent_batch(std::size_t records, std::uint64_t bytes) {
    next += records;
    sent.emplace_back(next, bytes);
    sent_bytes += bytes;
  }
  void acked_to(std::uint64_t offset) {
    acked = std::max(acked, offset);
    while (!sent.empty() && sent.front().first <= acked) {
      sent_bytes -= sent.front().second;
      sent.pop_front();
    }
  }
  void move_to(std::uint64_t offset) {  // nothing in flight any more
    next = acked = offset;
    sent.clear();
    sent_bytes = 0;
  }
};

}  // namespace mqkit::devices::detail
