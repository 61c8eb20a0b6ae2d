// ReliableProducer: a DEALER, the unconfirmed messages in the order they
// were given, and a loop that reads CONFIRMs and re-sends what went
// unanswered.
//
// Order: every re-send is a round that sends all unconfirmed messages again
// from the oldest, in their original order, before anything newer goes out.
// A round starts when the oldest has waited `resend_after`, when the
// connection drops (a socket monitor tells), or after a `full` answer. The
// socket queues only to a live connection (ZMQ_IMMEDIATE), so after a drop
// nothing old is left queued to overtake the round. The socket, its
// connection watch and the waits are a ClientSession's (no heartbeats: a
// producer's session is never joined).
#include "mqkit/reliable_producer.hpp"

#include <algorithm>
#include <array>
#include <map>
#include <unordered_map>

#include "detail/wall_clock.hpp"
#include "mqkit/error.hpp"
#include "protocol/commands.hpp"
#include "wire/client_session.hpp"

namespace mqkit {
namespace {
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using namespace detail::protocol;

constexpr milliseconds kFullPause{200};  // after a `full` answer, before the round
// Timer rounds back off while nothing is confirmed: a paused or slow device
// that keeps its connection would otherwise get (and the socket would queue)
// another copy of everything unconfirmed every `resend_after`.
constexpr milliseconds kMaxResendInterval{30000};

SocketOptions immediate(SocketOptions o) {
  o.immediate = true;
  return o;
}
}  // namespace

const char* to_string(PublishStatus status) noexcept {
  switch (status) {
    case PublishStatus::stored:
      return "stored";
    case PublishStatus::duplicate:
      return "duplicate";
    case PublishStatus::full:
      return "full";
    case PublishStatus::unroutable:
      return "unroutable";
    case PublishStatus::rejected:
      return "rejected";
    case PublishStatus::timeout:
      return "timeout";
  }
  return "unknown";
}

struct ReliableProducer::Impl {
  struct Pending {
    MessageId id;
    std::string frame;
    Callback done;
    Clock::time_point first_sent;
    Clock::time_point last_sent;  // or when it was added, until it leaves
  };
  using Queue = std::map<std::uint64_t, Pending>;  // by sequence: the order of send_async

  static constexpr std::size_t kMaxBatch = 64;  // messages in one PUBLISH

  ReliableProducerOptions options;
  // Its watch: drops, and why a handshake failed; its stop(): ends this
  // producer's waits.
  detail::ClientSession session;
  std::string command;  // the encoded PUBLISH command, the same for every message
  Queue pending;
  std::unordered_map<MessageId, std::uint64_t> sequence_of;
  std::uint64_t next_sequence = 0;
  std::uint64_t unsent_from = 0;  // pending messages from this sequence on are still to (re)send
  std::size_t unsent = 0;         // how many those are
  std::optional<Clock::time_point> full_round;  // a `full` answer: a round at this time
  // resend_after, doubled per silent round (options is declared above)
  milliseconds resend_interval = std::max(options.resend_after, milliseconds(1));

  Impl(const std::string& endpoint, const ReliableProducerOptions& o)
      : options(o), session(endpoint, immediate(o.socket), /*watch=*/true) {
    command = encode_command({.command = Command::publish, .target_group = o.target_group});
  }

  bool stopped() const noexcept { return session.stop_event().is_set(); }

  // Everything unconfirmed is to be sent again, from the oldest.
  void start_round() {
    full_round.reset();
    unsent_from = pending.empty() ? next_sequence : pending.begin()->first;
    unsent = pending.size();
  }

  // PUBLISH batches of what is to send, in order. When the socket takes
  // nothing now (no connection, or its queue is full) the rest waits for
  // the next turn. A pending `full` round holds everything back.
  bool send_unsent() {
    if (unsent == 0) return true;
    if (full_round) return false;
    const auto now = Clock::now();
    auto it = pending.lower_bound(unsent_from);
    std::array<std::string_view, kMaxBatch> frames;
    while (it != pending.end()) {
      std::size_t n = 0;
      for (auto b = it; b != pending.end() && n < kMaxBatch; ++b) frames[n++] = b->second.frame;
      if (!session.try_send(command, {frames.data(), n})) return false;
      for (std::size_t i = 0; i < n; ++i, ++it) it->second.last_sent = now;
      unsent -= n;
      unsent_from = it == pending.end() ? next_sequence : it->first;
    }
    return true;
  }

  void finish(Queue::iterator it, PublishResult result) {
    if (it->first >= unsent_from) --unsent;
    Callback done = std::move(it->second.done);
    sequence_of.erase(it->second.id);
    pending.erase(it);
    if (done) done(result);
  }

  // Why a message timed out: what the connection said, if anything.
  std::string timeout_reason() const {
    const auto problem = session.connection_problem();
    return problem.empty() ? "no confirm in time" : "no confirm in time: " + problem;
  }

  void take_confirms() {
    detail::Incoming reply;
    while (session.receive(reply)) {
      CommandFrame c;
      if (!decode_command(reply.command(), c) || c.command != Command::confirm) continue;
      for (const auto& k : c.confirmations) {
        auto s = sequence_of.find(k.id);
        if (s == sequence_of.end()) continue;
        if (k.status == ConfirmStatus::full) {  // backpressure: all again, in order, a little later
          if (!full_round) full_round = Clock::now() + kFullPause;
          continue;
        }
        resend_interval = std::max(options.resend_after, milliseconds(1));  // the device answers
        finish(pending.find(s->second), {k.id, static_cast<PublishStatus>(k.status), k.reason});
      }
    }
  }

