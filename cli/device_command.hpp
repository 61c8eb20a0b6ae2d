// The shape shared by the device subcommands (streamer, forwarder): bind
// --in/--out/--stats, print one "up" line with the bound endpoints, run until
// SIGINT/SIGTERM, print the final counters.
#pragma once

#include <functional>
#include <memory>

#include "common.hpp"
#include "mqkit/devices/device.hpp"

namespace mqkit::cli {

using DeviceFactory =
    std::function<std::unique_ptr<devices::Device>(const devices::DeviceOptions&)>;

// Prints the "up" line, runs `device` in this thread until SIGINT/SIGTERM,
// then reports its device-wide counters (per-group, -partition and
// -consumer rows are for `mqkit stat`). Every device subcommand ends here.
int serve_device(const std::string& name, devices::Device& device);

CLI::App* add_device_command(CLI::App& app, const std::string& name, const std::string& help,
                             DeviceFactory factory, Runner& runner);

}  // namespace mqkit::cli
