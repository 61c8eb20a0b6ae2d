// Where a reader that starts at a time begins: the first record appended at
// or after that time. Append times only grow within a partition, so this is a
// bisection over the partition's offsets: about log2(records) single-record
// reads, instead of one read per record of the segment that holds the time.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>

#include "mqkit/stream_log.hpp"

namespace mqkit::devices::detail {

// The append time of the record at `offset` or the first readable one after
// it (with the offset it was found at); empty when none up to `end` reads.
struct TimedOffset {
  std::uint64_t offset = 0;
  std::uint64_t time_ms = 0;
};
using TimeProbe = std::function<std::optional<TimedOffset>(std::uint64_t offset)>;

// The first offset in [begin, end) whose probed time is >= time_ms; `end`
// when there is none. Calls `probe` about log2(end - begin) times.
std::uint64_t first_at_or_after(std::uint64_t begin, std::uint64_t end, std::uint64_t time_ms,
                                const TimeProbe& probe);

// The first record of `log` appended at or after `time_ms`; next_offset()
// if none. A record that cannot be read is stepped over.
std::uint64_t offset_at_time(const StreamLog& log, std::uint64_t time_ms);

}  // namespace mqkit::devices::detail
