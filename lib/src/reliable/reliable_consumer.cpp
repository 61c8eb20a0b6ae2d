// ReliableConsumer: ATTACH, then a loop of DELIVER -> handler -> ACK/NACK,
// with batched acks, heartbeats and re-attaching after a proxy restart.
#include "mqkit/reliable_consumer.hpp"

#include <algorithm>
#include <atomic>
#include <deque>
#include <mutex>
#include <optional>

#include "mqkit/error.hpp"
#include "protocol/commands.hpp"
#include "reliable/busy_beat.hpp"
#include "security/connection_watch.hpp"
#include "wire/socket.hpp"
#include "wire/stop_event.hpp"
#include "wire/wait.hpp"

namespace mqkit {
namespace {
using namespace detail::protocol;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int kMissedHeartbeats = 5;  // proxy silence that makes the worker attach again

using detail::view;
}  // namespace

struct ReliableConsumer::Impl {
  ReliableConsumerOptions options;
  zmq::socket_t socket;
  // Why a handshake failed, for the first attach's error; gone once attached
  // (nothing would read its events any more).
  std::optional<detail::ConnectionWatch> watch;
  std::mutex socket_mutex;  // the run loop and the heartbeat thread share the socket
  detail::StopEvent stop;
  detail::EnvelopeCodec codec;
  milliseconds heartbeat{1000}, ack_timeout{0};  // from the proxy's ATTACHED
  Clock::time_point last_heard = Clock::now(), next_beat = Clock::now();
  std::vector<MessageId> acks;  // handled, not yet sent
  BeforeAck before_ack;

  // Everything delivered to this worker and not yet acked or nacked, in
  // delivery order (guarded by socket_mutex): while a handler or the
  // before-ack hook runs, the heartbeat thread keeps their leases (IN_PROGRESS)
  // up to options.max_lease, so messages waiting their turn here do not time
  // out in the proxy.
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
  // Commands the heartbeat thread read while a handler ran (guarded by
  // socket_mutex): DELIVERs that came meanwhile are held (leased) at once,
  // and handled by run() in order.
  struct Incoming {
    zmq::message_t command;
    std::vector<zmq::message_t> frames;
    bool leased = false;                 // its messages were put in `held`...
    std::uint64_t leased_at_clears = 0;  // ...when held_clears was this
  };
  std::deque<Incoming> incoming;
  detail::EnvelopeCodec beat_codec;  // the heartbeat thread's
  // The message the handler is working on (guarded by socket_mutex).
  std::optional<MessageId> handling;
  Clock::time_point last_progress = Clock::now();
  detail::BusyBeat busy{socket_mutex};  // last: stopped before what it uses goes

  Impl(const std::string& endpoint, const ReliableConsumerOptions& o)
      : options(o),
        socket(detail::open_socket(zmq::socket_type::dealer, o.socket)),
        watch(std::in_place, socket, o.socket.security.client.has_value()) {
    detail::attach(socket, connect(endpoint));
  }

  // Callers hold socket_mutex (or are the only thread, before run()).
  void send(const CommandFrame& c) {
    const auto encoded = encode_command(c);
    (void)socket.send(zmq::buffer(encoded), zmq::send_flags::none);
  }

