// Publisher: the sending end of fan-out (an XPUB socket). Every subscriber
// whose prefix matches the topic gets the message.
//
// Lossless by default: where plain PUB drops at HWM, a Publisher blocks until
// the slowest matching subscriber has room (ZMQ_XPUB_NODROP). With
// drop_when_full, try_send-like behaviour applies and every drop is counted.
// Slow joiner: a message sent before a subscription has reached the publisher
// is not delivered to that subscriber; wait_for_subscriber() closes that gap.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "mqkit/envelope.hpp"
#include "mqkit/socket_options.hpp"

namespace mqkit {

struct PublisherOptions {
  SocketOptions socket;
  bool drop_when_full = false;  // count and drop instead of blocking at HWM
};

class Publisher {
 public:
  explicit Publisher(const Endpoint& endpoint, const PublisherOptions& options = {});
  ~Publisher();
  Publisher(Publisher&&) noexcept;
  Publisher& operator=(Publisher&&) noexcept;

  std::string attach(const Endpoint& endpoint);
  std::string last_endpoint() const;

  // Sends to every matching subscriber. Lossless mode blocks up to
  // SocketOptions::send_timeout (Error(timeout)); drop mode returns empty and
  // counts a drop when a matching subscriber is at HWM.
  [[nodiscard]] std::optional<MessageId> send(std::string_view topic, std::string_view payload);
  [[nodiscard]] std::optional<MessageId> send(const Envelope& envelope, std::string_view payload);

  // Waits until some subscription that matches `topic` has reached this
  // publisher (directly or through a forwarder). False on timeout or stop.
  bool wait_for_subscriber(std::string_view topic, std::chrono::milliseconds timeout);

  std::uint64_t sent() const noexcept;
  std::uint64_t dropped() const noexcept;
  void* native_handle() noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mqkit
