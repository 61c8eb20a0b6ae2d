// History: what the contract checker's clients saw, in the order they saw
// it, for the check at the end and for printing the part of it that shows a
// violation.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

namespace mqkit::checker {

struct Event {
  std::int64_t at_ms = 0;  // since the run started
  int incarnation = 0;     // the device process's, counted from 1
  std::string what;        // publish, confirm, deliver, ack, nack, kill, start, read, ...
  std::string id;          // the message's, when there is one
  std::string detail;
};

class History {
 public:
  History() : start_(std::chrono::steady_clock::now()) {}

  void add(std::string what, std::string id = {}, std::string detail = {}) {
    std::lock_guard lock(mutex_);
    events_.push_back(
        {elapsed_ms(), incarnation_, std::move(what), std::move(id), std::move(detail)});
  }
  void set_incarnation(int n) {
    std::lock_guard lock(mutex_);
    incarnation_ = n;
  }
  int incarnation() const {
    std::lock_guard lock(mutex_);
    return incarnation_;
  }

  // The smallest history that shows a violation about `id`: that message's
  // events and the device's starts and kills around them.
  void print_for(const std::string& id, std::FILE* out) const {
    std::lock_guard lock(mutex_);
    std::int64_t first = -1, last = -1;
    for (const auto& e : events_)
      if (e.id == id) {
        if (first < 0) first = e.at_ms;
        last = e.at_ms;
      }
    for (const auto& e : events_) {
      const bool device = e.id.empty() && first >= 0 && e.at_ms >= first && e.at_ms <= last;
      if (e.id != id && !device) continue;
      std::fprintf(out, "    %7lld ms  #%d  %-8s %s %s\n", static_cast<long long>(e.at_ms),
                   e.incarnation, e.what.c_str(), e.id.c_str(), e.detail.c_str());
    }
  }

 private:
  std::int64_t elapsed_ms() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 start_)
        .count();
  }

  mutable std::mutex mutex_;
  std::chrono::steady_clock::time_point start_;
  int incarnation_ = 0;
  std::vector<Event> events_;
};

}  // namespace mqkit::checker
