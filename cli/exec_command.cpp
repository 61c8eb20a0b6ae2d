// posix_spawn-based command runner for `consume --exec`.
#include "exec_command.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "mqkit/error.hpp"

extern char** environ;

namespace mqkit::cli {
namespace {

[[noreturn]] void fail(const std::string& what, int err) {
  throw Error(std::error_code(err, std::system_category()), what + ": " + std::strerror(err));
}

// Owns a pipe's two ends.
struct Pipe {
  int read_end = -1, write_end = -1;
  Pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) fail("cannot create a pipe for --exec", errno);
    read_end = fds[0];
    write_end = fds[1];
  }
  ~Pipe() {
    close_read();
    close_write();
  }
  void close_read() {
    if (read_end >= 0) ::close(read_end), read_end = -1;
  }
  void close_write() {
    if (write_end >= 0) ::close(write_end), write_end = -1;
  }
};

}  // namespace

int run_command(const std::string& command, std::string_view input, const Environment& extra_env) {
  std::vector<std::string> env_storage;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view entry(*e);
    bool overridden = false;
    for (const auto& [name, value] : extra_env)
      overridden |=
          entry.size() > name.size() && entry.starts_with(name) && entry[name.size()] == '=';
    if (!overridden) env_storage.emplace_back(entry);
  }
  for (const auto& [name, value] : extra_env) env_storage.push_back(name + "=" + value);
  std::vector<char*> envp;
  for (auto& s : env_storage) envp.push_back(s.data());
  envp.push_back(nullptr);

  Pipe stdin_pipe;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, stdin_pipe.read_end, STDIN_FILENO);
  std::string sh = "/bin/sh", dash_c = "-c", cmd = command;
  char* argv[] = {sh.data(), dash_c.data(), cmd.data(), nullptr};
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, "/bin/sh", &actions, nullptr, argv, envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) fail("cannot start /bin/sh for --exec", rc);
  stdin_pipe.close_read();

  // A command that does not read its stdin is fine: EPIPE just ends the write
  // (SIGPIPE is ignored by the CLI).
  for (std::size_t done = 0; done < input.size();) {
    const ssize_t n = ::write(stdin_pipe.write_end, input.data() + done, input.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
  stdin_pipe.close_write();

  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) fail("cannot wait for the --exec command", errno);
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

}  // namespace mqkit::cli
