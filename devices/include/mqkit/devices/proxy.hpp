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

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "mqkit/devices/device.hpp"
#include "mqkit/retry_policy.hpp"
#include "mqkit/spool.hpp"

namespace mqkit::devices {

struct ProxyOptions {
  std::string front;  // bound, for producers
  std::string back;   // bound, for workers
  std::string stats;  // bound when not empty
  std::string spool_dir;
  std::string dlq_dir;  // default: spool_dir + ".dlq"
  SpoolOptions spool;
  RetryPolicy retry;
  std::chrono::milliseconds ack_timeout{30000};
  std::size_t dedup_window = 100000;                       // recent message ids remembered
  std::map<std::string, std::vector<std::string>> groups;  // declared groups and filters
  std::chrono::milliseconds heartbeat{1000};               // a worker silent for 5 of these is lost
  // Bytes of message frames kept in memory for delivery; past it frames are
  // read back from the spool when their turn comes (a backlog costs disk
  // reads, not memory).
  std::size_t frame_memory = 64ull * 1024 * 1024;
  SocketOptions socket;
  // The dead-letter spool's own size limit (0: none); the main spool's is
  // spool.max_size. A message the DLQ cannot take now stays pending and is
  // tried again after the retry delay.
  std::uint64_t dlq_max_size = 0;
};

class Proxy : public Device {
 public:
  // Opens the spools (recovering what they hold) and binds the endpoints.
  // Throws Error naming what failed (a locked spool names its owner's pid).
  explicit Proxy(const ProxyOptions& options);
};

}  // namespace mqkit::devices
