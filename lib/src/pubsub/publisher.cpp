// Publisher: an XPUB socket behind a Sender. XPUB rather than PUB so that the
// publisher sees subscriptions (wait_for_subscriber) and can refuse to drop
// at HWM (ZMQ_XPUB_NODROP).
#include "mqkit/publisher.hpp"

#include <set>

#include "wire/sender.hpp"

namespace mqkit {

struct Publisher::Impl {
  detail::Sender sender;
  bool drop_when_full;
  std::set<std::string, std::less<>> subscriptions;  // prefixes subscribed upstream of us
  detail::Counter dropped;

  explicit Impl(const PublisherOptions& o)
      : sender(detail::SendPattern::xpub, o.socket), drop_when_full(o.drop_when_full) {}

  void read_subscriptions() {
    detail::SubscriptionChange change;
    while (sender.next_subscription_change(change)) {
      if (change.subscribe)
        subscriptions.insert(std::move(change.prefix));
      else
        subscriptions.erase(change.prefix);
    }
  }

  bool matched(std::string_view topic) const {
    for (const auto& prefix : subscriptions)
      if (topic.starts_with(prefix)) return true;
    return false;
  }

  std::optional<MessageId> send(const Envelope& e, std::string_view payload) {
    if (sender.send(e, payload, /*wait=*/!drop_when_full)) return e.id;
    dropped.add();
    return std::nullopt;
  }
};

Publisher::Publisher(const Endpoint& endpoint, const PublisherOptions& options)
    : impl_(std::make_unique<Impl>(options)) {
  attach(endpoint);
}
Publisher::~Publisher() = default;
Publisher::Publisher(Publisher&&) noexcept = default;
Publisher& Publisher::operator=(Publisher&&) noexcept = default;

std::string Publisher::attach(const Endpoint& endpoint) {
  return impl_->sender.attach(endpoint);
}
std::string Publisher::last_endpoint() const {
  return impl_->sender.last_endpoint();
}

std::optional<MessageId> Publisher::send(std::string_view topic, std::string_view payload) {
  return impl_->send(impl_->sender.fresh_envelope(topic), payload);
}

std::optional<MessageId> Publisher::send(const Envelope& envelope, std::string_view payload) {
  return impl_->send(envelope, payload);
}

bool Publisher::wait_for_subscriber(std::string_view topic, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    impl_->read_subscriptions();
    if (impl_->matched(topic)) return true;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || detail::global_stop().is_set()) return false;
    impl_->sender.wait_for_subscription_change(std::min(left, std::chrono::milliseconds(100)));
  }
}

std::uint64_t Publisher::sent() const noexcept {
  return impl_->sender.sent();
}
std::uint64_t Publisher::dropped() const noexcept {
  return impl_->dropped.get();
}
void* Publisher::native_handle() noexcept {
  return impl_->sender.native_handle();
}

}  // namespace mqkit
