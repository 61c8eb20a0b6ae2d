// ConnectionWatch: a monitor of a connecting socket that tells a client when
// its connection dropped and, when the handshake failed, which key to check
// (a CURVE server that refused this client's key, or a server key that is
// not the device's). Clients poll it before they send, so a drop is seen
// before anything goes out on the next connection.
#pragma once

#include <zmq.hpp>

#include <string>

#include "wire/socket_monitor.hpp"

namespace mqkit::detail {

class ConnectionWatch {
 public:
  // Starts watching `socket` (before it connects); `curve_client` says
  // whether it has client keys (it words the advice). `socket` must
  // outlive the watch.
  ConnectionWatch(zmq::socket_t& socket, bool curve_client);

  // Reads the events so far; true when the connection dropped or a
  // handshake failed since the last call.
  bool dropped();
  // Why the last handshake failed; empty when it did not (or one succeeded since).
  const std::string& problem() const noexcept { return problem_; }
  // For a poll set: readable when events are waiting.
  zmq::socket_t& socket() noexcept { return monitor_.events(); }

 private:
  SocketMonitor monitor_;
  bool curve_client_;
  std::string problem_;
};

}  // namespace mqkit::detail
