// ReliableProducer: a DEALER, a table of unconfirmed messages, and a loop
// that reads CONFIRMs and re-sends what went unanswered.
#include "mqkit/reliable_producer.hpp"

#include <algorithm>
#include <map>
#include <thread>
#include <unordered_map>

#include "mqkit/error.hpp"
#include "reliable/protocol.hpp"
#include "wire/socket.hpp"
#include "wire/stop_event.hpp"

namespace mqkit {
namespace {
using Clock = std::chrono::steady_clock;
using namespace detail::proxy;
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
  using Timers = std::multimap<Clock::time_point, MessageId>;
  struct Pending {
    std::string frame;
    Callback done;
    Clock::time_point first_sent;
    Timers::iterator resend;  // its entry in `resends`
  };

  static constexpr std::size_t kMaxBatch = 64;  // messages in one PUBLISH

  ReliableProducerOptions options;
  zmq::socket_t socket;
  std::string command;  // the encoded PUBLISH command, the same for every message
  std::unordered_map<MessageId, Pending> pending;
  Timers resends;                 // when each unconfirmed message is sent again
  std::vector<MessageId> outbox;  // added, not yet sent

  Impl(const std::string& endpoint, const ReliableProducerOptions& o)
      : options(o), socket(detail::open_socket(zmq::socket_type::dealer, o.socket)) {
    detail::attach(socket, connect(endpoint));
    command = encode_command({.command = Command::publish, .target_group = o.target_group});
  }

  // One PUBLISH with the outbox's messages. When the socket takes nothing
  // now (not connected yet with ZMQ_IMMEDIATE, or its queue is full) they
  // stay in the outbox for the next turn; their resend time still runs.
  bool send_outbox() {
    if (outbox.empty()) return true;
    if (!socket.send(zmq::buffer(command), zmq::send_flags::sndmore | zmq::send_flags::dontwait))
      return false;
    for (std::size_t i = 0; i < outbox.size(); ++i)
      (void)socket.send(zmq::buffer(pending.at(outbox[i]).frame),
                        i + 1 < outbox.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    outbox.clear();
    return true;
  }

  void schedule(Pending& p, const MessageId& id, Clock::time_point at) {
    resends.erase(p.resend);
    p.resend = resends.emplace(at, id);
  }

  void finish(std::unordered_map<MessageId, Pending>::iterator it, PublishResult result) {
    if (auto o = std::find(outbox.begin(), outbox.end(), it->first); o != outbox.end())
      outbox.erase(o);  // a timeout while still unsent
    Callback done = std::move(it->second.done);
    resends.erase(it->second.resend);
    pending.erase(it);
    if (done) done(result);
  }

  // Sends what is queued, reads confirms and re-sends what is due; waits up
  // to `wait` for input.
  void pump(std::chrono::milliseconds wait) {
    if (!send_outbox()) wait = std::min(wait, std::chrono::milliseconds(5));
    zmq::pollitem_t items[] = {{socket.handle(), 0, ZMQ_POLLIN, 0},
                               {nullptr, detail::global_stop().fd(), ZMQ_POLLIN, 0}};
    try {
      zmq::poll(items, 2, wait);
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) throw;
    }
    zmq::message_t reply;
    while (socket.recv(reply, zmq::recv_flags::dontwait)) {
      while (reply.more()) (void)socket.recv(reply, zmq::recv_flags::dontwait);
      CommandFrame c;
      if (!decode_command({static_cast<const char*>(reply.data()), reply.size()}, c) ||
          c.command != Command::confirm)
        continue;
      for (const auto& k : c.confirmations) {
        auto it = pending.find(k.id);
        if (it == pending.end()) continue;
        if (k.status == ConfirmStatus::full) {  // backpressure: try again a little later
          schedule(it->second, k.id, Clock::now() + std::chrono::milliseconds(200));
          continue;
        }
        finish(it, {k.id, static_cast<PublishStatus>(k.status), k.reason});
      }
    }
    const auto now = Clock::now();
    while (!resends.empty() && resends.begin()->first <= now) {
      const MessageId id = resends.begin()->second;
      auto it = pending.find(id);
      if (now - it->second.first_sent >= options.timeout) {
        finish(it, {id, PublishStatus::timeout, "no confirm in time"});
        continue;
      }
      schedule(it->second, id, now + options.resend_after);
      if (std::find(outbox.begin(), outbox.end(), id) == outbox.end()) outbox.push_back(id);
      if (outbox.size() >= kMaxBatch && !send_outbox()) break;
    }
    send_outbox();
  }

  void add(const Envelope& e, std::string_view payload, Callback done) {
    while (pending.size() >= options.window && !detail::global_stop().is_set())
      pump(std::chrono::milliseconds(50));
    const auto now = Clock::now();
    auto [it, inserted] = pending.try_emplace(e.id);
    if (!inserted)
      throw Error(errc::bad_argument,
                  "message " + e.id.to_string() + " is already waiting for its confirm");
    it->second.frame = encode(e, payload);
    it->second.done = std::move(done);
    it->second.first_sent = now;
    it->second.resend = resends.emplace(now + options.resend_after, e.id);
    outbox.push_back(e.id);
    // A full batch goes now; while the socket takes nothing (no connection
    // yet) wait in short steps, taking confirms and timeouts meanwhile.
    if (outbox.size() >= kMaxBatch) pump(std::chrono::milliseconds(0));
    while (outbox.size() >= kMaxBatch && !detail::global_stop().is_set())
      pump(std::chrono::milliseconds(5));
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
  std::optional<PublishResult> result;
  send_async(envelope, payload, [&result](const PublishResult& r) { result = r; });
  while (!result) {
    if (detail::global_stop().is_set()) throw Error(errc::stopped, "stopped waiting for a confirm");
    impl_->pump(std::chrono::milliseconds(50));
  }
  return *result;
}

void ReliableProducer::send_async(const Envelope& envelope, std::string_view payload,
                                  Callback done) {
  impl_->add(envelope, payload, std::move(done));
}

std::size_t ReliableProducer::flush(std::chrono::milliseconds timeout) {
  using std::chrono::milliseconds;
  const auto deadline = Clock::now() + timeout;
  do {  // at least one turn: flush(0ms) sends what is queued and takes what came in
    auto wait = milliseconds(50);
    if (timeout.count() >= 0)
      wait = std::clamp(std::chrono::duration_cast<milliseconds>(deadline - Clock::now()),
                        milliseconds(0), wait);
    impl_->pump(impl_->pending.empty() ? milliseconds(0) : wait);
  } while (!impl_->pending.empty() && !detail::global_stop().is_set() &&
           (timeout.count() < 0 || Clock::now() < deadline));
  return impl_->pending.size();
}

std::size_t ReliableProducer::unconfirmed() const noexcept {
  return impl_->pending.size();
}

}  // namespace mqkit