  void send_attach() {
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

  // `lock` holds socket_mutex. The before-ack hook may wait (a bridge waits
  // for its target): it runs with the heartbeat on, like a handler.
  void flush_acks(std::unique_lock<std::mutex>& lock) {
    if (acks.empty()) return;
    std::vector<std::pair<MessageId, std::string>> retries;
    const std::vector<MessageId> settled = acks;
    if (before_ack) busy.while_busy(lock, [&] { before_ack(acks, retries); });
    if (!acks.empty()) send({.command = Command::ack, .ids = acks});
    acks.clear();
    for (auto& [id, reason] : retries)
      send({.command = Command::nack,
            .ids = {id},
            .action = NackAction::retry,
            .reason = std::move(reason)});
    let_go(settled);
  }

  bool stopping() const noexcept { return stop.is_set() || detail::global_stop().is_set(); }

  // Waits for input; false on timeout or stop.
  bool wait(milliseconds timeout) {
    return detail::wait_readable(socket, stop, timeout) == detail::Wait::readable;
  }

  void attached(const CommandFrame& c) {
    if (c.heartbeat_ms > 0) heartbeat = milliseconds(c.heartbeat_ms);
    if (c.ack_timeout_ms > 0) ack_timeout = milliseconds(c.ack_timeout_ms);
  }

  void attach(milliseconds timeout) {
    send_attach();
    // In short steps: a failed CURVE handshake is said at once, with the
    // key to check, rather than taken for a missing proxy at the timeout.
    const auto until = Clock::now() + timeout;
    const std::string attaching = "the proxy did not answer the attach to group '" + options.group;
    for (;;) {
      const auto left = std::chrono::duration_cast<milliseconds>(until - Clock::now());
      if (wait(std::clamp(left, milliseconds(0), milliseconds(100)))) break;
      (void)watch->dropped();
      if (!watch->problem().empty())
        throw Error(errc::timeout, attaching + "': " + watch->problem());
      if (left <= milliseconds(0) || stopping())
        throw Error(errc::timeout, attaching + "' (is a proxy's --back there?)");
    }
    zmq::message_t reply;
    (void)socket.recv(reply);
    CommandFrame c;
    if (!decode_command(view(reply), c)) throw Error(errc::malformed, "bad reply to attach");
    if (c.command == Command::error) throw Error(errc::bad_argument, "proxy refused: " + c.reason);
    if (c.command != Command::attached) throw Error(errc::malformed, "unexpected reply to attach");
    attached(c);
    watch.reset();
    last_heard = Clock::now();
    busy.start(
        [this] {
          // Often enough for both the heartbeat and the leases.
          return ack_timeout.count() > 0 ? std::min(heartbeat, ack_timeout / 3) : heartbeat;
        },
        [this] { beat_while_handling(); });
  }

  // Under socket_mutex: the next command, queued or from the socket.
  bool receive(Incoming& out) {
    if (!incoming.empty()) {
      out = std::move(incoming.front());
      incoming.pop_front();
      return true;
    }
    out.frames.clear();
    out.leased = false;
    return receive_from_socket(out);
  }

  // On the heartbeat thread: what arrived while the handler runs is read,
  // so that messages delivered meanwhile are leased too.
  void take_incoming(Clock::time_point now) {
    Incoming in;
    for (int n = 0; n < 64 && receive_from_socket(in); ++n) {
      last_heard = now;
      CommandFrame c;
      if (decode_command(view(in.command), c) && c.command == Command::deliver) {
        Message m;
        for (const auto& f : in.frames)
          if (beat_codec.decode(view(f), m, options.socket.limits))
            held.push_back({m.id(), now, false});
        in.leased = true;
        in.leased_at_clears = held_clears;
      }
      incoming.push_back(std::move(in));
      in = Incoming{};
    }
  }

  // Appends the frames after the command to out.frames.
  bool receive_from_socket(Incoming& out) {
    if (!socket.recv(out.command, zmq::recv_flags::dontwait)) return false;
    for (bool more = out.command.more(); more;) {
      out.frames.emplace_back();
      (void)socket.recv(out.frames.back(), zmq::recv_flags::dontwait);
      more = out.frames.back().more();
    }
    return true;
  }

  // On the heartbeat thread, while a handler runs (the loop does its own
  // heartbeats otherwise).
  void beat_while_handling() {
    const auto now = Clock::now();
    take_incoming(now);
    if (now >= next_beat) {
      send({.command = Command::heartbeat});
      next_beat = now + heartbeat;
    }
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

  void handle(const Message& message, const Handler& handler, std::unique_lock<std::mutex>& lock) {
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
    busy.while_busy(lock, [&] {
      try {
        outcome = handler(message);
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

  void run(const Handler& handler) {
    std::unique_lock lock(socket_mutex);
    Incoming in;
    while (!stopping()) {
      auto now = Clock::now();
      if (now >= next_beat) {
        send({.command = Command::heartbeat});
        next_beat = now + heartbeat;
      }
      if (now - last_heard > kMissedHeartbeats * heartbeat) {
        send_attach();  // the proxy went away or forgot us: join again
        last_heard = now;
      }
      const auto until_beat = std::chrono::duration_cast<milliseconds>(next_beat - now);
      if (incoming.empty() && !wait(std::max(until_beat, milliseconds(1)))) continue;
      while (!stopping() && receive(in)) {
        last_heard = Clock::now();
        const auto& frames = in.frames;
        CommandFrame c;
        if (!decode_command(view(in.command), c)) continue;
        if (c.command == Command::error && c.reason.starts_with(kNotAttached)) {
          acks.clear();  // this proxy does not know those deliveries
          clear_held();
          send_attach();
        } else if (c.command == Command::attached) {
          attached(c);
        } else if (c.command == Command::deliver) {
          // All of them are held from now on: their leases are kept while
          // the ones before them are handled.
          batch.resize(frames.size());
          std::size_t decoded = 0;
          for (std::size_t f = 0; f < frames.size(); ++f)
            if (codec.decode(view(frames[f]), batch[decoded], options.socket.limits)) {
              // The attempt comes in DELIVER (1.3); the frame keeps the one
              // it was published with.
              if (f < c.attempts.size()) batch[decoded].envelope.attempt = c.attempts[f];
              const MessageId id = batch[decoded].id();
              if (!in.leased || in.leased_at_clears != held_clears)
                held.push_back({id, Clock::now(), false});
              ++decoded;
            }
          for (std::size_t i = 0; i < decoded; ++i) {
            if (stopping()) break;  // the rest go back with the DETACH
            handle(batch[i], handler, lock);
          }
        }
      }
      flush_acks(lock);
    }
    flush_acks(lock);
  }

  void detach() {
    std::unique_lock lock(socket_mutex);
    flush_acks(lock);
    clear_held();  // the proxy takes them back
    send({.command = Command::detach});
  }
};

ReliableConsumer::ReliableConsumer(const std::string& proxy_back,
                                   const ReliableConsumerOptions& options,
                                   std::chrono::milliseconds attach_timeout)
    : impl_(std::make_unique<Impl>(proxy_back, options)) {
  impl_->attach(attach_timeout);
}

ReliableConsumer::~ReliableConsumer() {
  if (!impl_) return;
  try {
    impl_->detach();
  } catch (...) {
  }
}

ReliableConsumer::ReliableConsumer(ReliableConsumer&&) noexcept = default;
ReliableConsumer& ReliableConsumer::operator=(ReliableConsumer&&) noexcept = default;

void ReliableConsumer::run(const Handler& handler) {
  impl_->run(handler);
}

void ReliableConsumer::run_auto(const std::function<void(const Message&)>& handler) {
  impl_->run([&handler](const Message& m) {
    handler(m);  // a throw becomes a retry with the exception's text
    return Outcome::ack;
  });
}

void ReliableConsumer::on_before_ack(BeforeAck hook) {
  impl_->before_ack = std::move(hook);
}

void ReliableConsumer::stop() noexcept {
  impl_->stop.signal();
}

}  // namespace mqkit
