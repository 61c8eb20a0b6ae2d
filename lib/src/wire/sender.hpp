// Sender: the send side shared by Producer and Publisher. Encodes the envelope
// into a reused buffer and the frame into one zmq message (topic first, so
// SUB prefix filters work), and turns a blocking send into short waits that
// honour the send timeout and the stop events.
#pragma once

#include <zmq.hpp>

#include <optional>
#include <string>
#include <string_view>

#include "envelope/codec.hpp"
#include "mqkit/socket_options.hpp"
#include "wire/receiver.hpp"

namespace mqkit::detail {

// The sockets a Sender can be: PUSH for a work queue, XPUB for pub/sub
// (XPUB rather than PUB: the publisher sees subscriptions, and the socket
// can refuse to drop at its high-water mark).
enum class SendPattern { push, xpub };

// One subscriber's SUBSCRIBE or UNSUBSCRIBE, as an XPUB socket reads it.
struct SubscriptionChange {
  bool subscribe = true;
  std::string prefix;
};

class Sender {
 public:
  Sender(SendPattern pattern, const SocketOptions& options);

  // Binds or connects (see wire/socket.hpp's attach); the resolved endpoint.
  std::string attach(const Endpoint& endpoint);
  std::string last_endpoint() const;
  void* native_handle() noexcept { return socket_.handle(); }

  // A fresh envelope for `topic`, reusing the sender's scratch storage.
  Envelope& fresh_envelope(std::string_view topic);

  // Sends one message. With `wait` false, returns false at once when the
  // socket would block; with `wait` true, blocks up to the send timeout and
  // throws Error(timeout) or Error(stopped).
  bool send(const Envelope& envelope, std::string_view payload, bool wait);

  std::uint64_t sent() const noexcept { return sent_.get(); }

  // XPUB only: the next subscription change, without waiting; false when none is queued.
  bool next_subscription_change(SubscriptionChange& out);
  // XPUB only: waits up to `timeout` for a subscription change or a process-wide stop.
  Wait wait_for_subscription_change(std::chrono::milliseconds timeout);

 private:
  zmq::socket_t socket_;
  std::chrono::milliseconds send_timeout_;
  EnvelopeCodec codec_;
  std::string head_;
  Envelope scratch_;
  Counter sent_;
  zmq::message_t subscription_;
};

}  // namespace mqkit::detail
