// What the runs share: joining the producers on every path, timing a
// phase, what a power loss may take under --fsync interval, reading a whole
// stream, and closing the report with the devices' figures.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "device_under_test.hpp"
#include "mqkit/devices/stats.hpp"
#include "mqkit/duration.hpp"
#include "mqkit/error.hpp"
#include "mqkit/reliable_producer.hpp"
#include "mqkit/stream_consumer.hpp"
#include "run.hpp"

namespace mqkit::checker {

// Joins the threads however a run ends (they stop by themselves: their
// time is up, then a bounded flush), so an exception never meets a
// joinable thread.
struct JoinAll {
  std::vector<std::thread>& threads;
  void join() {
    for (auto& t : threads)
      if (t.joinable()) t.join();
  }
  ~JoinAll() { join(); }
};

inline std::uint64_t ms_since(std::chrono::steady_clock::time_point start) {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::steady_clock::now() - start)
                                        .count());
}

// What a power loss may take (docs/contract.md, rule 1): nothing confirmed
// under `always`; under `interval=D` what was confirmed since the last
// completed sync, which began at most D after the first write it covers. The
// device's slow syncs (up to 800 ms) and the checker's late view of the
// instants widen that: a confirm seen up to D + 1.5 s before a power loss
// (or just after, a confirm still in flight) may be gone.
class LossWindow {
 public:
  explicit LossWindow(const std::string& fsync) {
    if (fsync.starts_with("interval="))
      width_ = parse_duration(fsync.substr(9)) + std::chrono::milliseconds(1500);
  }
  bool may_lose(std::chrono::steady_clock::time_point confirmed,
                const std::vector<std::chrono::steady_clock::time_point>& power_losses) const {
    if (width_.count() == 0) return false;
    for (const auto& p : power_losses)
      if (confirmed > p - width_ && confirmed <= p + std::chrono::milliseconds(500)) return true;
    return false;
  }
  bool any() const { return width_.count() > 0; }

 private:
  std::chrono::milliseconds width_{0};
};

// Every record of the stream at `back`, read from the start by a fresh
// unnamed reader until nothing new came for 2 s (at most 60 s).
inline void read_whole_stream(const std::string& back,
                              const std::function<void(const StreamEntry&)>& take) {
  using Clock = std::chrono::steady_clock;
  StreamConsumerOptions o;
  o.from = "earliest";
  StreamConsumer reader(back, o, std::chrono::seconds(10));
  std::atomic<Clock::rep> last{Clock::now().time_since_epoch().count()};
  std::thread watchdog([&] {
    const auto give_up = Clock::now() + std::chrono::seconds(60);
    while (Clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (Clock::now() - Clock::time_point(Clock::duration(last.load())) > std::chrono::seconds(2))
        break;  // nothing new for 2 s: all read
    }
    reader.stop();
  });
  reader.run([&](const StreamEntry& e) {
    last = Clock::now().time_since_epoch().count();
    take(e);
  });
  watchdog.join();
}

// The checker's producers: a window of 32, re-sending after 300 ms, giving
// up after 90 s (long enough for any restart the chaos makes).
inline ReliableProducerOptions producer_options() {
  ReliableProducerOptions o;
  o.window = 32;
  o.resend_after = std::chrono::milliseconds(300);
  o.timeout = std::chrono::seconds(90);
  return o;
}

// What a proxy still holds (ready, in flight, waiting to retry or to die)
// for `groups`, as its `group ls` says; nullopt when it does not answer.
inline std::optional<std::uint64_t> pending_in(const DeviceUnderTest& proxy,
                                               const std::vector<std::string>& groups) {
  try {
    std::uint64_t pending = 0;
    for (const auto& row :
         devices::admin_request(proxy.stats(), {"group", "ls"}, std::chrono::seconds(5))) {
      bool counted = false;
      for (const auto& [column, value] : row) {
        if (column == "group")
          counted = std::find(groups.begin(), groups.end(), value) != groups.end();
        if (column == "pending" && counted) pending += std::stoull(value);
      }
    }
    return pending;
  } catch (const Error&) {
    return std::nullopt;
  }
}

// SIGTERM: it must stop cleanly.
inline void stop_device(DeviceUnderTest& device, Violations& violations) {
  if (const int code = device.stop(); code != 0)
    violations.add("the device stops cleanly", "",
                   device.kind() +
                       (code == -1 ? ": still running 30 s after SIGTERM"
                                   : ": exit status " + std::to_string(code)) +
                       "; its stderr: " + device.last_stderr());
}

// The device's kills, faults and crashes, and every violation, into the report.
inline void close_report(const std::vector<const DeviceUnderTest*>& devices, Violations& violations,
                         std::uint64_t unconfirmed, Report& report) {
  report.figures["unconfirmed at the end"] = unconfirmed;
  for (const auto* device : devices) {
    for (const auto& crash : device->crashes())
      violations.add("the device never crashes", "", crash);
    report.kills += device->kills();
    for (const auto& [kind, n] : device->faults()) report.faults[kind] += n;
  }
  report.violations = violations.take();
}

}  // namespace mqkit::checker
