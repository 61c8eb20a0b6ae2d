// Shared test helpers.
#include "helpers.hpp"

#include <unistd.h>

#include <atomic>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <thread>

namespace mqkit::test {

bool wait_for(const std::function<bool()>& predicate, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!predicate()) {
    if (std::chrono::steady_clock::now() >= deadline) return predicate();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

TempDir::TempDir() {
  std::string pattern = "/tmp/mqkit-test-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::string unique_inproc() {
  static std::atomic<int> counter{0};
  return "inproc://mqkit-test-" + std::to_string(counter++);
}

DeviceEndpoints parse_up_line(const std::string& line) {
  std::istringstream in(line);
  DeviceEndpoints e;
  for (std::string word; in >> word;) {
    if (word == "in")
      in >> e.in;
    else if (word == "out")
      in >> e.out;
    else if (word == "stats")
      in >> e.stats;
  }
  if (e.in.empty() || e.out.empty()) throw std::runtime_error("not an 'up' line: " + line);
  return e;
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

namespace {

std::uint64_t status_kib(pid_t pid, std::string_view field) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);)
    if (line.starts_with(field)) return std::stoull(line.substr(field.size()));
  return 0;
}

}  // namespace

std::uint64_t resident_bytes(pid_t pid) {
  return status_kib(pid, "VmRSS:") * 1024;
}
std::uint64_t peak_resident_bytes(pid_t pid) {
  return status_kib(pid, "VmHWM:") * 1024;
}

}  // namespace mqkit::test
