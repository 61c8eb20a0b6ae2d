// Devices from a topology file: each DeviceSpec becomes the device it
// describes, bound to its endpoints' bind addresses.
#pragma once

#include <memory>

#include "mqkit/devices/device.hpp"
#include "mqkit/topology.hpp"

namespace mqkit::devices {

// Binds at once; throws Error naming the device when it cannot (a port in
// use, a spool another process owns).
std::unique_ptr<Device> make_device(const Topology& topology, const DeviceSpec& spec);

}  // namespace mqkit::devices
