// Wakeup: an eventfd that another thread (the spool's writer) pokes so the
// proxy's poll returns; the poll sees it like any socket.
#pragma once

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>

#include "mqkit/error.hpp"

namespace mqkit::devices::detail {

class Wakeup {
 public:
  Wakeup() : fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (fd_ < 0) throw Error(errc::unsupported, "cannot create an eventfd for the proxy");
  }
  ~Wakeup() { ::close(fd_); }
  Wakeup(const Wakeup&) = delete;
  Wakeup& operator=(const Wakeup&) = delete;

  void poke() noexcept {
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(fd_, &one, sizeof one);
  }
  void drain() noexcept {
    std::uint64_t value;
    [[maybe_unused]] auto n = ::read(fd_, &value, sizeof value);
  }
  int fd() const noexcept { return fd_; }

 private:
  int fd_;
};

}  // namespace mqkit::devices::detail
