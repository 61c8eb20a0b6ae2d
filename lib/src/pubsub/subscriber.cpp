// Subscriber: a SUB socket behind a Receiver.
#include "mqkit/subscriber.hpp"

#include "wire/receiver.hpp"

namespace mqkit {

struct Subscriber::Impl {
  detail::Receiver receiver;
  explicit Impl(const SocketOptions& o) : receiver(detail::ReceivePattern::sub, o) {}
};

Subscriber::Subscriber(const Endpoint& endpoint, const std::vector<std::string>& topics,
                       const SocketOptions& options)
    : impl_(std::make_unique<Impl>(options)) {
  for (const auto& topic : topics) subscribe(topic);
  attach(endpoint);
}
Subscriber::~Subscriber() = default;
Subscriber::Subscriber(Subscriber&&) noexcept = default;
Subscriber& Subscriber::operator=(Subscriber&&) noexcept = default;

std::string Subscriber::attach(const Endpoint& endpoint) {
  return impl_->receiver.attach(endpoint);
}
std::string Subscriber::last_endpoint() const {
  return impl_->receiver.last_endpoint();
}

void Subscriber::subscribe(std::string_view prefix) {
  impl_->receiver.subscribe(prefix);
}
void Subscriber::unsubscribe(std::string_view prefix) {
  impl_->receiver.unsubscribe(prefix);
}

std::optional<Message> Subscriber::receive(std::chrono::milliseconds timeout) {
  Message message;
  if (!impl_->receiver.receive(message, timeout)) return std::nullopt;
  return message;
}

void Subscriber::run(const Handler& handler) {
  impl_->receiver.run(handler);
}
void Subscriber::stop() noexcept {
  impl_->receiver.stop();
}
void Subscriber::on_drop(DropHandler handler) {
  impl_->receiver.on_drop(std::move(handler));
}
ReceiveStats Subscriber::stats() const noexcept {
  return impl_->receiver.stats();
}
void* Subscriber::native_handle() noexcept {
  return impl_->receiver.native_handle();
}

}  // namespace mqkit
