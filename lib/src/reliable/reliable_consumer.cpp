// ReliableConsumer: ATTACH, then a loop of DELIVER -> handler -> ACK/NACK.
#include "mqkit/reliable_consumer.hpp"

#include "mqkit/error.hpp"
#include "reliable/protocol.hpp"
#include "wire/socket.hpp"
#include "wire/stop_event.hpp"

namespace mqkit {
namespace {
using namespace detail::proxy;

std::string_view view(const zmq::message_t& m) {
  return {static_cast<const char*>(m.data()), m.size()};
}
}  // namespace

struct ReliableConsumer::Impl {
  ReliableConsumerOptions options;
  zmq::socket_t socket;
  detail::StopEvent stop;
  detail::EnvelopeCodec codec;

  Impl(const std::string& endpoint, const ReliableConsumerOptions& o)
      : options(o), socket(detail::open_socket(zmq::socket_type::dealer, o.socket)) {
    detail::attach(socket, connect(endpoint));
  }

  void send(const CommandFrame& c) {
    const auto encoded = encode_command(c);
    (void)socket.send(zmq::buffer(encoded), zmq::send_flags::none);
  }

  bool stopping() const noexcept { return stop.is_set() || detail::global_stop().is_set(); }

  // Waits for input; false on timeout or stop.
  bool wait(std::chrono::milliseconds timeout) {
    zmq::pollitem_t items[] = {{socket.handle(), 0, ZMQ_POLLIN, 0},
                               {nullptr, stop.fd(), ZMQ_POLLIN, 0},
                               {nullptr, detail::global_stop().fd(), ZMQ_POLLIN, 0}};
    try {
      zmq::poll(items, 3, timeout);
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) throw;
    }
    return !stopping() && (items[0].revents & ZMQ_POLLIN);
  }

  void attach(std::chrono::milliseconds timeout) {
    send({.command = Command::attach,
          .group = options.group,
          .filters = options.filters,
          .credit = options.prefetch});
    if (!wait(timeout))
      throw Error(errc::timeout, "the proxy did not answer the attach to group '" + options.group +
                                     "' (is a proxy's --back there?)");
    zmq::message_t reply;
    (void)socket.recv(reply);
    CommandFrame c;
    if (!decode_command(view(reply), c)) throw Error(errc::malformed, "bad reply to attach");
    if (c.command == Command::error) throw Error(errc::bad_argument, "proxy refused: " + c.reason);
    if (c.command != Command::attached) throw Error(errc::malformed, "unexpected reply to attach");
  }

  void run(const Handler& handler) {
    Message message;
    while (!stopping()) {
      if (!wait(std::chrono::milliseconds(-1))) continue;
      zmq::message_t command, frame;
      while (!stopping() && socket.recv(command, zmq::recv_flags::dontwait)) {
        std::vector<zmq::message_t> frames;
        for (bool more = command.more(); more;) {
          frames.emplace_back();
          (void)socket.recv(frames.back(), zmq::recv_flags::dontwait);
          more = frames.back().more();
        }
        CommandFrame c;
        if (!decode_command(view(command), c) || c.command != Command::deliver) continue;
        for (const auto& f : frames) {
          if (!codec.decode(view(f), message, options.socket.limits)) continue;
          Outcome outcome = Outcome::retry;
          std::string reason;
          try {
            outcome = handler(message);
          } catch (const std::exception& e) {
            reason = e.what();
          }
          if (outcome == Outcome::ack) {
            send({.command = Command::ack, .ids = {message.id()}});
          } else {
            send(
                {.command = Command::nack,
                 .ids = {message.id()},
                 .action = outcome == Outcome::dead ? NackAction::dead : NackAction::retry,
                 .reason = reason.empty()
                               ? "handler asked for a " +
                                     std::string(outcome == Outcome::dead ? "dead letter" : "retry")
                               : reason});
          }
        }
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
  if (!impl_) return;
  try {
    impl_->send({.command = Command::detach});
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

void ReliableConsumer::stop() noexcept {
  impl_->stop.signal();
}

}  // namespace mqkit
