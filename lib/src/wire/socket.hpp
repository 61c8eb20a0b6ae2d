// The one place that creates and attaches ZeroMQ sockets: applies
// SocketOptions, binds or connects with errors that name the endpoint, and
// reads back the endpoint actually bound (for tcp://host:* wildcards).
#pragma once

#include <zmq.hpp>

#include <string>
#include <string_view>

#include "mqkit/socket_options.hpp"

namespace mqkit::detail {

// The shared context of every mqkit socket in the process.
zmq::context_t& default_context();

zmq::socket_t open_socket(zmq::socket_type type, const SocketOptions& options);

// CURVE server (with its allow-list) or client settings; nothing when off.
void apply_security(zmq::socket_t& socket, const Security& security);

// Binds or connects; returns the resolved endpoint. Throws Error(bad_endpoint)
// with a message such as "cannot bind tcp://127.0.0.1:5555: Address already in use".
std::string attach(zmq::socket_t& socket, const Endpoint& endpoint);

std::string last_endpoint(const zmq::socket_t& socket);

// A message's bytes, without copying them.
inline std::string_view view(const zmq::message_t& m) {
  return {static_cast<const char*>(m.data()), m.size()};
}

}  // namespace mqkit::detail
