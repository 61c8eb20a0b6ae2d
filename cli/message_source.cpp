// Payload sources for `mqkit send`. Lines are read with read(2) into a
// buffer of our own, so a read that a stop signal interrupts (EINTR: the
// handlers have no SA_RESTART) is told apart from an empty line, and the
// sender can ask whether more input is ready before it waits for it.
#include "message_source.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>
#include <utility>

#include "common.hpp"
#include "mqkit/error.hpp"
#include "mqkit/stop.hpp"

namespace mqkit::cli {
namespace {
constexpr std::size_t kReadSize = 64 * 1024;
}

MessageSource MessageSource::lines(const std::string& path) {
  MessageSource s;
  if (path.empty()) {
    s.fd_ = STDIN_FILENO;
  } else {
    s.fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (s.fd_ < 0) throw UsageError("cannot read --file '" + path + "': " + std::strerror(errno));
    s.owns_fd_ = true;
  }
  return s;
}

MessageSource MessageSource::generated(std::uint64_t count, std::size_t size) {
  MessageSource s;
  s.count_ = count;
  s.size_ = size;
  return s;
}

MessageSource::MessageSource(MessageSource&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)),
      owns_fd_(std::exchange(o.owns_fd_, false)),
      at_end_(o.at_end_),
      buffer_(std::move(o.buffer_)),
      begin_(o.begin_),
      count_(o.count_),
      size_(o.size_),
      produced_(o.produced_),
      rate_(o.rate_),
      start_(o.start_) {}

MessageSource::~MessageSource() {
  if (owns_fd_ && fd_ >= 0) ::close(fd_);
}

bool MessageSource::fill() {
  if (begin_ > 0) {  // keep only what is not returned yet
    buffer_.erase(0, begin_);
    begin_ = 0;
  }
  const std::size_t had = buffer_.size();
  buffer_.resize(had + kReadSize);
  for (;;) {
    const ssize_t n = ::read(fd_, buffer_.data() + had, kReadSize);
    if (n >= 0) {
      buffer_.resize(had + static_cast<std::size_t>(n));
      if (n == 0) at_end_ = true;
      return n > 0;
    }
    if (errno == EINTR && !stop_requested()) continue;
    const int error = errno;
    buffer_.resize(had);
    if (error == EINTR) return false;  // a stop: what was interrupted is no input
    throw Error(std::error_code(error, std::system_category()),
                std::string("cannot read the input: ") + std::strerror(error));
  }
}

bool MessageSource::ready(std::chrono::milliseconds timeout) {
  if (count_ || at_end_ || buffer_.find('\n', begin_) != std::string::npos) return true;
  pollfd p{fd_, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(timeout.count())) == 1;  // EINTR: not ready
}

bool MessageSource::next(std::string& out) {
  if (produced_ == 0) start_ = std::chrono::steady_clock::now();
  if (rate_ > 0) {
    const auto due = start_ + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                  std::chrono::duration<double>(double(produced_) / rate_));
    std::this_thread::sleep_until(due);
  }
  if (count_) {
    if (produced_ >= *count_) return false;
    out = std::to_string(produced_);
    out.resize(size_, '.');
  } else {
    std::size_t newline;
    while ((newline = buffer_.find('\n', begin_)) == std::string::npos && !at_end_)
      if (!fill() && !at_end_) return false;  // stopped mid-wait
    if (newline == std::string::npos) {
      if (begin_ >= buffer_.size()) return false;  // the end of the input
      newline = buffer_.size();                    // a last line without its '\n'
    }
    out.assign(buffer_, begin_, newline - begin_);
    begin_ = std::min(newline + 1, buffer_.size());
  }
  ++produced_;
  return true;
}

}  // namespace mqkit::cli
