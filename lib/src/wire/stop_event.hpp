// StopEvent: an eventfd that a run loop polls beside its sockets, so another
// thread or a signal handler can wake it. signal() is async-signal-safe.
#pragma once

#include <atomic>

namespace mqkit::detail {

class StopEvent {
 public:
  StopEvent();
  ~StopEvent();
  StopEvent(const StopEvent&) = delete;
  StopEvent& operator=(const StopEvent&) = delete;

  void signal() noexcept;
  // Cheap enough to check once per message.
  bool is_set() const noexcept { return set_.load(std::memory_order_relaxed); }
  int fd() const noexcept { return fd_; }

 private:
  int fd_ = -1;
  std::atomic<bool> set_{false};  // lock-free, so a signal handler may store to it
};

// The process-wide event behind mqkit::request_stop(); never destroyed.
StopEvent& global_stop();

}  // namespace mqkit::detail
