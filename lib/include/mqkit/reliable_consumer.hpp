// ReliableConsumer: a worker of one consumer group on the proxy (a DEALER to
// its back). ATTACHes with the group's topic filters and a prefetch, calls
// the handler for every delivery, and ACKs, NACK-retries or NACK-deads it
// as the handler says. The handler sees Message::envelope.attempt.
//
// Acks go out in batches (when no more deliveries are waiting, or half the
// prefetch has piled up). A heartbeat goes to the proxy at the interval the
// proxy asks for, also while a slow handler runs (from a small thread that
// shares the socket under a mutex), so only a dead or cut-off worker is
// taken for lost. When the proxy restarts or stops answering, the consumer
// ATTACHes again by itself.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "mqkit/envelope.hpp"
#include "mqkit/socket_options.hpp"

namespace mqkit {

enum class Outcome { ack, retry, dead };

// Thrown by a handler: the message goes to the dead-letter spool at once
// (NACK dead) with what() as its reason, e.g. throw Reject("card number is
// malformed"). Any other exception is a retry with what() as the error.
class Reject : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ReliableConsumerOptions {
  std::string group;
  std::vector<std::string> filters;  // empty: join the group as it is ("#" if new)
  std::uint32_t prefetch = 100;
  // The handled message's lease is kept even past max_lease (`consume
  // --exec` sets it: a command may run as long as it needs).
  bool in_progress_while_handling = false;
  SocketOptions socket;
  // While a handler or the before-ack hook runs, the consumer tells the
  // proxy every third of its ack timeout that everything it holds (the
  // message being handled, those prefetched behind it, acks not yet sent)
  // is still in progress (IN_PROGRESS), so work waiting its turn in a live
  // worker is never redelivered or dead-lettered for being slow. Up to this
  // long after a message arrived; 0 keeps no lease (the ack timeout rules).
  std::chrono::milliseconds max_lease = std::chrono::minutes(60);
};

class ReliableConsumer {
 public:
  // Manual acknowledgement: the handler says what to do with each message.
  using Handler = std::function<Outcome(const Message&)>;

  // Throws Error when the proxy refuses the ATTACH (e.g. other filters) or
  // does not answer within `attach_timeout`.
  ReliableConsumer(const std::string& proxy_back, const ReliableConsumerOptions& options,
                   std::chrono::milliseconds attach_timeout = std::chrono::seconds(10));
  ~ReliableConsumer();  // DETACHes: prefetched, unhandled messages go back at once
  ReliableConsumer(ReliableConsumer&&) noexcept;
  ReliableConsumer& operator=(ReliableConsumer&&) noexcept;

  // Runs until stop() or a process-wide stop. An exception from the handler
  // is a retry with its what() as the reason (Reject: a dead letter).
  void run(const Handler& handler);
  // Auto-ack: ack when the handler returns, retry when it throws.
  void run_auto(const std::function<void(const Message&)>& handler);
  void stop() noexcept;

  // Runs on the run() thread before each batch of ACKs goes out, with the ids
  // about to be acked. For handlers whose work completes later: e.g. a bridge
  // publishes in the handler and, here, waits for the target's confirms. Ids
  // it removes from `ids` are not acked (redelivered after the ack timeout);
  // those it moves to `retries`, with a reason, are NACKed for a retry.
  using BeforeAck = std::function<void(std::vector<MessageId>& ids,
                                       std::vector<std::pair<MessageId, std::string>>& retries)>;
  void on_before_ack(BeforeAck hook);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mqkit
