// Device statistics and the client side of the stats request that every
// device answers on its optional stats endpoint.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "mqkit/security.hpp"

namespace mqkit::devices {

struct DeviceStats {
  std::string device;                                           // "streamer", "forwarder", ...
  std::vector<std::pair<std::string, std::uint64_t>> counters;  // in the device's own order

  // The counter's value; 0 when the device has no such counter.
  std::uint64_t get(std::string_view name) const noexcept;
};

// Asks the device whose stats endpoint is `endpoint`. Throws Error(timeout)
// when nothing answers in time and Error(malformed) on a reply that is not a
// stats reply.
DeviceStats query_stats(const std::string& endpoint,
                        std::chrono::milliseconds timeout = std::chrono::seconds(2),
                        const Security& security = {});

// A row of an admin command's answer: (column, value) in the device's order.
using AdminRow = std::vector<std::pair<std::string, std::string>>;

// Sends an admin command (e.g. {"group", "ls"} or {"group", "rm", "email"})
// to a device's stats endpoint and returns the rows it answers. Throws
// Error(bad_argument) with the device's own message when it refuses, and
// Error(timeout) like query_stats.
std::vector<AdminRow> admin_request(const std::string& endpoint,
                                    const std::vector<std::string>& command,
                                    std::chrono::milliseconds timeout = std::chrono::seconds(5),
                                    const Security& security = {});

}  // namespace mqkit::devices
