// The append-only applied-orders log shared by a service's workers.
#include "applied_log.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace ecommerce {

namespace {

std::runtime_error os_error(const std::string& what, const std::string& path) {
  return std::runtime_error(what + " " + path + ": " + std::strerror(errno));
}

// The log's flock, held while in scope: one worker at a time reads, decides
// and appends, so two workers never apply the same order or oversell stock.
class FileLock {
 public:
  FileLock(int fd, const std::string& path) : fd_(fd) {
    while (::flock(fd_, LOCK_EX) != 0)
      if (errno != EINTR) throw os_error("cannot lock", path);
  }
  ~FileLock() { ::flock(fd_, LOCK_UN); }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_;
};

// "ORD-000042 attempt 2 SKU-3:2" -> id, attempt, detail.
struct Line {
  std::string id, detail;
  unsigned long attempt = 0;
};

Line parse_line(const std::string& text) {
  Line line;
  std::istringstream words(text);
  std::string attempt_word;
  words >> line.id >> attempt_word >> line.attempt;
  std::getline(words >> std::ws, line.detail);
  return line;
}

}  // namespace

AppliedLog::AppliedLog(const std::string& path, OnLine on_line)
    : path_(path),
      fd_(::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644)),
      on_line_(std::move(on_line)) {
  if (fd_ < 0) throw os_error("cannot open", path);
  FileLock lock(fd_, path_);
  catch_up();
}

AppliedLog::~AppliedLog() {
  if (dirty_) ::fdatasync(fd_);
  ::close(fd_);
}

void AppliedLog::catch_up() {
  const off_t end = ::lseek(fd_, 0, SEEK_END);
  if (end < 0) throw os_error("cannot seek", path_);
  if (static_cast<std::uint64_t>(end) <= read_to_) return;
  std::vector<char> buffer(static_cast<std::size_t>(end) - read_to_);
  std::size_t got = 0;
  while (got < buffer.size()) {
    const auto n =
        ::pread(fd_, buffer.data() + got, buffer.size() - got, static_cast<off_t>(read_to_ + got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw os_error("cannot read", path_);
    got += static_cast<std::size_t>(n);
  }
  std::size_t start = 0;
  for (std::size_t i = 0; i < buffer.size(); ++i) {
    if (buffer[i] != '\n') continue;
    const Line line = parse_line(std::string(buffer.data() + start, i - start));
    if (!line.id.empty() && ids_.insert(line.id).second && on_line_) on_line_(line.id, line.detail);
    start = i + 1;
  }
  read_to_ += start;
  // Bytes after the last newline while we hold the lock: a write torn by a
  // crash (appends are one write() each, under the lock). Cut them off so
  // the next line starts clean; the order they belonged to was never acked.
  if (start < buffer.size() && ::ftruncate(fd_, static_cast<off_t>(read_to_)) != 0)
    throw os_error("cannot truncate", path_);
}

bool AppliedLog::apply(const std::string& id, std::uint32_t attempt,
                       const std::function<std::string()>& work) {
  FileLock lock(fd_, path_);
  catch_up();
  if (ids_.contains(id)) return false;
  const std::string detail = work();
  std::string line = id + " attempt " + std::to_string(attempt);
  if (!detail.empty()) line += " " + detail;
  line += '\n';
  const auto n = ::write(fd_, line.data(), line.size());  // O_APPEND: one write, one line
  if (n != static_cast<ssize_t>(line.size())) throw os_error("cannot append to", path_);
  read_to_ += line.size();
  ids_.insert(id);
  if (on_line_) on_line_(id, detail);
  dirty_ = true;
  return true;
}

void AppliedLog::sync() {
  if (!dirty_) return;
  if (::fdatasync(fd_) != 0) throw os_error("cannot sync", path_);
  dirty_ = false;
}

AppliedSummary summarize_applied_log(const std::string& path) {
  AppliedSummary summary;
  std::ifstream in(path);
  if (!in) return summary;
  summary.exists = true;
  std::unordered_set<std::string> seen;
  for (std::string text; std::getline(in, text);) {
    if (in.eof()) break;  // a line still being written (no newline yet)
    const Line line = parse_line(text);
    if (line.id.empty() || !seen.insert(line.id).second) continue;
    ++summary.orders;
    if (line.attempt > 1) ++summary.retried;
  }
  return summary;
}

}  // namespace ecommerce
