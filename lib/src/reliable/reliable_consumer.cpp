// ReliableConsumer: ATTACH, then DELIVER -> handler -> ACK/NACK with batched
// acks and the leases of what it holds, as a handler over a ClientSession
// (which heartbeats and attaches again after a proxy restart).
#include "mqkit/reliable_consumer.hpp"

#include <algorithm>
#include <deque>
#include <mutex>
#include <optional>

#include "mqkit/error.hpp"
#include "protocol/commands.hpp"
#include "wire/client_session.hpp"

namespace mqkit {
namespace {
using namespace detail::protocol;
using Clock = std::chrono::steady_clock;
using detail::Incoming;
using std::chrono::milliseconds;
}  // namespace

// Its methods run under the session's mutex (see detail::SessionHandler).
struct ReliableConsumer::Impl final : detail::SessionHandler {
  ReliableConsumerOptions options;
  detail::EnvelopeCodec codec;
  milliseconds ack_timeout{0};  // from the proxy's ATTACHED
  std::vector<MessageId> acks;  // handled, not yet sent
  BeforeAck before_ack;

  // Everything delivered to this worker and not yet acked or nacked, in
  // delivery order: while a handler or the before-ack hook runs, the
  // heartbeat thread keeps their leases (IN_PROGRESS) up to
  // options.max_lease, so messages waiting their turn here do not time out
  // in the proxy.
  struct Held {
    MessageId id;
    Clock::time_point since;
    bool started = false;  // its handler ran or runs
  };
  std::deque<Held> held;
  // Messages are handled in delivery order: the first `started_count` of
  // `held` have started, so the next to start is found at once.
  std::size_t started_count = 0;
  std::uint64_t held_clears = 0;  // a leased DELIVER is in `held` unless cleared since
  std::vector<Message> batch;     // one DELIVER's messages, decoded
  // The heartbeat thread reads the commands that come while a handler runs
  // (the session queues them for run(), in order): the messages of a DELIVER
  // among them are held (leased) at once, and its Incoming::note says so:
  // held_clears + 1 at that time.
  detail::EnvelopeCodec beat_codec;  // the heartbeat thread's
  // The message the handler is working on.
  std::optional<MessageId> handling;
  Clock::time_point last_progress = Clock::now();
  const Handler* handler = nullptr;  // run()'s
  detail::ClientSession session;     // last: its beat thread stops before what it uses goes

  Impl(const std::string& endpoint, const ReliableConsumerOptions& o)
      : options(o), session(endpoint, o.socket, /*watch=*/true) {}

  // Callers hold the session's mutex (or are the only thread, before run()).
  void send(const CommandFrame& c) { session.send(c); }

  void join() override {
    send({.command = Command::attach,
          .group = options.group,
          .filters = options.filters,
          .credit = options.prefetch});
  }

  void clear_held() {
    held.clear();
    started_count = 0;
    ++held_clears;
  }

  // Stops keeping the leases of `ids` (acked, nacked, or left to time out).
  void let_go(const std::vector<MessageId>& ids) {
    std::size_t i = 0;  // the common case: the oldest held, in order
    while (i < ids.size() && !held.empty() && held.front().id == ids[i]) {
      held.pop_front();
      if (started_count > 0) --started_count;
      ++i;
    }
    if (i == ids.size()) return;
    // One entry per id: a redelivered copy the heartbeat thread leased meanwhile keeps its own.
    for (; i < ids.size(); ++i)
      if (auto h =
              std::find_if(held.begin(), held.end(), [&](const Held& w) { return w.id == ids[i]; });
          h != held.end())
        held.erase(h);
    started_count = 0;
    while (started_count < held.size() && held[started_count].started) ++started_count;
  }

