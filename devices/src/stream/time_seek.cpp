// Bisecting a partition by append time.
#include "stream/time_seek.hpp"

#include "mqkit/error.hpp"

namespace mqkit::devices::detail {

std::uint64_t first_at_or_after(std::uint64_t begin, std::uint64_t end, std::uint64_t time_ms,
                                const TimeProbe& probe) {
  // Invariant: every record before `low` is older than time_ms; the answer is
  // at or before `high`.
  std::uint64_t low = begin, high = end;
  while (low < high) {
    const std::uint64_t middle = low + (high - low) / 2;
    const auto found = probe(middle);
    if (!found || found->offset >= high || found->time_ms >= time_ms)
      high = middle;  // at or after the time (or nothing readable up to high)
    else
      low = found->offset + 1;
  }
  return high;
}

std::uint64_t offset_at_time(const StreamLog& log, std::uint64_t time_ms) {
  const std::uint64_t end = log.next_offset();
  return first_at_or_after(
      log.first_offset(), end, time_ms, [&](std::uint64_t offset) -> std::optional<TimedOffset> {
        // A damaged record: the next few are tried (the log may skip it itself).
        for (std::uint64_t at = offset; at < end && at < offset + 16; ++at) {
          try {
            const auto records = log.read(at, 1);
            if (records.empty()) return std::nullopt;
            return TimedOffset{records.front().offset, records.front().time_ms};
          } catch (const Error&) {
          }
        }
        return std::nullopt;
      });
}

}  // namespace mqkit::devices::detail
