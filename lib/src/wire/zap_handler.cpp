// ZAP: allow-lists per domain, answered by one thread per process.
#include "wire/zap_handler.hpp"

#include <zmq.hpp>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "mqkit/security.hpp"
#include "wire/socket.hpp"
#include "wire/stop_event.hpp"

namespace mqkit::detail {
namespace {

class ZapHandler {
 public:
  static ZapHandler& instance() {
    static ZapHandler handler;  // after default_context(): destroyed before it
    return handler;
  }

  std::string add(const std::vector<std::string>& allowed) {
    std::set<std::string> keys;
    for (const auto& z85 : allowed) {
      std::string binary(32, '\0');
      if (zmq_z85_decode(reinterpret_cast<std::uint8_t*>(binary.data()), z85.c_str()))
        keys.insert(binary);
    }
    std::lock_guard lock(mutex_);
    for (const auto& [domain, list] : domains_)
      if (list == keys) return domain;
    const std::string domain = "mqkit-" + std::to_string(domains_.size() + 1);
    domains_[domain] = std::move(keys);
    return domain;
  }

  std::uint64_t refused() const noexcept { return refused_.load(); }

 private:
  ZapHandler() : socket_(default_context(), zmq::socket_type::rep) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.bind("inproc://zeromq.zap.01");
    thread_ = std::thread([this] { serve(); });
  }
  ~ZapHandler() {
    stop_.signal();
    if (thread_.joinable()) thread_.join();
  }

  bool allowed(const std::string& domain, const std::string& mechanism,
               const std::string& key) const {
    if (mechanism != "CURVE") return false;
    std::lock_guard lock(mutex_);
    auto it = domains_.find(domain);
    return it != domains_.end() && it->second.contains(key);
  }

  void serve() {
    for (;;) {
      zmq::pollitem_t items[] = {{socket_.handle(), 0, ZMQ_POLLIN, 0},
                                 {nullptr, stop_.fd(), ZMQ_POLLIN, 0}};
      try {
        zmq::poll(items, 2, std::chrono::milliseconds(-1));
      } catch (const zmq::error_t& e) {
        if (e.num() == EINTR) continue;
        break;
      }
      if (stop_.is_set()) break;
      if (!(items[0].revents & ZMQ_POLLIN)) continue;
      // version, request id, domain, address, identity, mechanism, credentials...
      std::vector<std::string> frames;
      zmq::message_t frame;
      do {
        if (!socket_.recv(frame, zmq::recv_flags::dontwait)) break;
        frames.emplace_back(static_cast<const char*>(frame.data()), frame.size());
      } while (frame.more());
      if (frames.size() < 6) continue;
      const bool ok = allowed(frames[2], frames[5], frames.size() > 6 ? frames[6] : "");
      if (!ok) ++refused_;
      const std::string reply[] = {
          "1.0", frames[1], ok ? "200" : "400", ok ? "OK" : "client key not on the allow-list",
          "",    ""};
      for (std::size_t i = 0; i < 6; ++i)
        (void)socket_.send(zmq::buffer(reply[i]),
                           i + 1 < 6 ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
    socket_.close();
  }

  mutable std::mutex mutex_;
  std::map<std::string, std::set<std::string>> domains_;  // domain -> binary keys
  std::atomic<std::uint64_t> refused_{0};
  zmq::socket_t socket_;
  StopEvent stop_;
  std::thread thread_;
};

}  // namespace

std::string register_allow_list(const std::vector<std::string>& allowed) {
  return ZapHandler::instance().add(allowed);
}

std::uint64_t zap_refused() noexcept {
  return ZapHandler::instance().refused();
}

}  // namespace mqkit::detail

namespace mqkit {
std::uint64_t curve_clients_refused() noexcept {
  return detail::zap_refused();
}
}  // namespace mqkit
