// LockFile: one writer per log directory (a spool or a stream partition). An flock'ed LOCK file
// that also records the owner's pid, so a second writer's error can name it.
#pragma once

#include <sys/types.h>
#include <optional>
#include <string>

namespace mqkit::detail::log {

inline constexpr const char* kLockFile = "LOCK";

class LockFile {
 public:
  // Throws Error naming the owner's pid when another process holds the lock.
  explicit LockFile(const std::string& dir);
  ~LockFile();
  LockFile(const LockFile&) = delete;
  LockFile& operator=(const LockFile&) = delete;

  // Adds "admin ENDPOINT" to the owner note, for tools that must change the
  // spool through its owner.
  void set_admin_endpoint(const std::string& endpoint);

 private:
  void write_note(const std::string& admin);
  int fd_ = -1;
};

// The process holding DIR's lock right now, if any.
struct LockOwner {
  pid_t pid = 0;
  std::string admin;  // empty when the owner has none
};
[[nodiscard]] std::optional<LockOwner> lock_owner(const std::string& dir);

}  // namespace mqkit::detail::log
