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

std::chrono::steady_clock::time_point MessageSource::due() const {
  if (rate_ <= 0 || produced_ == 0) return start_;
  return start_ + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                      std::chrono::duration<double>(double(produced_) / rate_));
}

bool MessageSource::ready(std::chrono::milliseconds timeout) {
  if (count_ && produced_ >= *count_) return true;  // the end
  // Paced: not ready before the next one's time (so what was sent leaves
  // meanwhile, and a stop ends the wait).
  if (const auto left =
          std::chrono::ceil<std::chrono::milliseconds>(due() - std::chrono::steady_clock::now());
      left.count() > 0) {
    if (wait_for_stop(std::min(left, timeout)) || left > timeout) return false;
    timeout = std::chrono::milliseconds(0);
  }
  if (count_ || at_end_ || buffer_.find('\n', begin_) != std::string::npos) return true;
  // Ready means a whole line (or the end) is here: take in what the input
  // has now, so next() never waits for the rest of a line while the lines
  // before it are held back.
  pollfd p{fd_, POLLIN, 0};
  for (int wait = static_cast<int>(timeout.count()); ::poll(&p, 1, wait) == 1; wait = 0) {
    const std::size_t searched = buffer_.size() - begin_;  // no '\n' in there
    if (!fill()) return at_end_;                           // a stop is not ready
    if (buffer_.find('\n', searched) != std::string::npos) return true;
  }
  return false;  // nothing more now, or EINTR
}

bool MessageSource::next(std::string& out) {
  if (count_ && produced_ >= *count_) return false;
  if (produced_ == 0) start_ = std::chrono::steady_clock::now();
  const auto left =
      std::chrono::ceil<std::chrono::milliseconds>(due() - std::chrono::steady_clock::now());
  if (left.count() > 0 && wait_for_stop(left)) return false;  // a stop: nothing more
  if (count_) {
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
