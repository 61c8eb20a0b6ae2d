// ConnectionWatch over a SocketMonitor: the DISCONNECTED and HANDSHAKE_*
// events of the watched socket.
#include "wire/connection_watch.hpp"

#include <cstdint>
#include <cstring>

#include "mqkit/error.hpp"
#include "wire/socket_monitor.hpp"

namespace mqkit::detail {
namespace {

constexpr int kEvents = ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
                        ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                        ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;

}  // namespace

ConnectionWatch::ConnectionWatch(zmq::socket_t& socket, bool curve_client)
    : monitor_(socket, kEvents), curve_client_(curve_client) {}

bool ConnectionWatch::dropped() {
  bool dropped = false;
  zmq::message_t event, address;
  while (monitor_.events().recv(event, zmq::recv_flags::dontwait)) {
    if (event.more()) (void)monitor_.events().recv(address, zmq::recv_flags::dontwait);
    std::uint16_t id = 0;
    if (event.size() >= sizeof id) std::memcpy(&id, event.data(), sizeof id);
    if (id == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
      problem_.clear();
      continue;
    }
    dropped = true;
    if (id == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
      problem_ =
          "the device refused this client's CURVE key: is its public key on the device's "
          "allow list (--allow)?";
    else if (id != ZMQ_EVENT_DISCONNECTED)
      problem_ = curve_client_
                     ? "the CURVE handshake with the device failed: check the server key this "
                       "client was given (--server-key): it must be the device's public key"
                     : "the handshake with the device failed: a CURVE device needs a client key "
                       "pair and its public key (--curve-key, --server-key)";
  }
  return dropped;
}

}  // namespace mqkit::detail
