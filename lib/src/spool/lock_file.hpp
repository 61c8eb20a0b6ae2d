// LockFile: one writer per spool directory. An flock'ed LOCK file that also
// records the owner's pid, so a second writer's error can name it.
#pragma once

#include <string>

namespace mqkit::detail::spool {

class LockFile {
 public:
  // Throws Error naming the owner's pid when another process holds the lock.
  explicit LockFile(const std::string& dir);
  ~LockFile();
  LockFile(const LockFile&) = delete;
  LockFile& operator=(const LockFile&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace mqkit::detail::spool
