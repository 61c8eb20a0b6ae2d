// Retry delays and the attempt limit.
#include <catch2/catch.hpp>

#include "mqkit/error.hpp"
#include "mqkit/retry_policy.hpp"

using namespace std::chrono_literals;
using mqkit::RetryPolicy;

TEST_CASE("a fixed backoff waits the same every time", "[retry]") {
  const auto p = RetryPolicy::parse("fixed:2s", 3);
  std::mt19937_64 rng(1);
  for (std::uint32_t attempt = 1; attempt < 10; ++attempt) CHECK(p.delay(attempt, rng) == 2000ms);
  CHECK_FALSE(p.exhausted(2));
  CHECK(p.exhausted(3));
  CHECK(p.to_string() == "fixed:2s");
}

TEST_CASE("an exponential backoff doubles up to its cap, with jitter in [d/2, d]", "[retry]") {
  const auto p = RetryPolicy::parse("exponential:100ms..1s");
  std::mt19937_64 rng(7);
  const std::int64_t expected_max[] = {100, 200, 400, 800, 1000, 1000};
  for (std::uint32_t attempt = 1; attempt <= 6; ++attempt) {
    CHECK(p.max_delay(attempt).count() == expected_max[attempt - 1]);
    for (int i = 0; i < 200; ++i) {
      const auto d = p.delay(attempt, rng).count();
      REQUIRE(d >= expected_max[attempt - 1] / 2);
      REQUIRE(d <= expected_max[attempt - 1]);
    }
  }
  CHECK(p.max_delay(1000) == 1000ms);  // no overflow however many attempts
}

TEST_CASE("bad backoffs say which forms are accepted", "[retry]") {
  CHECK_THROWS_WITH(RetryPolicy::parse("linear:1s"), Catch::Contains("exponential:INITIAL..MAX"));
  CHECK_THROWS_WITH(RetryPolicy::parse("exponential:1s"), Catch::Contains("fixed:DUR"));
  CHECK_THROWS_WITH(RetryPolicy::parse("exponential:5s..1s"), Catch::Contains("not above MAX"));
  CHECK_THROWS_WITH(RetryPolicy::parse("fixed:soon"), Catch::Contains("not a duration"));
  CHECK_THROWS_AS(RetryPolicy::parse("fixed:1s", 0), mqkit::Error);
}
