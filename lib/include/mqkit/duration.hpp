// Durations as users write them on the command line and in YAML: "500ms",
// "2s", "1m", "1h", "250us"; a bare number means milliseconds.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mqkit {

// Throws Error(bad_argument) with a message that shows the accepted forms.
std::chrono::milliseconds parse_duration(std::string_view text);
std::string format_duration(std::chrono::milliseconds d);

// Sizes: "4096", "64KiB", "16MiB", "1GiB" (also KB/MB/GB as powers of 1000).
std::uint64_t parse_size(std::string_view text);

// RFC 3339 times: 2026-11-28T10:00:00Z, 2026-11-28T10:00:00.250+01:00 ('t' or
// ' ' for 'T' too): ms since the Unix epoch; nullopt when not one.
std::optional<std::int64_t> parse_utc_time(std::string_view text);

}  // namespace mqkit
