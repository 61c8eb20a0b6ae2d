// Device: a long-running piece of a topology that owns its sockets and one
// thread. It binds every endpoint in its constructor (so a bad endpoint fails
// at once, naming itself), then runs either on its own thread (start/stop,
// inside a service) or in the caller's thread (run, as the CLI does). Each
// device answers stats requests on its optional stats endpoint.
#pragma once

#include <memory>
#include <string>

#include "mqkit/devices/stats.hpp"
#include "mqkit/socket_options.hpp"

namespace mqkit::devices {

struct DeviceOptions {
  std::string in;     // bound; e.g. tcp://*:5557 or tcp://127.0.0.1:* (port chosen)
  std::string out;    // bound
  std::string stats;  // bound when not empty
  SocketOptions socket;
};

namespace detail {
class Pump;
}

class Device {
 public:
  virtual ~Device();  // stops and joins
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  void start();          // runs the device on its own thread
  void run();            // runs in this thread until stop() or mqkit::request_stop()
  void stop() noexcept;  // any thread; joins the device thread if start() made one

  std::string in_endpoint() const;  // as bound, with the port resolved
  std::string out_endpoint() const;
  std::string stats_endpoint() const;  // empty without a stats endpoint
  DeviceStats stats() const;           // thread-safe snapshot

 protected:
  Device(const DeviceOptions& options, std::unique_ptr<detail::Pump> pump);
  detail::Pump& pump() noexcept;  // for a subclass's constructor, before start()

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mqkit::devices
