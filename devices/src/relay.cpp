// Non-blocking multipart relay used by the streamer and the forwarder.
#include "relay.hpp"

namespace mqkit::devices::detail {

bool Relay::receive(zmq::socket_t& from) {
  std::size_t n = 0;
  for (bool more = true; more; ++n) {
    if (frames_.size() <= n) frames_.emplace_back();
    // Later frames of a multipart message arrive with the first: never EAGAIN.
    if (!from.recv(frames_[n], zmq::recv_flags::dontwait)) return false;
    more = frames_[n].more();
  }
  held_ = n;
  in_.add();
  return true;
}

bool Relay::send(zmq::socket_t& to) {
  for (std::size_t i = 0; i < held_; ++i) {
    const auto flags = i + 1 < held_ ? zmq::send_flags::sndmore | zmq::send_flags::dontwait
                                     : zmq::send_flags::dontwait;
    // Once the first frame is accepted, libzmq accepts the rest of the message.
    if (!to.send(frames_[i], flags)) return false;
  }
  held_ = 0;
  out_.add();
  return true;
}

void Relay::step(zmq::socket_t& from, zmq::socket_t& to, int budget) {
  for (int i = 0; i < budget; ++i) {
    if (held_ == 0 && !receive(from)) return;
    if (!send(to)) return;
  }
}

}  // namespace mqkit::devices::detail
