// Producer: the sending end of a work queue (PUSH). Messages are spread
// round-robin over the connected workers; many producers may feed one worker
// or one streamer (fan-in). send() blocks while every peer is at its HWM.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "mqkit/envelope.hpp"
#include "mqkit/socket_options.hpp"

namespace mqkit {

class Producer {
 public:
  // Throws Error(bad_endpoint) when the endpoint cannot be bound or connected.
  explicit Producer(const Endpoint& endpoint, const SocketOptions& options = {});
  ~Producer();
  Producer(Producer&&) noexcept;
  Producer& operator=(Producer&&) noexcept;

  // Attaches to one more endpoint; returns the endpoint actually bound.
  std::string attach(const Endpoint& endpoint);
  // The endpoint the socket bound last (tcp://127.0.0.1:* resolves to a port).
  std::string last_endpoint() const;

  // Sends with a fresh envelope; blocks at HWM up to SocketOptions::send_timeout.
  // Throws Error(timeout), Error(stopped) or Error(bad_argument) (topic too long).
  MessageId send(std::string_view topic, std::string_view payload);
  // Sends with the caller's envelope (headers, key, a given id).
  void send(const Envelope& envelope, std::string_view payload);
  // Never blocks: empty when every peer is at its HWM.
  [[nodiscard]] std::optional<MessageId> try_send(std::string_view topic, std::string_view payload);

  std::uint64_t sent() const noexcept;
  void* native_handle() noexcept;  // the zmq socket, for options mqkit does not wrap

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mqkit
