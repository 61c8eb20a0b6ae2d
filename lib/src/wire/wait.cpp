// zmq::poll over the socket and both stop events.
#include "wire/wait.hpp"

namespace mqkit::detail {

Wait wait_readable(zmq::socket_t& socket, const StopEvent& stop,
                   std::chrono::milliseconds timeout) {
  zmq::pollitem_t items[] = {{socket.handle(), 0, ZMQ_POLLIN, 0},
                             {nullptr, stop.fd(), ZMQ_POLLIN, 0},
                             {nullptr, global_stop().fd(), ZMQ_POLLIN, 0}};
  try {
    zmq::poll(items, 3, timeout);
  } catch (const zmq::error_t& e) {
    if (e.num() != EINTR) throw;
  }
  if (stop.is_set() || global_stop().is_set()) return Wait::stopped;
  return (items[0].revents & ZMQ_POLLIN) ? Wait::readable : Wait::timeout;
}

}  // namespace mqkit::detail
