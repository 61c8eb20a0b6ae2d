// The stats request and reply on a device's stats endpoint (REQ/REP), in
// msgpack, with the same magic-and-version rule as the envelope:
//   request: ["MQK", 1, 0, "stats"]
//   reply:   ["MQK", 1, 0, "ok", device, {counter: value, ...}]
//            ["MQK", 1, 0, "error", "what is wrong"]
#pragma once

#include <string>
#include <string_view>

#include "mqkit/devices/stats.hpp"

namespace mqkit::devices::detail {

std::string encode_stats_request();
// Empty when `request` is a valid stats request, else what is wrong with it.
std::string check_stats_request(std::string_view request);
std::string encode_stats_reply(const DeviceStats& stats);
std::string encode_error_reply(std::string_view error);
// Throws Error(malformed) or, for an error reply, Error(bad_argument) with its text.
DeviceStats decode_stats_reply(std::string_view reply);

}  // namespace mqkit::devices::detail
