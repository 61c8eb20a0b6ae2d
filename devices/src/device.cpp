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
#include "wire/socket_monitor.hpp"
#include "wire/stop_event.hpp"

namespace mqkit::devices {

constexpr std::size_t kMaxMonitors = 4;  // the pump's bound sockets and the stats socket

struct Device::Impl {
  std::unique_ptr<detail::Pump> pump;
  std::optional<zmq::socket_t> stats_socket;
  std::string stats_endpoint;
  mqkit::detail::StopEvent stop;
  std::thread thread;
  mqkit::detail::Counter bad_stats_requests;
  // Handshake monitors of the bound sockets: connections that never became
  // peers (random bytes, a wrong socket type, a refused CURVE key) are counted.
  std::vector<mqkit::detail::SocketMonitor>
      monitors;  // after pump and stats_socket: they outlive it
  mqkit::detail::Counter refused_connections;
  bool curve = false;  // CURVE handshakes refused by the allow-list are counted

  DeviceStats snapshot() const {
    DeviceStats s{pump->kind(), pump->counters()};
    if (stats_socket) s.counters.emplace_back("bad_stats_requests", bad_stats_requests.get());
    if (curve) s.counters.emplace_back("curve_refused", curve_clients_refused());
    s.counters.emplace_back("refused_connections", refused_connections.get());
    return s;
  }

  // A ROUTER, not a REP: a REP socket stalls on a hostile peer's broken
  // envelope until libzmq drops the connection; here such a message is
  // dropped and counted at once. Requests are [identity][""][request].
  void serve_stats() {
    std::vector<zmq::message_t> frames;
    for (int budget = 0; budget < 64; ++budget) {
      frames.clear();
      frames.emplace_back();
      if (!stats_socket->recv(frames.back(), zmq::recv_flags::dontwait)) return;
      while (frames.back().more() && frames.size() < 8) {
        frames.emplace_back();
        (void)stats_socket->recv(frames.back(), zmq::recv_flags::dontwait);
      }
      for (zmq::message_t rest; frames.back().more();)  // drain an oversized envelope
        if (!stats_socket->recv(rest, zmq::recv_flags::dontwait) || !rest.more()) break;
      if (frames.size() != 3 || frames[1].size() != 0) {
        bad_stats_requests.add();  // not a REQ request: no one to answer
        continue;
      }
      const std::string reply =
          answer({static_cast<const char*>(frames[2].data()), frames[2].size()});
      try {
        (void)stats_socket->send(frames[0], zmq::send_flags::sndmore | zmq::send_flags::dontwait);
        (void)stats_socket->send(zmq::buffer(std::string_view()), zmq::send_flags::sndmore);
        (void)stats_socket->send(zmq::buffer(reply), zmq::send_flags::none);
      } catch (const zmq::error_t&) {
        // The asker is gone.
      }
    }
  }

  std::string answer(std::string_view request) {
    std::vector<std::string> command;
    std::string problem = detail::parse_request(request, command);
    if (problem.empty() && command == std::vector<std::string>{"stats"}) {
      pump->refresh_counters();
      return detail::encode_stats_reply(snapshot());
    }
    if (problem.empty()) {
      std::vector<AdminRow> rows;
      problem = pump->admin(command, rows);
      if (problem.empty()) return detail::encode_rows_reply(pump->kind(), rows);
    }
    bad_stats_requests.add();
    return detail::encode_error_reply(problem);
  }

  void watch(zmq::socket_t& socket) {
    if (monitors.size() >= kMaxMonitors) return;
    const int events = ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                       ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
    try {
      monitors.emplace_back(socket, events);
    } catch (const Error&) {
      // Counting refused connections is a nicety: the device runs without it.
    }
  }

  void read_monitor(mqkit::detail::SocketMonitor& monitor) {
    zmq::message_t event, address;
    while (monitor.events().recv(event, zmq::recv_flags::dontwait)) {
      if (event.more()) (void)monitor.events().recv(address, zmq::recv_flags::dontwait);
      refused_connections.add();
    }
  }

  void loop() {
    while (!stop.is_set() && !mqkit::detail::global_stop().is_set()) {
      zmq::pollitem_t items[detail::Pump::kMaxItems + 3 + kMaxMonitors];
      const std::size_t n = pump->poll_items(items);
      std::size_t count = n;
      for (auto& m : monitors) items[count++] = {m.events().handle(), 0, ZMQ_POLLIN, 0};
      items[count++] = {nullptr, stop.fd(), ZMQ_POLLIN, 0};
      items[count++] = {nullptr, mqkit::detail::global_stop().fd(), ZMQ_POLLIN, 0};
      if (stats_socket) items[count++] = {stats_socket->handle(), 0, ZMQ_POLLIN, 0};
      try {
        zmq::poll(items, count, pump->poll_timeout());
        if (stats_socket && (items[count - 1].revents & ZMQ_POLLIN)) serve_stats();
        for (std::size_t i = 0; i < monitors.size(); ++i)
          if (items[n + i].revents & ZMQ_POLLIN) read_monitor(monitors[i]);
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
    impl_->stats_socket = mqkit::detail::open_socket(zmq::socket_type::router, stats_options);
    impl_->stats_endpoint = mqkit::detail::attach(*impl_->stats_socket, bind(options.stats));
  }
  for (auto* socket : impl_->pump->bound_sockets()) impl_->watch(*socket);
  if (impl_->stats_socket) impl_->watch(*impl_->stats_socket);
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
  impl_->pump->stop();
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
