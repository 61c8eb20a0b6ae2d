#include "wire/socket_monitor.hpp"

#include <atomic>
#include <string>
#include <utility>

#include "mqkit/error.hpp"
#include "wire/socket.hpp"

namespace mqkit::detail {

SocketMonitor::SocketMonitor(zmq::socket_t& watched, int events) : watched_(watched.handle()) {
  static std::atomic<unsigned> next{0};
  const std::string endpoint = "inproc://mqkit-monitor-" + std::to_string(next++);
  if (zmq_socket_monitor(watched_, endpoint.c_str(), events) != 0)
    throw Error(errc::bad_argument, std::string("cannot monitor a socket: ") + zmq_strerror(errno));
  try {
    events_ = zmq::socket_t(default_context(), zmq::socket_type::pair);
    events_.set(zmq::sockopt::linger, 0);
    events_.set(zmq::sockopt::rcvhwm, 0);  // no limit: a full pipe would block libzmq's I/O thread
    events_.connect(endpoint);
  } catch (...) {
    stop();
    throw;
  }
}

SocketMonitor::~SocketMonitor() {
  stop();
}

SocketMonitor::SocketMonitor(SocketMonitor&& other) noexcept
    : watched_(std::exchange(other.watched_, nullptr)), events_(std::move(other.events_)) {}

SocketMonitor& SocketMonitor::operator=(SocketMonitor&& other) noexcept {
  if (this != &other) {
    stop();
    watched_ = std::exchange(other.watched_, nullptr);
    events_ = std::move(other.events_);
  }
  return *this;
}

// Before the PAIR closes: an event sent to a PAIR without a reader would
// wait forever, in the I/O thread.
void SocketMonitor::stop() noexcept {
  if (watched_) (void)zmq_socket_monitor(watched_, nullptr, 0);
  watched_ = nullptr;
}

}  // namespace mqkit::detail
