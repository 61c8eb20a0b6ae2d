// Where a stream reader starts (docs/stream-protocol.md, `from`), both halves.
// SUBSCRIBE carries `earliest`, `latest`, `@MS` (the first record appended at
// or after MS, ms since the epoch), `N` (offset N in every partition) or
// `P:N[,P:N...]` (those partitions only, from those offsets). The client turns
// the user's text, which may also be an RFC 3339 time or a time ago (`-10m`),
// into that form (mqkit::stream_start_position, mqkit/stream_consumer.hpp,
// defined in start_position.cpp); the device decodes it (StartPosition::parse).
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace mqkit::detail::protocol {

struct StartPosition {
  enum class Kind { earliest, latest, time, offset, partitions };
  Kind kind = Kind::earliest;
  std::uint64_t value = 0;                         // time, offset
  std::map<std::uint32_t, std::uint64_t> offsets;  // partitions: partition -> offset

  // Empty `text` is `earliest`. Throws Error(bad_argument) saying what is wrong.
  static StartPosition parse(const std::string& text);
  // The form SUBSCRIBE carries, which parse() reads back.
  std::string text() const;
};

}  // namespace mqkit::detail::protocol