  // `lock` holds the session's mutex. The before-ack hook may wait (a bridge
  // waits for its target): it runs with the heartbeat on, like a handler.
  void flush_acks(std::unique_lock<std::mutex>& lock) {
    if (acks.empty()) return;
    std::vector<std::pair<MessageId, std::string>> retries;
    const std::vector<MessageId> settled = acks;
    if (before_ack) session.while_busy(lock, [&] { before_ack(acks, retries); });
    if (!acks.empty()) send({.command = Command::ack, .ids = acks});
    acks.clear();
    for (auto& [id, reason] : retries)
      send({.command = Command::nack,
            .ids = {id},
            .action = NackAction::retry,
            .reason = std::move(reason)});
    let_go(settled);
  }

  void settle(std::unique_lock<std::mutex>& lock) override { flush_acks(lock); }

  void attached(const CommandFrame& c) {
    session.set_heartbeat(milliseconds(c.heartbeat_ms));
    if (c.ack_timeout_ms > 0) ack_timeout = milliseconds(c.ack_timeout_ms);
  }

  void attach(milliseconds timeout) {
    join();
    session.await_answer(Clock::now() + timeout,
                         "the proxy did not answer the attach to group '" + options.group + "'",
                         "(is a proxy's --back there?)");
    Incoming reply;
    CommandFrame c;
    if (!session.receive(reply) || !decode_command(reply.command(), c))
      throw Error(errc::malformed, "bad reply to attach");
    if (c.command == Command::error) throw Error(errc::bad_argument, "proxy refused: " + c.reason);
    if (c.command != Command::attached) throw Error(errc::malformed, "unexpected reply to attach");
    attached(c);
    session.joined(*this);
  }

  // Often enough for both the heartbeat and the leases.
  milliseconds beat_interval(milliseconds heartbeat) override {
    return ack_timeout.count() > 0 ? std::min(heartbeat, ack_timeout / 3) : heartbeat;
  }

  // A DELIVER carries one attempt per frame, or none (a 1.2 proxy). Any
  // other count is a peer's mistake: a frame would be handled with the
  // attempt it was published with, lower than the proxy's. Such a DELIVER
  // is neither leased nor handled, so the proxy hands its messages out again
  // after their ack timeout.
  static bool attempts_match(const CommandFrame& c, std::size_t frames) {
    return c.attempts.empty() || c.attempts.size() == frames;
  }

  // On the heartbeat thread, while a handler runs: what arrived meanwhile is
  // read, so that messages delivered meanwhile are leased too; and the
  // leases are kept.
  void beat(Clock::time_point now) override {
    session.read_ahead([&](Incoming& in) {
      CommandFrame c;
      if (decode_command(in.command(), c) && c.command == Command::deliver &&
          attempts_match(c, in.frame_count())) {
        Message m;
        for (std::size_t f = 0; f < in.frame_count(); ++f)
          if (beat_codec.decode(in.frame(f), m, options.socket.limits))
            held.push_back({m.id(), now, false});
        in.note = held_clears + 1;
      }
      return true;
    });
    if (ack_timeout.count() <= 0 || now - last_progress < ack_timeout / 3) return;
    last_progress = now;
    // Started ones first (handled with their acks not sent yet, or being
    // handled), then those waiting their turn: a proxy that loses this
    // worker charges no attempt for these.
    std::vector<MessageId> ids;
    std::size_t started = 0;
    for (const bool want_started : {true, false})
      for (const auto& h : held)
        if (h.started == want_started &&
            (now - h.since < options.max_lease ||
             (options.in_progress_while_handling && handling && h.id == *handling))) {
          ids.push_back(h.id);
          started += want_started;
        }
    for (std::size_t at = 0; at < ids.size(); at += kMaxBatch) {
      const auto end = std::min(ids.size(), at + kMaxBatch);
      send({.command = Command::in_progress,
            .ids = std::vector<MessageId>(ids.begin() + static_cast<std::ptrdiff_t>(at),
                                          ids.begin() + static_cast<std::ptrdiff_t>(end)),
            .started = static_cast<std::uint32_t>(std::min(end, started) - std::min(at, started))});
    }
  }

