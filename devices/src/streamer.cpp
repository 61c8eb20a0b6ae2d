// StreamerPump: PULL in, PUSH out. Reads `in` only while it holds nothing,
// and waits for `out` to have room when it does.
#include "mqkit/devices/streamer.hpp"

#include "pump.hpp"
#include "relay.hpp"
#include "wire/socket.hpp"

namespace mqkit::devices {
namespace {

constexpr int kBudget = 1024;  // messages moved per turn before the stop events are polled

class StreamerPump final : public detail::Pump {
 public:
  explicit StreamerPump(const DeviceOptions& o)
      : in_(mqkit::detail::open_socket(zmq::socket_type::pull, o.socket)),
        out_(mqkit::detail::open_socket(zmq::socket_type::push, o.socket)) {
    in_endpoint_ = mqkit::detail::attach(in_, bind(o.in));
    out_endpoint_ = mqkit::detail::attach(out_, bind(o.out));
  }

  const char* kind() const noexcept override { return "streamer"; }
  std::string in_endpoint() const override { return in_endpoint_; }
  std::string out_endpoint() const override { return out_endpoint_; }

  std::size_t poll_items(zmq::pollitem_t* items) override {
    items[0] = {in_.handle(), 0, relay_.holding() ? short(0) : short(ZMQ_POLLIN), 0};
    items[1] = {out_.handle(), 0, relay_.holding() ? short(ZMQ_POLLOUT) : short(0), 0};
    return 2;
  }

  void pump(const zmq::pollitem_t*) override { relay_.step(in_, out_, kBudget); }

  std::vector<zmq::socket_t*> bound_sockets() override { return {&in_, &out_}; }
  Counters counters() const override { return {{"in", relay_.in()}, {"out", relay_.out()}}; }

 private:
  zmq::socket_t in_, out_;
  std::string in_endpoint_, out_endpoint_;
  detail::Relay relay_;
};

}  // namespace

Streamer::Streamer(const DeviceOptions& options)
    : Device(options, std::make_unique<StreamerPump>(options)) {}

}  // namespace mqkit::devices
