// SocketMonitor: the events of one socket (zmq_socket_monitor) on a PAIR
// socket its owner reads. libzmq sends them from its I/O thread with a
// blocking send, and that thread serves every socket of the process: a
// monitor whose reader is gone, or whose pipe is full, would stop them all.
// So the pipe has no limit (events come per connection, not per message)
// and monitoring stops before the reader goes. The watched socket must
// outlive its monitor: declare the monitor after it.
#pragma once

#include <zmq.hpp>

namespace mqkit::detail {

class SocketMonitor {
 public:
  // Watches `events` (ZMQ_EVENT_* bits) of `watched`.
  SocketMonitor(zmq::socket_t& watched, int events);
  ~SocketMonitor();
  SocketMonitor(SocketMonitor&& other) noexcept;
  SocketMonitor& operator=(SocketMonitor&& other) noexcept;
  SocketMonitor(const SocketMonitor&) = delete;
  SocketMonitor& operator=(const SocketMonitor&) = delete;

  // The PAIR the events arrive on: [event id (2 bytes) + value][address].
  zmq::socket_t& events() noexcept { return events_; }

 private:
  void stop() noexcept;

  void* watched_ = nullptr;  // the watched socket's handle; null once moved from
  zmq::socket_t events_;
};

}  // namespace mqkit::detail
