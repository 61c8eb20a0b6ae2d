// Small helpers shared by the tests: bounded waiting, temporary directories,
// unique inproc endpoints, device "up" lines.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace mqkit::test {

// Polls `predicate` until it holds or `timeout` passes; returns its last value.
bool wait_for(const std::function<bool()>& predicate,
              std::chrono::milliseconds timeout = std::chrono::seconds(10));

// A fresh directory under /tmp, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const noexcept { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// inproc://mqkit-test-N, different on every call.
std::string unique_inproc();

// The endpoints of a device's "mqkit NAME: up, in EP out EP [stats EP]" line.
struct DeviceEndpoints {
  std::string in, out, stats;
};
DeviceEndpoints parse_up_line(const std::string& line);

std::vector<std::string> read_lines(const std::string& path);
void write_file(const std::string& path, const std::string& text);

// A process's resident memory now (VmRSS) and the most it has held (VmHWM),
// in bytes, from /proc; 0 when the process is gone.
std::uint64_t resident_bytes(pid_t pid);
std::uint64_t peak_resident_bytes(pid_t pid);

}  // namespace mqkit::test
