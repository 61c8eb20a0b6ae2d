// Producer: a PUSH socket behind a Sender.
#include "mqkit/producer.hpp"

#include "wire/sender.hpp"

namespace mqkit {

struct Producer::Impl {
  detail::Sender sender;
  explicit Impl(const SocketOptions& o) : sender(detail::SendPattern::push, o) {}
};

Producer::Producer(const Endpoint& endpoint, const SocketOptions& options)
    : impl_(std::make_unique<Impl>(options)) {
  attach(endpoint);
}
Producer::~Producer() = default;
Producer::Producer(Producer&&) noexcept = default;
Producer& Producer::operator=(Producer&&) noexcept = default;

std::string Producer::attach(const Endpoint& endpoint) {
  return impl_->sender.attach(endpoint);
}
std::string Producer::last_endpoint() const {
  return impl_->sender.last_endpoint();
}

MessageId Producer::send(std::string_view topic, std::string_view payload) {
  const Envelope& e = impl_->sender.fresh_envelope(topic);
  impl_->sender.send(e, payload, /*wait=*/true);
  return e.id;
}

void Producer::send(const Envelope& envelope, std::string_view payload) {
  impl_->sender.send(envelope, payload, /*wait=*/true);
}

std::optional<MessageId> Producer::try_send(std::string_view topic, std::string_view payload) {
  const Envelope& e = impl_->sender.fresh_envelope(topic);
  if (!impl_->sender.send(e, payload, /*wait=*/false)) return std::nullopt;
  return e.id;
}

std::uint64_t Producer::sent() const noexcept {
  return impl_->sender.sent();
}
void* Producer::native_handle() noexcept {
  return impl_->sender.native_handle();
}

}  // namespace mqkit
