// Where `mqkit send` takes its payloads from: lines of stdin or of a file
// (without the newline), or --count generated payloads of --size bytes,
// paced to --rate messages per second.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace mqkit::cli {

class MessageSource {
 public:
  // Lines of `path`, or of stdin when `path` is empty. Throws UsageError when
  // the file cannot be opened.
  static MessageSource lines(const std::string& path);
  // `count` payloads of `size` bytes: the decimal index, padded with '.'.
  static MessageSource generated(std::uint64_t count, std::size_t size);

  MessageSource(MessageSource&&) noexcept;
  MessageSource& operator=(MessageSource&&) = delete;
  ~MessageSource();

  void set_rate(double per_second) { rate_ = per_second; }
  // The next payload in `out`; false at the end, or when a stop signal
  // interrupted the wait for input or for the rate (a part of a line read
  // so far is not a line and is not returned). Waits to keep the rate.
  bool next(std::string& out);
  // Whether next() can go on without waiting (for the input, the rest of a
  // line, or the rate), waiting up to `timeout` for it to become so (a
  // signal ends the wait early).
  bool ready(std::chrono::milliseconds timeout = std::chrono::milliseconds(0));

 private:
  MessageSource() = default;
  bool fill();  // one read(2) into the buffer; false at end of input or on a stop
  std::chrono::steady_clock::time_point due() const;  // of the next payload, at the rate

  int fd_ = -1;
  bool owns_fd_ = false;
  bool at_end_ = false;
  std::string buffer_;     // read, not yet returned
  std::size_t begin_ = 0;  // where buffer_'s unreturned bytes start
  std::optional<std::uint64_t> count_;
  std::size_t size_ = 0;
  std::uint64_t produced_ = 0;
  double rate_ = 0;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace mqkit::cli
