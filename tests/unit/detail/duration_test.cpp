// Durations and sizes as users write them.
#include <catch2/catch.hpp>

#include "mqkit/duration.hpp"
#include "mqkit/error.hpp"

using namespace std::chrono_literals;

TEST_CASE("durations parse in every unit", "[duration]") {
  CHECK(mqkit::parse_duration("500ms") == 500ms);
  CHECK(mqkit::parse_duration("2s") == 2000ms);
  CHECK(mqkit::parse_duration("1.5s") == 1500ms);
  CHECK(mqkit::parse_duration("1m") == 60000ms);
  CHECK(mqkit::parse_duration("1h") == 3600000ms);
  CHECK(mqkit::parse_duration("250") == 250ms);
  CHECK(mqkit::parse_duration("1500us") == 2ms);
}

TEST_CASE("bad durations and sizes say what is accepted", "[duration]") {
  for (const char* bad : {"", "fast", "5 s", "-1s", "10parsecs"}) {
    CHECK_THROWS_WITH(mqkit::parse_duration(bad), Catch::Contains("e.g. 500ms"));
  }
  CHECK_THROWS_WITH(mqkit::parse_size("lots"), Catch::Contains("16MiB"));
}

TEST_CASE("sizes parse in binary and decimal units", "[duration]") {
  CHECK(mqkit::parse_size("4096") == 4096);
  CHECK(mqkit::parse_size("64KiB") == 65536);
  CHECK(mqkit::parse_size("16MiB") == 16u * 1024 * 1024);
  CHECK(mqkit::parse_size("1GB") == 1000000000u);
}

TEST_CASE("durations and sizes too large to hold, or not finite, are refused", "[duration]") {
  // The topology fuzzer found a size of 1e92 bytes overflowing the conversion.
  CHECK_THROWS_WITH(mqkit::parse_size("3e92MiB"), Catch::Contains("too large"));
  CHECK_THROWS_WITH(mqkit::parse_duration("1e300h"), Catch::Contains("too long"));
  CHECK_THROWS_WITH(mqkit::parse_size("inf"), Catch::Contains("is not a size"));
  CHECK_THROWS_WITH(mqkit::parse_duration("nan"), Catch::Contains("is not a duration"));
}
