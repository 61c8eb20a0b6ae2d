// flock-based ownership of a spool directory.
#include "log/lock_file.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "log/format.hpp"
#include "mqkit/error.hpp"

namespace mqkit::detail::log {

LockFile::LockFile(const std::string& dir) {
  const std::string path = dir + "/" + kLockFile;
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0)
    throw Error(std::error_code(errno, std::system_category()),
                "cannot open " + path + ": " + std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    char owner[64] = {};
    const ssize_t n = ::pread(fd_, owner, sizeof owner - 1, 0);
    ::close(fd_);
    fd_ = -1;
    std::string who = n > 0 ? std::string(owner, static_cast<std::size_t>(n)) : "";
    who = who.substr(0, who.find('\n'));  // "pid N"; the admin line is for tools
    if (err == EWOULDBLOCK)
      throw Error(errc::in_use, dir + " is in use by another process (" +
                                    (who.empty() ? std::string("pid unknown") : who) +
                                    "); stop it or use another directory");
    throw Error(std::error_code(err, std::system_category()),
                "cannot lock " + path + ": " + std::strerror(err));
  }
  write_note("");
}

void LockFile::write_note(const std::string& admin) {
  std::string note = "pid " + std::to_string(::getpid()) + "\n";
  if (!admin.empty()) note += "admin " + admin + "\n";
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, note.data(), note.size(), 0) < 0) {
    // The lock holds regardless; only the note for others is missing.
  }
}

void LockFile::set_admin_endpoint(const std::string& endpoint) {
  write_note(endpoint);
}

std::optional<LockOwner> lock_owner(const std::string& dir) {
  const std::string path = dir + "/" + kLockFile;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  // A shared lock is refused only while a writer holds its exclusive one.
  if (::flock(fd, LOCK_SH | LOCK_NB) == 0) {
    ::close(fd);
    return std::nullopt;
  }
  char text[512] = {};
  const ssize_t n = ::pread(fd, text, sizeof text - 1, 0);
  ::close(fd);
  LockOwner owner;
  std::string note(text, n > 0 ? static_cast<std::size_t>(n) : 0);
  for (std::size_t start = 0; start < note.size();) {
    const auto end = std::min(note.find('\n', start), note.size());
    const std::string line = note.substr(start, end - start);
    if (line.starts_with("pid ")) owner.pid = static_cast<pid_t>(std::atol(line.c_str() + 4));
    if (line.starts_with("admin ")) owner.admin = line.substr(6);
    start = end + 1;
  }
  return owner;
}

LockFile::~LockFile() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the flock
}

}  // namespace mqkit::detail::log
