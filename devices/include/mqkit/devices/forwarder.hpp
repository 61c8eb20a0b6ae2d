// Forwarder: the fan-out device (XSUB in, XPUB out). Publishers connect to
// `in`, subscribers to `out`. Subscriptions travel upstream (every one of
// them, so publishers can wait for subscribers through it); messages travel
// downstream unchanged and lossless: a full subscriber slows the stream
// (XPUB_NODROP) rather than losing messages.
#pragma once

#include "mqkit/devices/device.hpp"

namespace mqkit::devices {

class Forwarder : public Device {
 public:
  // Throws Error(bad_endpoint) naming the endpoint that could not be bound.
  explicit Forwarder(const DeviceOptions& options);
};

}  // namespace mqkit::devices
