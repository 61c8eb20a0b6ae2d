// Streamer: the queue device (PULL in, PUSH out). Producers connect to `in`,
// workers to `out`; frames pass through unchanged (mqkit messages and raw
// ZeroMQ traffic alike), and reading stops while no worker can take more, so
// backpressure reaches the producers instead of memory growing.
#pragma once

#include "mqkit/devices/device.hpp"

namespace mqkit::devices {

class Streamer : public Device {
 public:
  // Throws Error(bad_endpoint) naming the endpoint that could not be bound.
  explicit Streamer(const DeviceOptions& options);
};

}  // namespace mqkit::devices
