// The spool's part of the segment-log format (lib/src/log/format.hpp holds
// the framing both logs share): how segments are named. The prose
// specification is docs/spool-format.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "log/env.hpp"
#include "log/format.hpp"

namespace mqkit::detail::spool {

using namespace mqkit::detail::log;  // the shared format, under its old home too

inline constexpr const char* kSegmentSuffix = ".seg";  // 00000001.seg, 00000002.seg, ...
inline constexpr const char* kLockFile = "LOCK";

std::string segment_name(std::uint32_t number);  // 00000001.seg
// Segment numbers present in `dir`, ascending. Throws Error if unreadable.
std::vector<std::uint32_t> list_segments(const std::string& dir, Env& env = Env::posix());

}  // namespace mqkit::detail::spool
