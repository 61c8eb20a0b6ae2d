// Proxy: the ack-and-retry device (docs/proxy-protocol.md). Producers
// connect DEALERs to `front` and PUBLISH; a message is CONFIRMed once the
// spool holds it. Workers connect DEALERs to `back`, ATTACH to a group with
// topic filters and a prefetch, and get DELIVERs up to that prefetch; ACK
// settles a message for the group, NACK retry / an ack timeout redeliver it
// after the retry policy's delay, and after max attempts (or NACK dead) it
// moves to the dead-letter spool. Every group whose filters match a topic
// gets the message (stored once, tracked per group).
//
// A PUBLISH whose id the proxy has seen among the last `dedup_window` ids
// (or still holds) is answered `duplicate` and not stored again, so a
// producer's re-sends after a lost confirm are harmless.
//
// Workers and proxy heartbeat each other every `heartbeat`; a worker silent
// for five of them (or whose connection is gone) is lost, and its in-flight
// messages are redelivered to the others with the attempt counted. Groups
// (spool_dir/GROUPS) and failed-attempt counts (ATTEMPT records) survive
// restarts. The stats endpoint also answers `group ls` and `group rm NAME`.
#pragma once

#include <string>

#include "mqkit/device_settings.hpp"
#include "mqkit/devices/device.hpp"

namespace mqkit::devices {

// The settings (ProxySettings, device_settings.hpp: spool, retry, groups,
// ...) and where the proxy binds.
struct ProxyOptions : ProxySettings {
  std::string front;  // bound, for producers
  std::string back;   // bound, for workers
  std::string stats;  // bound when not empty
  // Bytes of message frames kept in memory for delivery; past it frames are
  // read back from the spool when their turn comes (a backlog costs disk
  // reads, not memory).
  std::size_t frame_memory = 64ull * 1024 * 1024;
  SocketOptions socket;
};

class Proxy : public Device {
 public:
  // Opens the spools (recovering what they hold) and binds the endpoints.
  // Throws Error naming what failed (a locked spool names its owner's pid).
  explicit Proxy(const ProxyOptions& options);
};

}  // namespace mqkit::devices
