// Worker: the receiving end of a work queue (PULL), with a run loop. Accepts
// mqkit messages and raw `[payload]` / `[topic][payload]` frames from plain
// ZeroMQ peers, which get a fresh envelope (Message::wrapped).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include "mqkit/envelope.hpp"
#include "mqkit/socket_options.hpp"

namespace mqkit {

class Worker {
 public:
  using Handler = std::function<void(const Message&)>;
  using DropHandler = std::function<void(std::error_code, std::string_view detail)>;

  // Throws Error(bad_endpoint) when the endpoint cannot be bound or connected.
  explicit Worker(const Endpoint& endpoint, const SocketOptions& options = {});
  ~Worker();
  Worker(Worker&&) noexcept;
  Worker& operator=(Worker&&) noexcept;

  std::string attach(const Endpoint& endpoint);
  std::string last_endpoint() const;

  // One message, waiting up to `timeout` (-1: forever); empty on timeout or stop.
  [[nodiscard]] std::optional<Message> receive(
      std::chrono::milliseconds timeout = std::chrono::milliseconds(-1));
  // Calls `handler` for each message until stop() or a process-wide stop
  // (mqkit::stop_on_signals). Exceptions from the handler propagate.
  void run(const Handler& handler);
  // Makes run()/receive() return. Callable from any thread or a signal handler.
  void stop() noexcept;

  // Called for every dropped message (bad envelope, too large, too many frames).
  void on_drop(DropHandler handler);
  ReceiveStats stats() const noexcept;
  void* native_handle() noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mqkit
