// ReliableProducer: a DEALER, a table of unconfirmed messages, and a loop
// that reads CONFIRMs and re-sends what went unanswered.
#include "mqkit/reliable_producer.hpp"

#include <map>
#include <thread>

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
  struct Pending {
    std::string frame;
    Callback done;
    Clock::time_point first_sent, resend_at;
  };

  ReliableProducerOptions options;
  zmq::socket_t socket;
  std::string command;  // the encoded PUBLISH command, the same for every message
  std::map<MessageId, Pending> pending;

  Impl(const std::string& endpoint, const ReliableProducerOptions& o)
      : options(o), socket(detail::open_socket(zmq::socket_type::dealer, o.socket)) {
    detail::attach(socket, connect(endpoint));
    command = encode_command({.command = Command::publish, .target_group = o.target_group});
  }

  void transmit(const std::string& frame) {
    // DEALER queues while the proxy is away; a full queue is retried later.
    if (!socket.send(zmq::buffer(command), zmq::send_flags::sndmore | zmq::send_flags::dontwait))
      return;
    (void)socket.send(zmq::buffer(frame), zmq::send_flags::none);
  }

  void finish(std::map<MessageId, Pending>::iterator it, PublishResult result) {
    Callback done = std::move(it->second.done);
    pending.erase(it);
    if (done) done(result);
  }

  // Reads confirms and re-sends what is due; waits up to `wait` for input.
  void pump(std::chrono::milliseconds wait) {
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
        if (k.status == ConfirmStatus::full) {
          it->second.resend_at = Clock::now() + std::chrono::milliseconds(200);  // backpressure
          continue;
        }
        finish(it, {k.id, static_cast<PublishStatus>(k.status), k.reason});
      }
    }
    const auto now = Clock::now();
    for (auto it = pending.begin(); it != pending.end();) {
      auto next = std::next(it);
      if (now - it->second.first_sent >= options.timeout) {
        finish(it, {it->first, PublishStatus::timeout, "no confirm in time"});
      } else if (now >= it->second.resend_at) {
        transmit(it->second.frame);
        it->second.resend_at = now + options.resend_after;
      }
      it = next;
    }
  }

  void add(const Envelope& e, std::string_view payload, Callback done) {
    while (pending.size() >= options.window && !detail::global_stop().is_set())
      pump(std::chrono::milliseconds(50));
    std::string frame = encode(e, payload);
    transmit(frame);
    const auto now = Clock::now();
    pending[e.id] = {std::move(frame), std::move(done), now, now + options.resend_after};
    pump(std::chrono::milliseconds(0));
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
  const auto deadline = Clock::now() + timeout;
  while (!impl_->pending.empty() && !detail::global_stop().is_set()) {
    if (timeout.count() >= 0 && Clock::now() >= deadline) break;
    impl_->pump(std::chrono::milliseconds(50));
  }
  return impl_->pending.size();
}

std::size_t ReliableProducer::unconfirmed() const noexcept {
  return impl_->pending.size();
}

}  // namespace mqkit