  void handle(const Message& message, std::unique_lock<std::mutex>& lock) {
    Outcome outcome = Outcome::retry;
    std::string reason;
    handling = message.id();
    const auto first_waiting = held.begin() + static_cast<std::ptrdiff_t>(started_count);
    if (auto h = std::find_if(first_waiting, held.end(),
                              [&](const Held& w) { return w.id == message.id(); });
        h != held.end()) {
      h->started = true;
      while (started_count < held.size() && held[started_count].started) ++started_count;
    }
    session.while_busy(lock, [&] {
      try {
        outcome = (*handler)(message);
      } catch (const Reject& e) {
        outcome = Outcome::dead;
        reason = e.what();
      } catch (const std::exception& e) {
        reason = e.what();
      }
    });
    handling.reset();
    if (outcome == Outcome::ack) {
      acks.push_back(message.id());
      if (acks.size() >= std::clamp<std::size_t>(options.prefetch / 2, 1, 256)) flush_acks(lock);
      return;
    }
    flush_acks(lock);
    let_go({message.id()});
    send({.command = Command::nack,
          .ids = {message.id()},
          .action = outcome == Outcome::dead ? NackAction::dead : NackAction::retry,
          .reason = reason.empty()
                        ? "handler asked for a " +
                              std::string(outcome == Outcome::dead ? "dead letter" : "retry")
                        : reason});
  }

  void take(Incoming& in, std::unique_lock<std::mutex>& lock) override {
    CommandFrame c;
    if (!decode_command(in.command(), c)) return;
    if (c.command == Command::error && c.reason.starts_with(kNotAttached)) {
      acks.clear();  // this proxy does not know those deliveries
      clear_held();
      join();
    } else if (c.command == Command::attached) {
      attached(c);
    } else if (c.command == Command::deliver) {
      if (!attempts_match(c, in.frame_count())) return;
      // All of them are held from now on: their leases are kept while
      // the ones before them are handled.
      const bool leased = in.note == held_clears + 1;  // read ahead, held since
      batch.resize(in.frame_count());
      std::size_t decoded = 0;
      for (std::size_t f = 0; f < in.frame_count(); ++f)
        if (codec.decode(in.frame(f), batch[decoded], options.socket.limits)) {
          // The attempt comes in DELIVER (1.3); the frame keeps the one
          // it was published with.
          if (!c.attempts.empty()) batch[decoded].envelope.attempt = c.attempts[f];
          const MessageId id = batch[decoded].id();
          if (!leased) held.push_back({id, Clock::now(), false});
          ++decoded;
        }
      for (std::size_t i = 0; i < decoded; ++i) {
        if (session.stopping()) break;  // the rest go back with the DETACH
        handle(batch[i], lock);
      }
    }
  }
};

ReliableConsumer::ReliableConsumer(const std::string& proxy_back,
                                   const ReliableConsumerOptions& options,
                                   std::chrono::milliseconds attach_timeout)
    : impl_(std::make_unique<Impl>(proxy_back, options)) {
  impl_->attach(attach_timeout);
}

ReliableConsumer::~ReliableConsumer() {
  if (impl_) impl_->session.close(*impl_);
}

ReliableConsumer::ReliableConsumer(ReliableConsumer&&) noexcept = default;
ReliableConsumer& ReliableConsumer::operator=(ReliableConsumer&&) noexcept = default;

void ReliableConsumer::run(const Handler& handler) {
  impl_->handler = &handler;
  impl_->session.run(*impl_);
}

void ReliableConsumer::run_auto(const std::function<void(const Message&)>& handler) {
  run([&handler](const Message& m) {
    handler(m);  // a throw becomes a retry with the exception's text
    return Outcome::ack;
  });
}

void ReliableConsumer::on_before_ack(BeforeAck hook) {
  impl_->before_ack = std::move(hook);
}

void ReliableConsumer::stop() noexcept {
  impl_->session.stop();
}

}  // namespace mqkit
