// Socket creation and attachment for every pattern and device.
#include "wire/socket.hpp"

#include "mqkit/error.hpp"
#include "wire/zap_handler.hpp"

namespace mqkit::detail {

zmq::context_t& default_context() {
  // Destroyed at exit, after every socket of main's objects has closed, so
  // that zmq_ctx_term gives queued messages their linger time to leave.
  static zmq::context_t context;
  return context;
}

void apply_security(zmq::socket_t& socket, const Security& security) {
  if (!security.enabled()) return;
  require_curve();
  if (security.server) {
    socket.set(zmq::sockopt::curve_server, true);
    socket.set(zmq::sockopt::curve_secretkey, security.server->secret_key);
    socket.set(zmq::sockopt::curve_publickey, security.server->public_key);
    // Only the listed client keys pass the handshake (ZAP, in this process).
    socket.set(zmq::sockopt::zap_domain, register_allow_list(security.allowed_clients));
  } else {
    if (security.server_public_key.empty())
      throw Error(errc::bad_argument, "a CURVE client needs the server's public key");
    socket.set(zmq::sockopt::curve_serverkey, security.server_public_key);
    socket.set(zmq::sockopt::curve_publickey, security.client->public_key);
    socket.set(zmq::sockopt::curve_secretkey, security.client->secret_key);
  }
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
    const auto timeout =
        o.heartbeat_timeout.count() > 0 ? o.heartbeat_timeout : o.heartbeat_interval;
    socket.set(zmq::sockopt::heartbeat_timeout, static_cast<int>(timeout.count()));
    if (o.heartbeat_ttl.count() > 0)
      socket.set(zmq::sockopt::heartbeat_ttl, static_cast<int>(o.heartbeat_ttl.count()));
  }
  socket.set(zmq::sockopt::sndtimeo, static_cast<int>(o.send_timeout.count()));
  socket.set(zmq::sockopt::immediate, o.immediate);
  socket.set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(o.limits.max_frame_size()));
  apply_security(socket, o.security);
  return socket;
}

namespace {

// libzmq silently truncates tcp ports above 65535; refuse them instead.
void check_tcp_port(const std::string& address) {
  if (!address.starts_with("tcp://")) return;
  const auto colon = address.rfind(':');
  const std::string port = address.substr(colon + 1);
  if (colon < 6 || port.empty() || port == "*" || port == "0") return;
  if (port.find_first_not_of("0123456789") != std::string::npos || port.size() > 5 ||
      std::stoul(port) > 65535)
    throw Error(errc::bad_endpoint,
                "'" + address + "' has no valid port: use 1-65535, or * to pick a free one");
}

}  // namespace

std::string attach(zmq::socket_t& socket, const Endpoint& endpoint) {
  const bool binding = endpoint.mode == Endpoint::Mode::bind;
  check_tcp_port(endpoint.address);
  try {
    if (binding) {
      socket.bind(endpoint.address);
    } else {
      socket.connect(endpoint.address);
    }
  } catch (const zmq::error_t& e) {
    std::string hint;
    if (e.num() == EINVAL || e.num() == EPROTONOSUPPORT)
      hint = " (expected e.g. tcp://127.0.0.1:5555, tcp://*:* or ipc:///tmp/name)";
    throw Error(errc::bad_endpoint, std::string("cannot ") + (binding ? "bind " : "connect to ") +
                                        "'" + endpoint.address + "': " + e.what() + hint);
  }
  return binding ? last_endpoint(socket) : endpoint.address;
}

std::string last_endpoint(const zmq::socket_t& socket) {
  return socket.get(zmq::sockopt::last_endpoint);
}

}  // namespace mqkit::detail
