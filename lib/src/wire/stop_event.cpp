// eventfd-backed stop events and the SIGINT/SIGTERM handlers that set the
// process-wide one. The eventfd is never drained: once set, it stays readable,
// so every loop that polls it sees the stop.
#include "wire/stop_event.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <string>

#include "mqkit/error.hpp"
#include "mqkit/stop.hpp"

namespace mqkit::detail {

StopEvent::StopEvent() : fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (fd_ < 0)
    throw Error(std::error_code(errno, std::system_category()),
                std::string("cannot create an eventfd: ") + std::strerror(errno));
}

StopEvent::~StopEvent() {
  if (fd_ >= 0) ::close(fd_);
}

void StopEvent::signal() noexcept {
  set_.store(true, std::memory_order_relaxed);
  const std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(fd_, &one, sizeof one);
}

StopEvent& global_stop() {
  static StopEvent* event = new StopEvent();  // leaked on purpose: signal handlers may use it late
  return *event;
}

namespace {
void on_stop_signal(int) {
  global_stop().signal();
}
}  // namespace

}  // namespace mqkit::detail

namespace mqkit {

void stop_on_signals() {
  detail::global_stop();  // create it before any handler can run
  struct sigaction action {};
  action.sa_handler = detail::on_stop_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

void request_stop() noexcept {
  detail::global_stop().signal();
}

bool stop_requested() noexcept {
  return detail::global_stop().is_set();
}

bool wait_for_stop(std::chrono::milliseconds timeout) {
  pollfd p{detail::global_stop().fd(), POLLIN, 0};
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int wait_ms = -1;
    if (timeout.count() >= 0) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      wait_ms = static_cast<int>(std::max<std::int64_t>(0, left.count()));
    }
    const int n = ::poll(&p, 1, wait_ms);
    if (n == 1) return true;
    if (n == 0) return false;
    if (errno != EINTR) return false;
  }
}

}  // namespace mqkit
