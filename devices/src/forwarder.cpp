// ForwarderPump: XSUB in, XPUB out. Subscriptions go upstream (XPUB_VERBOSE,
// so publishers see every subscriber); messages go downstream without drops
// (XPUB_NODROP). XPUB cannot poll for room, so while a message is held the
// loop retries every millisecond.
#include "mqkit/devices/forwarder.hpp"

#include "detail/counter.hpp"
#include "pump.hpp"
#include "relay.hpp"
#include "wire/socket.hpp"

namespace mqkit::devices {
namespace {

constexpr int kBudget = 1024;

class ForwarderPump final : public detail::Pump {
 public:
  explicit ForwarderPump(const DeviceOptions& o)
      : in_(mqkit::detail::open_socket(zmq::socket_type::xsub, o.socket)),
        out_(mqkit::detail::open_socket(zmq::socket_type::xpub, o.socket)) {
    out_.set(zmq::sockopt::xpub_nodrop, true);
    out_.set(zmq::sockopt::xpub_verbose, true);
    in_endpoint_ = mqkit::detail::attach(in_, bind(o.in));
    out_endpoint_ = mqkit::detail::attach(out_, bind(o.out));
  }

  const char* kind() const noexcept override { return "forwarder"; }
  std::string in_endpoint() const override { return in_endpoint_; }
  std::string out_endpoint() const override { return out_endpoint_; }

  std::size_t poll_items(zmq::pollitem_t* items) override {
    items[0] = {in_.handle(), 0, relay_.holding() ? short(0) : short(ZMQ_POLLIN), 0};
    items[1] = {out_.handle(), 0, ZMQ_POLLIN, 0};
    return 2;
  }

  std::chrono::milliseconds poll_timeout() const override {
    return std::chrono::milliseconds(relay_.holding() ? 1 : -1);
  }

  void pump(const zmq::pollitem_t* items) override {
    if (items[1].revents & ZMQ_POLLIN) forward_subscriptions();
    relay_.step(in_, out_, kBudget);
  }

  std::vector<zmq::socket_t*> bound_sockets() override { return {&in_, &out_}; }

  Counters counters() const override {
    return {{"in", relay_.in()},
            {"out", relay_.out()},
            {"subscriptions", subscriptions_.get()},
            {"unsubscriptions", unsubscriptions_.get()},
            {"malformed", malformed_.get()}};
  }

 private:
  // 0x01 prefix = subscribe, 0x00 prefix = unsubscribe; anything else a
  // subscriber sends upstream is not ours to pass on.
  void forward_subscriptions() {
    zmq::message_t m;
    while (out_.recv(m, zmq::recv_flags::dontwait)) {
      const auto* p = static_cast<const unsigned char*>(m.data());
      if (m.more() || m.size() == 0 || p[0] > 1) {
        malformed_.add();
        while (m.more()) (void)out_.recv(m, zmq::recv_flags::dontwait);
        continue;
      }
      (p[0] == 1 ? subscriptions_ : unsubscriptions_).add();
      (void)in_.send(m, zmq::send_flags::dontwait);
    }
  }

  zmq::socket_t in_, out_;
  std::string in_endpoint_, out_endpoint_;
  detail::Relay relay_;
  mqkit::detail::Counter subscriptions_, unsubscriptions_, malformed_;
};

}  // namespace

Forwarder::Forwarder(const DeviceOptions& options)
    : Device(options, std::make_unique<ForwarderPump>(options)) {}

}  // namespace mqkit::devices
