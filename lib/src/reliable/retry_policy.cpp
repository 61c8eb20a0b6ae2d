// Backoff arithmetic for the reliable proxy.
#include "mqkit/retry_policy.hpp"

#include <algorithm>

#include "mqkit/duration.hpp"
#include "mqkit/error.hpp"

namespace mqkit {
namespace {

[[noreturn]] void bad_backoff(std::string_view text) {
  throw Error(errc::bad_argument, "'" + std::string(text) +
                                      "' is not a backoff: use fixed:DUR or "
                                      "exponential:INITIAL..MAX, e.g. exponential:100ms..30s");
}

}  // namespace

RetryPolicy RetryPolicy::parse(std::string_view text, std::uint32_t max_attempts) {
  if (max_attempts == 0) throw Error(errc::bad_argument, "max attempts must be at least 1");
  RetryPolicy p;
  p.max_attempts = max_attempts;
  // A bad duration inside a valid form is reported by parse_duration itself.
  if (text.starts_with("fixed:")) {
    p.kind = Kind::fixed;
    p.initial = p.max = parse_duration(text.substr(6));
    return p;
  }
  if (!text.starts_with("exponential:")) bad_backoff(text);
  const auto range = text.substr(12);
  const auto dots = range.find("..");
  if (dots == std::string_view::npos) bad_backoff(text);
  p.kind = Kind::exponential;
  p.initial = parse_duration(range.substr(0, dots));
  p.max = parse_duration(range.substr(dots + 2));
  if (p.initial.count() <= 0 || p.max < p.initial)
    throw Error(errc::bad_argument,
                "'" + std::string(text) + "': INITIAL must be positive and not above MAX");
  return p;
}

std::chrono::milliseconds RetryPolicy::max_delay(std::uint32_t failed_attempt) const {
  if (kind == Kind::fixed) return initial;
  const std::uint32_t doublings =
      std::min<std::uint32_t>(failed_attempt > 0 ? failed_attempt - 1 : 0, 40);
  const auto grown = static_cast<double>(initial.count()) * static_cast<double>(1ull << doublings);
  return std::chrono::milliseconds(
      static_cast<std::int64_t>(std::min(grown, static_cast<double>(max.count()))));
}

std::chrono::milliseconds RetryPolicy::min_delay(std::uint32_t failed_attempt) const {
  const auto d = max_delay(failed_attempt);
  return kind == Kind::fixed ? d : d / 2;
}

std::chrono::milliseconds RetryPolicy::delay(std::uint32_t failed_attempt,
                                             std::mt19937_64& rng) const {
  const auto low = min_delay(failed_attempt).count();
  const auto high = max_delay(failed_attempt).count();
  if (low >= high) return std::chrono::milliseconds(high);
  std::uniform_int_distribution<std::int64_t> pick(low, high);
  return std::chrono::milliseconds(pick(rng));
}

std::string RetryPolicy::to_string() const {
  if (kind == Kind::fixed) return "fixed:" + format_duration(initial);
  return "exponential:" + format_duration(initial) + ".." + format_duration(max);
}

}  // namespace mqkit
