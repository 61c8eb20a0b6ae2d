// Wall-clock time as mqkit stores it (envelopes' created_at, stream append
// times, dead-letter failure times): milliseconds since the Unix epoch, UTC.
#pragma once

#include <chrono>
#include <cstdint>

namespace mqkit::detail {

inline std::uint64_t now_ms() {
  using namespace std::chrono;
  return static_cast<std::uint64_t>(
      duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count());
}

}  // namespace mqkit::detail
