// One run of the contract checker against one device, from one seed.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "history.hpp"

namespace mqkit::checker {

struct RunConfig {
  std::string device_binary;  // checker_device
  std::string dir;            // the device's files, made fresh per run
  std::uint32_t seed = 1;
  std::chrono::milliseconds duration{10000};  // producing, killing and injecting
  std::string faults = "power";               // none | io | power
  std::string fsync = "always";               // the devices' --fsync: always | interval=D
  std::string mqkit_binary;                   // the CLI, for `mqkit dlq replay`
};

struct Violation {
  std::string rule;  // the line of docs/contract.md it breaks
  std::string id;    // the message it is about
  std::string detail;
};

struct Report {
  std::map<std::string, std::uint64_t> figures;  // published, confirmed, delivered, ...
  std::map<std::string, std::uint64_t> faults;   // injected, by kind
  int kills = 0;
  std::vector<Violation> violations;
};

// Thread-safe collection of violations, for the clients' threads.
class Violations {
 public:
  void add(std::string rule, std::string id, std::string detail) {
    std::lock_guard lock(mutex_);
    if (list_.size() < 1000) list_.push_back({std::move(rule), std::move(id), std::move(detail)});
  }
  std::vector<Violation> take() {
    std::lock_guard lock(mutex_);
    return std::move(list_);
  }

 private:
  std::mutex mutex_;
  std::vector<Violation> list_;
};

Report run_proxy(const RunConfig& config, History& history);
Report run_stream(const RunConfig& config, History& history);
// A proxy group bridged into a stream, all three killed and restarted.
Report run_bridge(const RunConfig& config, History& history);

}  // namespace mqkit::checker
