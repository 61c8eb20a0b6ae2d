// Parsing SUBSCRIBE's `from`.
#include "stream/start_position.hpp"

#include <charconv>

#include "mqkit/error.hpp"

namespace mqkit::devices::detail {
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

}  // namespace mqkit::devices::detail
