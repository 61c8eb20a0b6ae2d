// Where a stream reader starts, as SUBSCRIBE carries it: `earliest`,
// `latest`, `@MS` (the first record appended at or after MS, ms since the
// epoch), `N` (offset N in every partition) or `P:N[,P:N...]` (those
// partitions only, from those offsets). Clients turn RFC 3339 and relative
// times (`-10m`) into `@MS` before sending.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace mqkit::devices::detail {

struct StartPosition {
  enum class Kind { earliest, latest, time, offset, partitions };
  Kind kind = Kind::earliest;
  std::uint64_t value = 0;                         // time, offset
  std::map<std::uint32_t, std::uint64_t> offsets;  // partitions: partition -> offset

  // Empty `text` is `earliest`. Throws Error(bad_argument) saying what is wrong.
  static StartPosition parse(const std::string& text);
};

}  // namespace mqkit::devices::detail
