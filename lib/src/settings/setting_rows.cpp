// The parsers and formats shared by the device settings tables.
#include "settings/setting_rows.hpp"

#include "mqkit/error.hpp"
#include "mqkit/topic_filter.hpp"

namespace mqkit::detail {

std::uint64_t parse_positive_integer(const std::string& text) {
  if (!text.empty() && text.size() < 19 &&
      text.find_first_not_of("0123456789") == std::string::npos && std::stoull(text) > 0)
    return std::stoull(text);
  throw Error(errc::bad_argument, "must be a positive integer");
}

std::chrono::milliseconds parse_positive_duration(const std::string& text) {
  const auto d = parse_duration(text);
  if (d.count() <= 0) throw Error(errc::bad_argument, "must be positive, e.g. 1s");
  return d;
}

std::uint64_t parse_segment_size(const std::string& text) {
  const auto size = parse_size(text);
  if (size < 4096) throw Error(errc::bad_argument, "must be at least 4KiB");
  return size;
}

void check_group_name(const std::string& name) {
  if (name.empty() ||
      name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") !=
          std::string::npos)
    throw Error(errc::bad_argument,
                "group name '" + name + "' may only hold letters, digits, '-', '_', '.'");
}

std::pair<std::string, std::vector<std::string>> parse_group(const std::string& text) {
  const auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0)
    throw Error(errc::bad_argument,
                "'" + text + "' must be NAME=FILTER[,FILTER], e.g. email=order.#");
  std::string name = text.substr(0, eq);
  check_group_name(name);
  std::vector<std::string> filters;
  for (std::size_t start = eq + 1; start <= text.size();) {
    const auto comma = text.find(',', start);
    filters.push_back(text.substr(start, comma == std::string::npos ? comma : comma - start));
    (void)TopicFilter(filters.back());  // throws, saying what is wrong with it
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return {std::move(name), std::move(filters)};
}

std::string format_size(std::uint64_t bytes) {
  for (const auto& [unit, factor] :
       {std::pair{"GiB", 1ull << 30}, std::pair{"MiB", 1ull << 20}, std::pair{"KiB", 1ull << 10}})
    if (bytes % factor == 0) return std::to_string(bytes / factor) + unit;
  return std::to_string(bytes);
}

std::string format_durability(Durability durability, std::chrono::milliseconds interval) {
  switch (durability) {
    case Durability::always:
      return "always";
    case Durability::never:
      return "never";
    case Durability::interval:
      return "interval=" + format_duration(interval);
  }
  return {};
}

}  // namespace mqkit::detail
