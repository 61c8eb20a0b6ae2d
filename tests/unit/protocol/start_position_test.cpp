// Start positions, both halves: the client's text forms become what
// SUBSCRIBE carries, which the device reads back; anything else is refused
// saying which forms there are.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <map>

#include "mqkit/stream_consumer.hpp"
#include "protocol/start_position.hpp"

using mqkit::detail::protocol::StartPosition;

TEST_CASE("start positions parse and refuse clearly", "[protocol]") {
  CHECK(StartPosition::parse("").kind == StartPosition::Kind::earliest);
  CHECK(StartPosition::parse("latest").kind == StartPosition::Kind::latest);
  CHECK(StartPosition::parse("@1700000000000").value == 1700000000000);
  CHECK(StartPosition::parse("42").value == 42);
  const auto p = StartPosition::parse("0:5,3:7");
  CHECK(p.offsets == std::map<std::uint32_t, std::uint64_t>{{0, 5}, {3, 7}});
  for (const char* bad : {"soon", "@", "1:", ":1", "0:5,", "-3", "@x"})
    CHECK_THROWS_WITH(StartPosition::parse(bad), Catch::Contains("is not earliest, latest"));

  CHECK(mqkit::stream_start_position("2026-11-28T10:00:00Z") == "@1795860000000");
  CHECK(mqkit::stream_start_position("2026-11-28T11:00:00.250+01:00") == "@1795860000250");
  CHECK(mqkit::stream_start_position("7") == "7");
  CHECK(mqkit::stream_start_position("1:7") == "1:7");
  const auto ago = mqkit::stream_start_position("-10m");
  REQUIRE(ago.front() == '@');
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  CHECK(std::abs(now_ms - 600000 - std::stoll(ago.substr(1))) < 5000);
  CHECK_THROWS_WITH(mqkit::stream_start_position("2026-13-01T00:00:00Z"),
                    Catch::Contains("RFC 3339"));
  CHECK_THROWS_WITH(mqkit::stream_start_position("yesterday"), Catch::Contains("RFC 3339"));
}

TEST_CASE("start positions read back what they are written as", "[protocol]") {
  using Kind = StartPosition::Kind;
  for (const auto& p : {StartPosition{}, StartPosition{.kind = Kind::latest},
                        StartPosition{.kind = Kind::time, .value = 1795860000250},
                        StartPosition{.kind = Kind::offset, .value = 42},
                        StartPosition{.kind = Kind::partitions, .offsets = {{0, 5}, {3, 7}}}}) {
    const auto back = StartPosition::parse(p.text());
    CHECK(back.kind == p.kind);
    CHECK(back.value == p.value);
    CHECK(back.offsets == p.offsets);
  }
  CHECK(StartPosition{.kind = Kind::partitions, .offsets = {{0, 5}, {3, 7}}}.text() == "0:5,3:7");
  CHECK(StartPosition{.kind = Kind::time, .value = 17}.text() == "@17");
}
