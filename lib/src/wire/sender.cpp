// One-frame sends for the sending patterns.
#include "wire/sender.hpp"

#include <cstring>

#include "wire/socket.hpp"

namespace mqkit::detail {

// The socket's ZMQ_SNDTIMEO is the user's send_timeout (open_socket sets it),
// so a blocked send waits inside libzmq; SIGINT/SIGTERM interrupt it (EINTR).
Sender::Sender(SendPattern pattern, const SocketOptions& options)
    : socket_(open_socket(
          pattern == SendPattern::xpub ? zmq::socket_type::xpub : zmq::socket_type::push, options)),
      send_timeout_(options.send_timeout) {
  if (pattern == SendPattern::xpub) socket_.set(zmq::sockopt::xpub_nodrop, true);
}

std::string Sender::attach(const Endpoint& endpoint) {
  return detail::attach(socket_, endpoint);
}
std::string Sender::last_endpoint() const {
  return detail::last_endpoint(socket_);
}

// An XPUB socket reads 0x01 + prefix for a subscribe, 0x00 + prefix for an unsubscribe.
bool Sender::next_subscription_change(SubscriptionChange& out) {
  for (;;) {
    if (!socket_.recv(subscription_, zmq::recv_flags::dontwait)) return false;
    const std::string_view bytes = view(subscription_);
    if (bytes.empty() || (bytes[0] != 0 && bytes[0] != 1)) continue;  // not a subscription
    out.subscribe = bytes[0] == 1;
    out.prefix.assign(bytes.substr(1));
    return true;
  }
}

Wait Sender::wait_for_subscription_change(std::chrono::milliseconds timeout) {
  return wait_readable(socket_, timeout);
}

Envelope& Sender::fresh_envelope(std::string_view topic) {
  scratch_.id = MessageId::generate();
  scratch_.created_at = scratch_.id.unix_ms();
  scratch_.topic.assign(topic);
  scratch_.attempt = 1;
  scratch_.headers.clear();
  scratch_.key.reset();
  return scratch_;
}

bool Sender::send(const Envelope& envelope, std::string_view payload, bool wait) {
  // The common envelope is written straight into the frame; the rest goes
  // through msgpack-cxx into a reused buffer first.
  const std::size_t canonical = EnvelopeCodec::canonical_head_size(envelope);
  if (canonical == 0) codec_.encode_head(envelope, head_);
  const std::size_t head_size = canonical != 0 ? canonical : head_.size();
  zmq::message_t frame(head_size + payload.size());
  auto* out = static_cast<char*>(frame.data());
  if (canonical != 0) {
    EnvelopeCodec::write_canonical_head(envelope, out);
  } else {
    std::memcpy(out, head_.data(), head_size);
  }
  if (!payload.empty()) std::memcpy(out + head_size, payload.data(), payload.size());

  if (!wait) {
    if (!socket_.send(frame, zmq::send_flags::dontwait)) return false;
    sent_.add();
    return true;
  }
  for (;;) {
    try {
      if (socket_.send(frame, zmq::send_flags::none)) {
        sent_.add();
        return true;
      }
      // EAGAIN from a blocking send: the send timeout passed.
      throw Error(errc::timeout, "send timed out after " + std::to_string(send_timeout_.count()) +
                                     "ms: no peer took the message (is anything connected?)");
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) throw Error(std::error_code(e.num(), std::system_category()), e.what());
    }
    // Interrupted by a signal: give up only when it asked us to stop.
    if (global_stop().is_set()) throw Error(errc::stopped, "stopped while waiting to send");
  }
}

}  // namespace mqkit::detail
