// Pump: what a particular device does with its sockets. Device owns the
// thread, the stop events and the stats socket and asks the pump, in each
// turn of one generic loop, what to poll and then to move what is ready.
#pragma once

#include <zmq.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "mqkit/devices/device.hpp"

namespace mqkit::devices::detail {

class Pump {
 public:
  static constexpr std::size_t kMaxItems = 4;
  using Counters = std::vector<std::pair<std::string, std::uint64_t>>;

  virtual ~Pump() = default;
  virtual const char* kind() const noexcept = 0;
  virtual std::string in_endpoint() const = 0;
  virtual std::string out_endpoint() const = 0;
  // Fills up to kMaxItems poll items for this turn; returns how many.
  virtual std::size_t poll_items(zmq::pollitem_t* items) = 0;
  // How long the loop may sleep when nothing is ready (-1: until something is).
  virtual std::chrono::milliseconds poll_timeout() const { return std::chrono::milliseconds(-1); }
  // Moves whatever the polled items say is ready, without blocking.
  virtual void pump(const zmq::pollitem_t* items) = 0;
  // Safe to call from any thread.
  virtual Counters counters() const = 0;
  // The sockets the device binds for its peers; the device watches their
  // handshakes and counts the connections it refused.
  virtual std::vector<zmq::socket_t*> bound_sockets() { return {}; }
  // Called by Device::stop() (from any thread) after the loop ended: a pump
  // that runs threads of its own ends them here, in a bounded time.
  virtual void stop() noexcept {}
  // Called on the device thread right before a stats request is answered,
  // so counters that the loop only publishes now and then are current.
  virtual void refresh_counters() {}
  // An admin command from the stats endpoint (on the device thread): fills
  // `rows` and returns empty, or returns what is wrong.
  virtual std::string admin(const std::vector<std::string>& command, std::vector<AdminRow>& rows) {
    (void)command;
    (void)rows;
    return std::string("unknown admin command: a ") + kind() + " answers only 'stats'";
  }
};

}  // namespace mqkit::devices::detail
