// A reader that starts at a time: the first record at or after it, found by
// bisection (a handful of reads, not one per record) across segments.
#include <catch2/catch.hpp>

#include "helpers.hpp"
#include "mqkit/stream_log.hpp"
#include "stream/time_seek.hpp"

namespace md = mqkit::devices::detail;
using mqkit::test::TempDir;

TEST_CASE("a start time is found by bisection in about log2(records) reads", "[stream_device]") {
  TempDir dir;
  mqkit::StreamLogOptions options;
  options.durability = mqkit::Durability::never;
  options.segment_size = 64 * 1024;  // many segments
  mqkit::StreamLog log(dir.file("p0"), options);
  // 20000 records, four per millisecond from t = 1000.
  const std::vector<std::string_view> four(4, std::string_view("record"));
  for (std::uint64_t t = 1000; t < 6000; ++t) log.append_batch(four, t);
  REQUIRE(log.next_offset() == 20000);
  REQUIRE(log.segments() > 4);

  for (const std::uint64_t t : {0, 999, 1000, 1001, 2500, 4321, 5999, 6000, 9999}) {
    INFO("time " << t);
    const std::uint64_t expected = t <= 1000 ? 0 : std::min<std::uint64_t>((t - 1000) * 4, 20000);
    CHECK(md::offset_at_time(log, t) == expected);
    int probes = 0;
    const auto found = md::first_at_or_after(
        0, 20000, t, [&](std::uint64_t offset) -> std::optional<md::TimedOffset> {
          ++probes;
          return md::TimedOffset{offset, 1000 + offset / 4};
        });
    CHECK(found == expected);
    CHECK(probes <= 15);  // log2(20000) rounded up
  }

  // Records that cannot be read are stepped over, not taken for the end.
  const auto found = md::first_at_or_after(
      0, 100, 1010, [&](std::uint64_t offset) -> std::optional<md::TimedOffset> {
        const std::uint64_t at = offset >= 30 && offset < 50 ? 50 : offset;  // 30-49 damaged
        return md::TimedOffset{at, 1000 + at / 4};
      });
  // Inside the damaged run, at or before 40: reading starts there and the log skips to 50.
  CHECK(found >= 30);
  CHECK(found <= 40);
}
