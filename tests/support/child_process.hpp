// ChildProcess: a process a test starts (usually the mqkit binary) and is
// sure to end. The destructor kills it with SIGKILL and reaps it if it still
// runs, so a failed assertion never leaves a process behind.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mqkit::test {

struct Stdio {
  bool pipe_stdin = false;  // else /dev/null
  std::string stdin_file;   // read stdin from this file instead
  std::string stdout_file;  // else a pipe read with read_line()
};

class ChildProcess {
 public:
  ChildProcess(const std::vector<std::string>& argv, const Stdio& stdio = {});
  ~ChildProcess();
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const noexcept { return pid_; }
  // The next line of stdout (without newline); empty on timeout or EOF.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout);
  void write_stdin(std::string_view data);
  void close_stdin();
  void signal(int sig);
  // The exit code (128+N for signal N); empty when still running at timeout.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  // Everything the process wrote to stderr so far.
  std::string stderr_text() const;

 private:
  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  int stdout_fd_ = -1;
  std::string stdout_buffer_;
  std::string stderr_path_;
  std::optional<int> exit_code_;
};

// The built `mqkit` binary (set by CMake).
std::string mqkit_binary();

}  // namespace mqkit::test
