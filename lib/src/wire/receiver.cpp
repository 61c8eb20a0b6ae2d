// Receive loop shared by the receiving patterns.
#include "wire/receiver.hpp"

#include "wire/socket.hpp"

namespace mqkit::detail {
namespace {
constexpr int kBatch = 1024;  // messages handled between two polls of the stop events
}  // namespace

Receiver::Receiver(ReceivePattern pattern, const SocketOptions& options)
    : socket_(open_socket(
          pattern == ReceivePattern::sub ? zmq::socket_type::sub : zmq::socket_type::pull,
          options)),
      limits_(options.limits) {}

std::string Receiver::attach(const Endpoint& endpoint) {
  return detail::attach(socket_, endpoint);
}
std::string Receiver::last_endpoint() const {
  return detail::last_endpoint(socket_);
}
void Receiver::subscribe(std::string_view prefix) {
  socket_.set(zmq::sockopt::subscribe, prefix);
}
void Receiver::unsubscribe(std::string_view prefix) {
  socket_.set(zmq::sockopt::unsubscribe, prefix);
}

ReceiveStats Receiver::stats() const noexcept {
  return {received_.get(), wrapped_.get(), malformed_.get()};
}

void Receiver::drop(errc code, std::string_view detail) {
  malformed_.add();
  if (on_drop_) on_drop_(make_error_code(code), detail);
}

bool Receiver::try_receive(Message& out) {
  for (;;) {
    if (!socket_.recv(first_, zmq::recv_flags::dontwait)) return false;
    DecodeResult result;
    if (!first_.more()) {
      result = codec_.decode(view(first_), out, limits_);
    } else {
      // A raw [topic][payload] from a plain ZeroMQ peer; the rest of a multipart
      // message always arrives with its first frame, so these recvs cannot block.
      (void)socket_.recv(second_, zmq::recv_flags::dontwait);
      if (second_.more()) {
        while (second_.more()) (void)socket_.recv(second_, zmq::recv_flags::dontwait);
        drop(errc::malformed, "more than two frames: expected [payload] or [topic][payload]");
        continue;
      }
      result = EnvelopeCodec::wrap_raw(view(first_), view(second_), out, limits_);
    }
    if (!result) {
      drop(result.code, result.detail);
      continue;
    }
    received_.add();
    if (out.wrapped) wrapped_.add();
    return true;
  }
}

Wait Receiver::wait(std::chrono::milliseconds timeout) {
  return wait_readable(socket_, stop_, timeout);
}

bool Receiver::receive(Message& out, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (stopping()) return false;
    if (try_receive(out)) {
      out.own_payload();  // the frame is reused by the next receive
      return true;
    }
    auto left = timeout;
    if (timeout.count() >= 0) {
      left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() < 0) return false;
    }
    if (wait(left) != Wait::readable && timeout.count() >= 0 &&
        std::chrono::steady_clock::now() >= deadline)
      return false;
  }
}

void Receiver::run(const Handler& handler) {
  while (!stopping()) {
    for (int i = 0; i < kBatch && !stopping() && try_receive(current_); ++i) handler(current_);
    if (wait(std::chrono::milliseconds(-1)) == Wait::stopped) return;
  }
}

}  // namespace mqkit::detail
