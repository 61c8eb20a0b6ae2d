// Both halves of the start position: the device decoding SUBSCRIBE's `from`
// (StartPosition), and the client turning the user's text into it
// (stream_start_position).
#include "protocol/start_position.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <optional>
#include <string_view>

#include "detail/wall_clock.hpp"
#include "mqkit/duration.hpp"
#include "mqkit/error.hpp"
#include "mqkit/stream_consumer.hpp"

namespace mqkit::detail::protocol {
namespace {

bool parse_number(std::string_view text, std::uint64_t& out) {
  if (text.empty()) return false;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

[[noreturn]] void refuse(const std::string& text) {
  throw Error(errc::bad_argument,
              "start position '" + text + "' is not earliest, latest, @MS, N or P:N[,P:N...]");
}

}  // namespace

StartPosition StartPosition::parse(const std::string& text) {
  StartPosition p;
  if (text.empty() || text == "earliest") return p;
  if (text == "latest") {
    p.kind = Kind::latest;
    return p;
  }
  if (text.front() == '@') {
    p.kind = Kind::time;
    if (!parse_number(std::string_view(text).substr(1), p.value)) refuse(text);
    return p;
  }
  if (text.find(':') == std::string::npos) {
    p.kind = Kind::offset;
    if (!parse_number(text, p.value)) refuse(text);
    return p;
  }
  p.kind = Kind::partitions;
  std::string_view rest(text);
  while (!rest.empty()) {
    const auto comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    const auto colon = item.find(':');
    std::uint64_t partition = 0, offset = 0;
    if (colon == std::string_view::npos || !parse_number(item.substr(0, colon), partition) ||
        !parse_number(item.substr(colon + 1), offset) || partition > UINT32_MAX)
      refuse(text);
    p.offsets[static_cast<std::uint32_t>(partition)] = offset;
    if (comma != std::string_view::npos && rest.empty()) refuse(text);
  }
  return p;
}

std::string StartPosition::text() const {
  switch (kind) {
    case Kind::earliest:
      return "earliest";
    case Kind::latest:
      return "latest";
    case Kind::time:
      return "@" + std::to_string(value);
    case Kind::offset:
      return std::to_string(value);
    case Kind::partitions:
      break;
  }
  std::string out;
  for (const auto& [p, offset] : offsets)
    out += (out.empty() ? "" : ",") + std::to_string(p) + ":" + std::to_string(offset);
  return out;
}

}  // namespace mqkit::detail::protocol

namespace mqkit {
namespace {

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c));
  });
}

std::string at_time(std::int64_t ms) {
  using detail::protocol::StartPosition;
  return StartPosition{.kind = StartPosition::Kind::time, .value = static_cast<std::uint64_t>(ms)}
      .text();
}

}  // namespace

std::string stream_start_position(std::string_view from) {
  if (from.empty() || from == "earliest" || from == "latest" || all_digits(from))
    return from.empty() ? "earliest" : std::string(from);
  if (from.find(':') != std::string_view::npos && from.find('-') == std::string_view::npos) {
    // P:N[,P:N...]: checked by the device, which knows the partitions.
    return std::string(from);
  }
  if (from.front() == '-') {
    const auto ago = parse_duration(from.substr(1));
    const auto now = static_cast<std::int64_t>(detail::now_ms());
    return at_time(std::max<std::int64_t>(now - ago.count(), 0));
  }
  if (auto ms = parse_utc_time(from); ms && *ms >= 0) return at_time(*ms);
  throw Error(errc::bad_argument,
              "start position '" + std::string(from) +
                  "' is not earliest, latest, an offset N, P:N[,P:N...], an RFC 3339 time "
                  "(2026-11-28T10:00:00Z) or a time ago (-10m)");
}

}  // namespace mqkit
