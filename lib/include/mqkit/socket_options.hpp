// Where a pattern's socket attaches (bind or connect) and the ZeroMQ socket
// options users expect to reach: HWM, linger, reconnect, ZMTP heartbeats,
// send timeout, the receive limits and CURVE security.
#pragma once

#include <chrono>
#include <string>

#include "mqkit/envelope.hpp"
#include "mqkit/security.hpp"

namespace mqkit {

struct Endpoint {
  enum class Mode { connect, bind };
  std::string address;  // a ZeroMQ endpoint, e.g. tcp://127.0.0.1:5555 or tcp://*:*
  Mode mode = Mode::connect;
};

inline Endpoint bind(std::string address) {
  return {std::move(address), Endpoint::Mode::bind};
}
inline Endpoint connect(std::string address) {
  return {std::move(address), Endpoint::Mode::connect};
}

struct SocketOptions {
  using ms = std::chrono::milliseconds;
  int send_hwm = 1000;           // ZMQ_SNDHWM: messages queued per peer before send blocks
  int receive_hwm = 1000;        // ZMQ_RCVHWM
  ms linger{1000};               // ZMQ_LINGER: how long close() waits to flush; -1 forever
  ms reconnect_interval{100};    // ZMQ_RECONNECT_IVL
  ms reconnect_interval_max{0};  // ZMQ_RECONNECT_IVL_MAX (0: no exponential backoff)
  ms heartbeat_interval{0};      // ZMQ_HEARTBEAT_IVL (ZMTP PING); 0 disables heartbeats
  ms heartbeat_timeout{0};       // ZMQ_HEARTBEAT_TIMEOUT; 0 means heartbeat_interval
  ms heartbeat_ttl{0};           // ZMQ_HEARTBEAT_TTL announced to the peer
  ms send_timeout{-1};           // ZMQ_SNDTIMEO for blocking sends; -1 blocks forever
  bool immediate = false;        // ZMQ_IMMEDIATE: queue only to completed connections
  Limits limits;                 // enforced on receive, also through ZMQ_MAXMSGSIZE
  Security security;             // CURVE: server keys + allow-list, or client keys
};

// Counters of a receiving pattern. Readable from any thread.
struct ReceiveStats {
  std::uint64_t received = 0;   // messages handed to the application
  std::uint64_t wrapped = 0;    // of those, raw frames that got a fresh envelope
  std::uint64_t malformed = 0;  // dropped: bad envelope, too large or too many frames
};

}  // namespace mqkit
