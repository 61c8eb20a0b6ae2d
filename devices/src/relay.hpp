// Relay: moves whole multipart messages from one socket to another without
// ever blocking. When the destination cannot take a message, the relay keeps
// it and the device stops reading the source until it can: backpressure flows
// upstream and nothing is dropped.
#pragma once

#include <zmq.hpp>

#include <vector>

#include "detail/counter.hpp"

namespace mqkit::devices::detail {

class Relay {
 public:
  // Moves up to `budget` messages; returns when the source is empty or the
  // destination is full.
  void step(zmq::socket_t& from, zmq::socket_t& to, int budget);
  bool holding() const noexcept { return held_ > 0; }
  std::uint64_t in() const noexcept { return in_.get(); }
  std::uint64_t out() const noexcept { return out_.get(); }

 private:
  bool receive(zmq::socket_t& from);
  bool send(zmq::socket_t& to);

  std::vector<zmq::message_t> frames_;
  std::size_t held_ = 0;  // frames of the message waiting to be sent
  mqkit::detail::Counter in_, out_;
};

}  // namespace mqkit::devices::detail
