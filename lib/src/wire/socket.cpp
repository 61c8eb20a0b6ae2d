// Socket creation and attachment for every pattern and device.
#include "wire/socket.hpp"

#include "mqkit/error.hpp"

namespace mqkit::detail {

zmq::context_t& default_context() {
  static auto* context = new zmq::context_t();
  return *context;
}

zmq::socket_t open_socket(zmq::socket_type type, const SocketOptions& o) {
  zmq::socket_t socket(default_context(), type);
  socket.set(zmq::sockopt::sndhwm, o.send_hwm);
  socket.set(zmq::sockopt::rcvhwm, o.receive_hwm);
  socket.set(zmq::sockopt::linger, static_cast<int>(o.linger.count()));
  socket.set(zmq::sockopt::reconnect_ivl, static_cast<int>(o.reconnect_interval.count()));
  socket.set(zmq::sockopt::reconnect_ivl_max, static_cast<int>(o.reconnect_interval_max.count()));
  if (o.heartbeat_interval.count() > 0) {
    socket.set(zmq::sockopt::heartbeat_ivl, static_cast<int>(o.heartbeat_interval.count()));
    const auto timeout = o.heartbeat_timeout.count() > 0 ? o.heartbeat_timeout : o.heartbeat_interval;
    socket.set(zmq::sockopt::heartbeat_timeout, static_cast<int>(timeout.count()));
    if (o.heartbeat_ttl.count() > 0)
      socket.set(zmq::sockopt::heartbeat_ttl, static_cast<int>(o.heartbeat_ttl.count()));
  }
  socket.set(zmq::sockopt::sndtimeo, static_cast<int>(o.send_timeout.count()));
  socket.set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(o.limits.max_frame_size()));
  return socket;
}

std::string attach(zmq::socket_t& socket, const Endpoint& endpoint) {
  const bool binding = endpoint.mode == Endpoint::Mode::bind;
  try {
    if (binding) {
      socket.bind(endpoint.address);
    } else {
      socket.connect(endpoint.address);
    }
  } catch (const zmq::error_t& e) {
    throw Error(errc::bad_endpoint, std::string("cannot ") + (binding ? "bind " : "connect to ") +
                                        "'" + endpoint.address + "': " + e.what());
  }
  return binding ? last_endpoint(socket) : endpoint.address;
}

std::string last_endpoint(const zmq::socket_t& socket) {
  return socket.get(zmq::sockopt::last_endpoint);
}

}  // namespace mqkit::detail
