// What the proxy's and the stream's runs share: joining the producers on
// every path, timing a phase, and closing the report with the device's
// figures.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "device_under_test.hpp"
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

// SIGTERM: it must stop cleanly.
inline void stop_device(DeviceUnderTest& device, Violations& violations) {
  if (const int code = device.stop(); code != 0)
    violations.add("the device stops cleanly", "", "exit status " + std::to_string(code));
}

// The device's kills, faults and crashes, and every violation, into the report.
inline void close_report(const DeviceUnderTest& device, Violations& violations,
                         std::uint64_t unconfirmed, Report& report) {
  report.figures["unconfirmed at the end"] = unconfirmed;
  for (const auto& crash : device.crashes()) violations.add("the device never crashes", "", crash);
  report.kills = device.kills();
  report.faults = device.faults();
  report.violations = violations.take();
}

}  // namespace mqkit::checker
