// Parsing of human-written durations and sizes for the CLI and YAML.
#include "mqkit/duration.hpp"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <ctime>

#include "mqkit/error.hpp"

namespace mqkit {
namespace {

// Splits "250ms" into 250 and "ms"; false when there is no leading number.
bool split_number(std::string_view text, double& number, std::string_view& unit) {
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, number);
  // Infinity and NaN parse as numbers too; neither is a duration or a size.
  if (ec != std::errc() || !std::isfinite(number) || number < 0) return false;
  unit = std::string_view(ptr, static_cast<std::size_t>(end - ptr));
  return true;
}

}  // namespace

std::chrono::milliseconds parse_duration(std::string_view text) {
  double n = 0;
  std::string_view unit;
  if (split_number(text, n, unit)) {
    double ms = -1;
    if (unit.empty() || unit == "ms")
      ms = n;
    else if (unit == "us")
      ms = n / 1000;
    else if (unit == "s")
      ms = n * 1000;
    else if (unit == "m")
      ms = n * 60'000;
    else if (unit == "h")
      ms = n * 3'600'000;
    else if (unit == "d")
      ms = n * 86'400'000;
    // Beyond ~292 million years the milliseconds no longer fit (found by the
    // topology fuzzer): refuse instead of overflowing.
    if (ms >= 0 && ms < 9.2e18)
      return std::chrono::milliseconds(static_cast<std::int64_t>(ms + 0.5));
    if (ms >= 0)
      throw Error(errc::bad_argument, "'" + std::string(text) + "' is too long a duration");
  }
  throw Error(errc::bad_argument,
              "'" + std::string(text) +
                  "' is not a duration: use a number with us, ms, s, m, h or d, "
                  "e.g. 500ms or 2s");
}

std::string format_duration(std::chrono::milliseconds d) {
  const auto ms = d.count();
  if (ms % 1000 != 0 || ms == 0) return std::to_string(ms) + "ms";
  return std::to_string(ms / 1000) + "s";
}

std::uint64_t parse_size(std::string_view text) {
  double n = 0;
  std::string_view unit;
  if (split_number(text, n, unit)) {
    double factor = -1;
    if (unit.empty() || unit == "B")
      factor = 1;
    else if (unit == "KiB")
      factor = 1024.0;
    else if (unit == "MiB")
      factor = 1024.0 * 1024;
    else if (unit == "GiB")
      factor = 1024.0 * 1024 * 1024;
    else if (unit == "KB" || unit == "kB")
      factor = 1e3;
    else if (unit == "MB")
      factor = 1e6;
    else if (unit == "GB")
      factor = 1e9;
    if (factor > 0 && n * factor < 1.8e19) return static_cast<std::uint64_t>(n * factor);
    if (factor > 0)  // found by the topology fuzzer
      throw Error(errc::bad_argument, "'" + std::string(text) + "' is too large a size");
  }
  throw Error(errc::bad_argument, "'" + std::string(text) +
                                      "' is not a size: use bytes or a number with KiB, MiB, GiB, "
                                      "e.g. 16MiB");
}

std::optional<std::int64_t> parse_utc_time(std::string_view text) {
  int year, month, day, hour, minute, second, used = 0;
  const std::string s(text);
  if (std::sscanf(s.c_str(), "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &year, &month, &day, &hour,
                  &minute, &second, &used) != 6 ||
      used != 19)
    return std::nullopt;
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60)
    return std::nullopt;
  std::string_view rest = text.substr(19);
  std::int64_t millis = 0;
  if (!rest.empty() && rest.front() == '.') {
    std::size_t digits = 1;
    while (digits < rest.size() && std::isdigit(static_cast<unsigned char>(rest[digits]))) ++digits;
    if (digits == 1) return std::nullopt;
    for (std::size_t i = 1; i < 4; ++i) millis = millis * 10 + (i < digits ? rest[i] - '0' : 0);
    rest.remove_prefix(digits);
  }
  std::int64_t offset_minutes = 0;
  if (rest == "Z" || rest == "z") {
  } else if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':') {
    int oh = 0, om = 0;
    if (std::from_chars(rest.data() + 1, rest.data() + 3, oh).ec != std::errc() ||
        std::from_chars(rest.data() + 4, rest.data() + 6, om).ec != std::errc())
      return std::nullopt;
    offset_minutes = (rest[0] == '+' ? 1 : -1) * (oh * 60 + om);
  } else {
    return std::nullopt;
  }
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  const std::int64_t seconds = static_cast<std::int64_t>(timegm(&tm)) - offset_minutes * 60;
  return seconds * 1000 + millis;
}

}  // namespace mqkit
