// The stats request and reply on a device's stats endpoint (REQ clients, a ROUTER in the device),
// in msgpack, with the same magic-and-version rule as the envelope:
//   request: ["MQK", 1, 0, "stats"]
//   reply:   ["MQK", 1, 0, "ok", device, {counter: value, ...}]
//            ["MQK", 1, 0, "error", "what is wrong"]
// and admin commands on the same socket (the proxy's `group ls|rm`):
//   request: ["MQK", 1, 0, word, word...]     e.g. "group", "rm", "email"
//   reply:   ["MQK", 1, 0, "ok", device, [{column: value, ...}, ...]]
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "mqkit/devices/stats.hpp"

namespace mqkit::devices::detail {

std::string encode_stats_request();
std::string encode_admin_request(const std::vector<std::string>& command);
// Fills `command` with the request's words ("stats", or an admin command);
// returns empty, or what is wrong with the request.
std::string parse_request(std::string_view request, std::vector<std::string>& command);
std::string encode_stats_reply(const DeviceStats& stats);
std::string encode_rows_reply(const std::string& device, const std::vector<AdminRow>& rows);
std::string encode_error_reply(std::string_view error);
// Throws Error(malformed) or, for an error reply, Error(bad_argument) with its text.
DeviceStats decode_stats_reply(std::string_view reply);
std::vector<AdminRow> decode_rows_reply(std::string_view reply);

}  // namespace mqkit::devices::detail
