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
// This first version has no heartbeats (a lost worker's messages come back
// through the ack timeout), and recovery restarts attempt counts at 1.
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
  SocketOptions socket;
};

class Proxy : public Device {
 public:
  // Opens the spools (recovering what they hold) and binds the endpoints.
  // Throws Error naming what failed (a locked spool names its owner's pid).
  explicit Proxy(const ProxyOptions& options);
};

}  // namespace mqkit::devices
