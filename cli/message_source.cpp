// Payload sources for `mqkit send`.
#include "message_source.hpp"

#include <cerrno>
#include <cstring>
#include <thread>
#include <utility>

#include "common.hpp"

namespace mqkit::cli {

MessageSource MessageSource::lines(const std::string& path) {
  MessageSource s;
  if (path.empty()) {
    s.file_ = stdin;
  } else {
    s.file_ = std::fopen(path.c_str(), "rb");
    if (s.file_ == nullptr)
      throw UsageError("cannot read --file '" + path + "': " + std::strerror(errno));
    s.owns_file_ = true;
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
    : file_(std::exchange(o.file_, nullptr)),
      owns_file_(std::exchange(o.owns_file_, false)),
      count_(o.count_),
      size_(o.size_),
      produced_(o.produced_),
      rate_(o.rate_),
      start_(o.start_) {}

MessageSource::~MessageSource() {
  if (owns_file_ && file_ != nullptr) std::fclose(file_);
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
    out.clear();
    for (int c; (c = getc_unlocked(file_)) != EOF;) {
      if (c == '\n') break;
      out.push_back(static_cast<char>(c));
    }
    if (out.empty() && std::feof(file_)) return false;
  }
  ++produced_;
  return true;
}

}  // namespace mqkit::cli
