// Parsing of human-written durations and sizes for the CLI and YAML.
#include "mqkit/duration.hpp"

#include <charconv>
#include <cmath>
#include <cstdint>

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

}  // namespace mqkit
