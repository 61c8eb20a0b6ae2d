// Receiver: the receive side shared by Worker and Subscriber. Reads one-frame
// mqkit messages and raw `[payload]` / `[topic][payload]` frames, decodes them
// into a reused Message, counts what it drops, and waits on its socket and on
// the stop events so that run() ends promptly on stop() or a signal.
#pragma once

#include <zmq.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include "detail/counter.hpp"
#include "envelope/codec.hpp"
#include "mqkit/socket_options.hpp"
#include "wire/stop_event.hpp"
#include "wire/wait.hpp"

namespace mqkit::detail {

// The sockets a Receiver can be: PULL for a work queue, SUB for pub/sub.
enum class ReceivePattern { pull, sub };

class Receiver {
 public:
  using Handler = std::function<void(const Message&)>;
  using DropHandler = std::function<void(std::error_code, std::string_view detail)>;

  Receiver(ReceivePattern pattern, const SocketOptions& options);

  // Binds or connects (see wire/socket.hpp's attach); the resolved endpoint.
  std::string attach(const Endpoint& endpoint);
  std::string last_endpoint() const;
  void* native_handle() noexcept { return socket_.handle(); }
  // SUB only: topic prefixes (an empty one matches everything).
  void subscribe(std::string_view prefix);
  void unsubscribe(std::string_view prefix);

  // Waits up to `timeout` (-1: forever) for one message. False on timeout or stop.
  bool receive(Message& out, std::chrono::milliseconds timeout);
  // Calls `handler` for every message until stop() or a process-wide stop.
  void run(const Handler& handler);
  void stop() noexcept { stop_.signal(); }
  bool stopping() const noexcept { return stop_.is_set() || global_stop().is_set(); }

  void on_drop(DropHandler handler) { on_drop_ = std::move(handler); }
  ReceiveStats stats() const noexcept;

 private:
  Wait wait(std::chrono::milliseconds timeout);
  // Non-blocking: true when `out` holds a new message; drops bad ones.
  bool try_receive(Message& out);
  void drop(errc code, std::string_view detail);

  zmq::socket_t socket_;
  Limits limits_;
  EnvelopeCodec codec_;
  StopEvent stop_;
  zmq::message_t first_, second_;
  Message current_;
  DropHandler on_drop_;
  Counter received_, wrapped_, malformed_;
};

}  // namespace mqkit::detail
