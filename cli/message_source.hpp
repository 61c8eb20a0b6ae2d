// Where `mqkit send` takes its payloads from: lines of stdin or of a file
// (without the newline), or --count generated payloads of --size bytes,
// paced to --rate messages per second.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
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
  ~MessageSource();

  void set_rate(double per_second) { rate_ = per_second; }
  // The next payload in `out`; false at the end. Sleeps to keep the rate.
  bool next(std::string& out);

 private:
  MessageSource() = default;
  std::FILE* file_ = nullptr;
  bool owns_file_ = false;
  std::optional<std::uint64_t> count_;
  std::size_t size_ = 0;
  std::uint64_t produced_ = 0;
  double rate_ = 0;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace mqkit::cli