  // Rounds and timeouts that are due.
  void check_time() {
    const auto now = Clock::now();
    while (!pending.empty() && now - pending.begin()->second.first_sent >= options.timeout)
      finish(pending.begin(),
             {pending.begin()->second.id, PublishStatus::timeout, timeout_reason()});
    if (full_round && *full_round <= now)
      start_round();
    else if (!full_round && !pending.empty() && pending.begin()->first < unsent_from &&
             now - pending.begin()->second.last_sent >= resend_interval) {
      start_round();
      resend_interval =
          std::min(resend_interval * 2, std::max(kMaxResendInterval, resend_interval));
    }
  }

  // Sends what is queued, reads confirms and re-sends what is due; waits up
  // to `wait` for input.
  void pump(milliseconds wait) {
    if (session.dropped()) start_round();
    if (!send_unsent()) wait = std::min(wait, milliseconds(5));
    (void)session.wait(wait);  // for input, a connection event or a stop
    // A drop seen now also covers confirms that will never come.
    if (session.dropped()) start_round();
    take_confirms();
    check_time();
    send_unsent();
  }

  void add(const Envelope& e, std::string_view payload, Callback done) {
    while (pending.size() >= options.window && !detail::global_stop().is_set() && !stopped())
      pump(milliseconds(50));
    if (sequence_of.contains(e.id))
      throw Error(errc::bad_argument,
                  "message " + e.id.to_string() + " is already waiting for its confirm");
    const auto now = Clock::now();
    const std::uint64_t sequence = next_sequence++;
    std::string frame;
    if (options.delay.count() > 0 && e.not_before == 0) {
      Envelope scheduled = e;
      scheduled.not_before = detail::now_ms() + static_cast<std::uint64_t>(options.delay.count());
      frame = encode(scheduled, payload);
    } else {
      frame = encode(e, payload);
    }
    sequence_of.emplace(e.id, sequence);
    pending.emplace_hint(pending.end(), sequence,
                         Pending{e.id, std::move(frame), std::move(done), now, now});
    if (unsent++ == 0) unsent_from = sequence;
    // A full batch goes now; while the socket takes nothing (no connection
    // yet) wait in short steps, taking confirms and timeouts meanwhile.
    if (unsent >= kMaxBatch) pump(milliseconds(0));
    while (unsent >= kMaxBatch && !detail::global_stop().is_set() && !stopped())
      pump(milliseconds(5));
  }
};

ReliableProducer::ReliableProducer(const std::string& proxy_front,
                                   const ReliableProducerOptions& options)
    : impl_(std::make_unique<Impl>(proxy_front, options)) {}
ReliableProducer::~ReliableProducer() = default;
ReliableProducer::ReliableProducer(ReliableProducer&&) noexcept = default;
ReliableProducer& ReliableProducer::operator=(ReliableProducer&&) noexcept = default;

PublishResult ReliableProducer::send(std::string_view topic, std::string_view payload) {
  return send(Envelope::make(std::string(topic)), payload);
}

PublishResult ReliableProducer::send(const Envelope& envelope, std::string_view payload) {
  // Shared with the callback: a send that throws (a stop) leaves its message
  // pending, and a later flush may still deliver its confirm.
  auto result = std::make_shared<std::optional<PublishResult>>();
  send_async(envelope, payload, [result](const PublishResult& r) { *result = r; });
  while (!*result) {
    if (detail::global_stop().is_set() || impl_->stopped())
      throw Error(errc::stopped, "stopped waiting for a confirm");
    impl_->pump(milliseconds(50));
  }
  return **result;
}

void ReliableProducer::send_async(const Envelope& envelope, std::string_view payload,
                                  Callback done) {
  impl_->add(envelope, payload, std::move(done));
}

std::size_t ReliableProducer::flush(milliseconds timeout) {
  const bool bounded = timeout.count() >= 0;
  // A process-wide stop that comes while it waits ends the wait; one that
  // came before lets a bounded flush collect the confirms already due.
  const bool heed_stop = !bounded || !detail::global_stop().is_set();
  const auto deadline = Clock::now() + timeout;
  do {  // at least one turn: flush(0ms) sends what is queued and takes what came in
    auto wait = milliseconds(50);
    if (bounded)
      wait = std::clamp(std::chrono::duration_cast<milliseconds>(deadline - Clock::now()),
                        milliseconds(0), wait);
    impl_->pump(impl_->pending.empty() ? milliseconds(0) : wait);
  } while (!impl_->pending.empty() && !impl_->stopped() &&
           !(heed_stop && detail::global_stop().is_set()) && (!bounded || Clock::now() < deadline));
  return impl_->pending.size();
}

std::size_t ReliableProducer::unconfirmed() const noexcept {
  return impl_->pending.size();
}

std::string ReliableProducer::connection_problem() const {
  return impl_->session.connection_problem();
}

void ReliableProducer::stop() noexcept {
  if (impl_) impl_->session.stop();
}

}  // namespace mqkit
