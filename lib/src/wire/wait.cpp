// zmq::poll that takes a signal for "nothing yet", and waiting on one socket.
#include "wire/wait.hpp"

namespace mqkit::detail {

int poll_ignoring_signals(zmq::pollitem_t* items, std::size_t count,
                          std::chrono::milliseconds timeout) {
  try {
    return zmq::poll(items, count, timeout);
  } catch (const zmq::error_t& e) {
    if (e.num() != EINTR) throw;
    return 0;
  }
}

Wait wait_readable(zmq::socket_t& socket, const StopEvent& stop,
                   std::chrono::milliseconds timeout) {
  zmq::pollitem_t items[] = {{socket.handle(), 0, ZMQ_POLLIN, 0},
                             {nullptr, stop.fd(), ZMQ_POLLIN, 0},
                             {nullptr, global_stop().fd(), ZMQ_POLLIN, 0}};
  poll_ignoring_signals(items, 3, timeout);
  if (stop.is_set() || global_stop().is_set()) return Wait::stopped;
  return (items[0].revents & ZMQ_POLLIN) ? Wait::readable : Wait::timeout;
}

Wait wait_readable(zmq::socket_t& socket, std::chrono::milliseconds timeout) {
  zmq::pollitem_t items[] = {{socket.handle(), 0, ZMQ_POLLIN, 0},
                             {nullptr, global_stop().fd(), ZMQ_POLLIN, 0}};
  poll_ignoring_signals(items, 2, timeout);
  if (global_stop().is_set()) return Wait::stopped;
  return (items[0].revents & ZMQ_POLLIN) ? Wait::readable : Wait::timeout;
}

}  // namespace mqkit::detail
