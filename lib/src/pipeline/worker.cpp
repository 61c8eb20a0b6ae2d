// Worker: a PULL socket behind a Receiver.
#include "mqkit/worker.hpp"

#include "wire/receiver.hpp"

namespace mqkit {

struct Worker::Impl {
  detail::Receiver receiver;
  explicit Impl(const SocketOptions& o) : receiver(detail::ReceivePattern::pull, o) {}
};

Worker::Worker(const Endpoint& endpoint, const SocketOptions& options)
    : impl_(std::make_unique<Impl>(options)) {
  attach(endpoint);
}
Worker::~Worker() = default;
Worker::Worker(Worker&&) noexcept = default;
Worker& Worker::operator=(Worker&&) noexcept = default;

std::string Worker::attach(const Endpoint& endpoint) {
  return impl_->receiver.attach(endpoint);
}
std::string Worker::last_endpoint() const {
  return impl_->receiver.last_endpoint();
}

std::optional<Message> Worker::receive(std::chrono::milliseconds timeout) {
  Message message;
  if (!impl_->receiver.receive(message, timeout)) return std::nullopt;
  return message;
}

void Worker::run(const Handler& handler) {
  impl_->receiver.run(handler);
}
void Worker::stop() noexcept {
  impl_->receiver.stop();
}
void Worker::on_drop(DropHandler handler) {
  impl_->receiver.on_drop(std::move(handler));
}
ReceiveStats Worker::stats() const noexcept {
  return impl_->receiver.stats();
}
void* Worker::native_handle() noexcept {
  return impl_->receiver.native_handle();
}

}  // namespace mqkit
