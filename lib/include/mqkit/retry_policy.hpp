// RetryPolicy: how long the reliable proxy waits before redelivering a
// message that failed (a NACK retry, an ack timeout or a lost worker), and
// after how many deliveries it gives up and dead-letters the message.
//   fixed:DUR                  every retry waits DUR
//   exponential:INITIAL..MAX   INITIAL, 2x, 4x, ... capped at MAX, each with
//                              "equal jitter": uniform in [d/2, d]
#pragma once

#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>

namespace mqkit {

struct RetryPolicy {
  enum class Kind { fixed, exponential };
  Kind kind = Kind::exponential;
  std::chrono::milliseconds initial{1000};
  std::chrono::milliseconds max{60000};
  std::uint32_t max_attempts = 5;  // deliveries before the message is dead-lettered

  // Parses the --backoff spelling; throws Error(bad_argument) saying the forms.
  static RetryPolicy parse(std::string_view backoff, std::uint32_t max_attempts = 5);

  // The delay before the next delivery, after `failed_attempt` (1-based) failed.
  std::chrono::milliseconds delay(std::uint32_t failed_attempt, std::mt19937_64& rng) const;
  // The bounds delay() stays within, for callers that show or test them.
  std::chrono::milliseconds min_delay(std::uint32_t failed_attempt) const;
  std::chrono::milliseconds max_delay(std::uint32_t failed_attempt) const;

  bool exhausted(std::uint32_t deliveries) const noexcept { return deliveries >= max_attempts; }
  std::string to_string() const;
};

}  // namespace mqkit
