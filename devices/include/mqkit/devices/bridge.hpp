// Bridge: moves messages from one device to another without losing any, so
// topologies compose: a proxy group or a forwarder feeds a stream (an audit
// log of every order), or a stream feeds a proxy (a service replays history
// into its work queue).
//
// The source is read as its own clients read it: a worker of a proxy group
// (ReliableConsumer), a named stream reader (StreamConsumer) or a subscriber
// of a forwarder. Every message is published to the target (a proxy's or a
// stream's front, with the reliable producer, pipelined) with its id, topic,
// key and headers unchanged, and acked or committed at the source only after
// the target confirmed it: at least once, and since both targets answer a
// repeated id `duplicate`, a bridge restarted mid-way does not store twice.
// A refusal is a NACK retry at a proxy source (its reason the target's
// answer) and leaves a stream source's position in place: a record the
// target refuses for good (e.g. `unroutable`) is never skipped; the bridge
// tries it again every second, and after 3 refusals in a row logs its
// partition and offset and shows `stalled_on_refusal` 1 until it gets
// through (the operator decides what the target does with it). A forwarder keeps
// nothing, so from one the bridge is as reliable as pub/sub.
//
// The bridge connects (it binds nothing but its stats endpoint) and keeps
// trying, once a second, while its source or target is not there yet; each
// new reason it cannot connect (a refused CURVE key, a wrong server key, no
// answer) goes to stderr once, and `connected` stays 0.
#pragma once

#include <string>
#include <vector>

#include "mqkit/devices/device.hpp"

namespace mqkit::devices {

struct BridgeOptions {
  enum class Source { proxy, stream, forwarder };
  Source source = Source::proxy;
  std::string from;                 // proxy: its back; stream: its back; forwarder: its out
  std::string name;                 // proxy: the group to work in; stream: the consumer name
  std::vector<std::string> topics;  // proxy: the group's filters; forwarder: topic prefixes
  std::string start = "earliest";   // stream: where a name without a position starts
  std::string to;                   // the target's front (a proxy or a stream)
  std::string stats;                // bound when not empty
  SocketOptions socket;
  // CURVE towards a side that is a CURVE device: the bridge's key pair and
  // that device's public key (empty: plain). `socket.security` guards stats.
  Security source_security, target_security;
};

class Bridge : public Device {
 public:
  explicit Bridge(const BridgeOptions& options);
};

}  // namespace mqkit::devices
