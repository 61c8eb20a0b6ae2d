// The generic device loop: poll the pump's sockets, the stats socket and the
// stop events; serve stats requests; let the pump move what is ready. The
// loop never lets an exception escape the device thread.
#include "mqkit/devices/device.hpp"

#include <pthread.h>

#include <cstdio>
#include <thread>

#include "detail/counter.hpp"
#include "mqkit/error.hpp"
#include "pump.hpp"
#include "stats_protocol.hpp"
#include "wire/socket.hpp"
#include "wire/stop_event.hpp"

namespace mqkit::devices {

struct Device::Impl {
  std::unique_ptr<detail::Pump> pump;
  std::optional<zmq::socket_t> stats_socket;
  std::string stats_endpoint;
  mqkit::detail::StopEvent stop;
  std::thread thread;
  mqkit::detail::Counter bad_stats_requests;
  bool curve = false;  // CURVE handshakes refused by the allow-list are counted

  DeviceStats snapshot() const {
    DeviceStats s{pump->kind(), pump->counters()};
    if (stats_socket) s.counters.emplace_back("bad_stats_requests", bad_stats_requests.get());
    if (curve) s.counters.emplace_back("curve_refused", curve_clients_refused());
    return s;
  }

  void serve_stats() {
    zmq::message_t request;
    while (stats_socket->recv(request, zmq::recv_flags::dontwait)) {
      // REP delivers whole messages; drain extra frames of a malformed one.
      while (request.more()) (void)stats_socket->recv(request, zmq::recv_flags::dontwait);
      std::vector<std::string> command;
      std::string problem = detail::parse_request(
          {static_cast<const char*>(request.data()), request.size()}, command);
      std::string reply;
      if (problem.empty() && command == std::vector<std::string>{"stats"}) {
        pump->refresh_counters();
        reply = detail::encode_stats_reply(snapshot());
      } else if (problem.empty()) {
        std::vector<AdminRow> rows;
        problem = pump->admin(command, rows);
        if (problem.empty()) reply = detail::encode_rows_reply(pump->kind(), rows);
      }
      if (!problem.empty()) {
        bad_stats_requests.add();
        reply = detail::encode_error_reply(problem);
      }
      (void)stats_socket->send(zmq::buffer(reply), zmq::send_flags::dontwait);
    }
  }

  void loop() {
    while (!stop.is_set() && !mqkit::detail::global_stop().is_set()) {
      zmq::pollitem_t items[detail::Pump::kMaxItems + 3];
      const std::size_t n = pump->poll_items(items);
      std::size_t count = n;
      items[count++] = {nullptr, stop.fd(), ZMQ_POLLIN, 0};
      items[count++] = {nullptr, mqkit::detail::global_stop().fd(), ZMQ_POLLIN, 0};
      if (stats_socket) items[count++] = {stats_socket->handle(), 0, ZMQ_POLLIN, 0};
      try {
        zmq::poll(items, count, pump->poll_timeout());
        if (stats_socket && (items[count - 1].revents & ZMQ_POLLIN)) serve_stats();
        pump->pump(items);
      } catch (const zmq::error_t& e) {
        if (e.num() == EINTR) continue;
        if (e.num() == ETERM) return;
        std::fprintf(stderr, "mqkit %s: %s (continuing)\n", pump->kind(), e.what());
      } catch (const std::exception& e) {
        std::fprintf(stderr, "mqkit %s: %s (continuing)\n", pump->kind(), e.what());
      }
    }
  }
};

Device::Device(const DeviceOptions& options, std::unique_ptr<detail::Pump> pump)
    : impl_(std::make_unique<Impl>()) {
  impl_->pump = std::move(pump);
  impl_->curve = options.socket.security.server.has_value();
  if (!options.stats.empty()) {
    SocketOptions stats_options;
    stats_options.linger = std::chrono::milliseconds(0);
    stats_options.security = options.socket.security;  // the admin surface is guarded too
    impl_->stats_socket = mqkit::detail::open_socket(zmq::socket_type::rep, stats_options);
    impl_->stats_endpoint = mqkit::detail::attach(*impl_->stats_socket, bind(options.stats));
  }
}

Device::~Device() {
  stop();
}

void Device::start() {
  if (impl_->thread.joinable()) throw Error(errc::bad_argument, "device already started");
  impl_->thread = std::thread([impl = impl_.get()] {
    const std::string name = std::string("mqkit-") + impl->pump->kind();
    ::pthread_setname_np(::pthread_self(), name.substr(0, 15).c_str());  // for top -H and perf
    impl->loop();
  });
}

void Device::run() {
  impl_->loop();
}

void Device::stop() noexcept {
  if (!impl_) return;
  impl_->stop.signal();
  if (impl_->thread.joinable() && impl_->thread.get_id() != std::this_thread::get_id())
    impl_->thread.join();
}

detail::Pump& Device::pump() noexcept {
  return *impl_->pump;
}

std::string Device::in_endpoint() const {
  return impl_->pump->in_endpoint();
}
std::string Device::out_endpoint() const {
  return impl_->pump->out_endpoint();
}
std::string Device::stats_endpoint() const {
  return impl_->stats_endpoint;
}
DeviceStats Device::stats() const {
  return impl_->snapshot();
}

}  // namespace mqkit::devices
