// flock-based ownership of a spool directory.
#include "spool/lock_file.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "mqkit/error.hpp"
#include "spool/format.hpp"

namespace mqkit::detail::spool {

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
    while (!who.empty() && (who.back() == '\n' || who.back() == ' ')) who.pop_back();
    if (err == EWOULDBLOCK)
      throw Error(errc::in_use, "spool " + dir + " is in use by another process (" +
                                    (who.empty() ? std::string("pid unknown") : who) +
                                    "); stop it or use another directory");
    throw Error(std::error_code(err, std::system_category()),
                "cannot lock " + path + ": " + std::strerror(err));
  }
  const std::string me = "pid " + std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, me.data(), me.size(), 0) < 0) {
    // The lock holds regardless; only the pid note for others is missing.
  }
}

LockFile::~LockFile() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the flock
}

}  // namespace mqkit::detail::spool
