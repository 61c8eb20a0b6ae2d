// ReliableProducer: publishes through the proxy (a DEALER to its front) and
// knows when each message is stored. send() blocks until the confirm;
// send_async() pipelines up to `window` unconfirmed messages and reports each
// confirm to a callback. Unconfirmed messages are re-sent with the same id
// while the proxy is unreachable, restarting or full, until `timeout`.
//
// Order: messages reach the device in the order they were given, first
// arrivals included. A re-send (no confirm after `resend_after`, a dropped
// connection, a `full` answer) sends every unconfirmed message again from
// the oldest, in order, before anything newer; the device answers
// `duplicate` for those it had stored. So one key's messages are stored in
// order across a device's pause, crash and restart. (The socket queues only
// to a live connection: ZMQ_IMMEDIATE is always on.) One gap is left: after a
// `full` answer, messages already on the wire behind the refused one may be
// stored before it is.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "mqkit/envelope.hpp"
#include "mqkit/socket_options.hpp"

namespace mqkit {

enum class PublishStatus { stored, duplicate, full, unroutable, rejected, timeout };

struct PublishResult {
  MessageId id;
  PublishStatus status = PublishStatus::stored;
  std::string reason;
  bool ok() const noexcept {
    return status == PublishStatus::stored || status == PublishStatus::duplicate;
  }
};

struct ReliableProducerOptions {
  SocketOptions socket;
  std::size_t window = 1000;  // unconfirmed messages in flight
  // No confirm by then: send again. While the device answers nothing, the
  // interval doubles per round (up to 30 s) and resets at its next answer.
  std::chrono::milliseconds resend_after{2000};
  std::chrono::milliseconds timeout{60000};  // give up on a message after this
  std::optional<std::string> target_group;   // publish to this group only
  // Scheduled messages: each message without a not_before of its own gets
  // now + delay (the proxy confirms it at once and delivers it no earlier).
  // An envelope's own not_before (ms since the Unix epoch) always wins.
  std::chrono::milliseconds delay{0};
};

const char* to_string(PublishStatus status) noexcept;

class ReliableProducer {
 public:
  using Callback = std::function<void(const PublishResult&)>;

  ReliableProducer(const std::string& proxy_front, const ReliableProducerOptions& options = {});
  ~ReliableProducer();
  ReliableProducer(ReliableProducer&&) noexcept;
  ReliableProducer& operator=(ReliableProducer&&) noexcept;

  [[nodiscard]] PublishResult send(std::string_view topic, std::string_view payload);
  [[nodiscard]] PublishResult send(const Envelope& envelope, std::string_view payload);
  // Blocks while `window` messages are unconfirmed; `done` runs on this thread
  // (inside a later send_async, flush or send). Messages go out in batches
  // of up to 64 in one PUBLISH: a partial batch leaves at the next flush(),
  // send() or a send_async() that waits for the window, so end with flush().
  void send_async(const Envelope& envelope, std::string_view payload, Callback done);
  // Waits until nothing is unconfirmed; returns how many are still waiting
  // after `timeout` (they keep their callbacks), after stop(), or at a
  // process-wide stop (mqkit::request_stop) that comes while it waits. When
  // that stop came before, a flush with a timeout still waits (so a client
  // that was told to stop can collect the confirms already due); one
  // without returns at once.
  std::size_t flush(std::chrono::milliseconds timeout = std::chrono::milliseconds(-1));
  std::size_t unconfirmed() const noexcept;
  // Why the connection fails, when its last handshake failed (a refused or
  // wrong CURVE key); empty otherwise.
  std::string connection_problem() const;
  // From any thread: ends every wait of this producer (send throws
  // Error(stopped), flush and send_async return) now and from then on.
  void stop() noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mqkit
