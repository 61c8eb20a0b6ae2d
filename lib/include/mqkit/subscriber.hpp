// Subscriber: the receiving end of fan-out (SUB) with byte-prefix topic
// filters. Accepts mqkit messages and raw frames from plain ZeroMQ publishers.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "mqkit/envelope.hpp"
#include "mqkit/socket_options.hpp"

namespace mqkit {

class Subscriber {
 public:
  using Handler = std::function<void(const Message&)>;
  using DropHandler = std::function<void(std::error_code, std::string_view detail)>;

  // Subscribes to each prefix in `topics` ("" receives everything).
  Subscriber(const Endpoint& endpoint, const std::vector<std::string>& topics,
             const SocketOptions& options = {});
  ~Subscriber();
  Subscriber(Subscriber&&) noexcept;
  Subscriber& operator=(Subscriber&&) noexcept;

  std::string attach(const Endpoint& endpoint);
  std::string last_endpoint() const;
  void subscribe(std::string_view prefix);
  void unsubscribe(std::string_view prefix);

  [[nodiscard]] std::optional<Message> receive(
      std::chrono::milliseconds timeout = std::chrono::milliseconds(-1));
  void run(const Handler& handler);
  void stop() noexcept;

  void on_drop(DropHandler handler);
  ReceiveStats stats() const noexcept;
  void* native_handle() noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mqkit
