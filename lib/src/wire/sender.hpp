// Sender: the send side shared by Producer and Publisher. Encodes the envelope
// into a reused buffer and the frame into one zmq message (topic first, so
// SUB prefix filters work), and turns a blocking send into short waits that
// honour the send timeout and the stop events.
#pragma once

#include <zmq.hpp>

#include <optional>
#include <string_view>

#include "envelope/codec.hpp"
#include "mqkit/socket_options.hpp"
#include "wire/receiver.hpp"

namespace mqkit::detail {

class Sender {
 public:
  Sender(zmq::socket_t socket, const SocketOptions& options);

  // A fresh envelope for `topic`, reusing the sender's scratch storage.
  Envelope& fresh_envelope(std::string_view topic);

  // Sends one message. With `wait` false, returns false at once when the
  // socket would block; with `wait` true, blocks up to the send timeout and
  // throws Error(timeout) or Error(stopped).
  bool send(const Envelope& envelope, std::string_view payload, bool wait);

  std::uint64_t sent() const noexcept { return sent_.get(); }
  zmq::socket_t& socket() noexcept { return socket_; }

 private:
  zmq::socket_t socket_;
  std::chrono::milliseconds send_timeout_;
  EnvelopeCodec codec_;
  std::string head_;
  Envelope scratch_;
  Counter sent_;
};

}  // namespace mqkit::detail
