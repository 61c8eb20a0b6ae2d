// write + fsync + rename + directory fsync.
#include "atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "mqkit/error.hpp"

namespace mqkit::devices::detail {
namespace {

[[noreturn]] void fail(const std::string& what) {
  const int err = errno;
  throw Error(std::error_code(err, std::system_category()), what + ": " + std::strerror(err));
}

}  // namespace

void replace_file(const std::string& path, const std::string& text, const std::string& temp_path) {
  const std::string temp = temp_path.empty() ? path + ".new" : temp_path;
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("cannot write " + temp);
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                  ::fsync(fd) == 0;
  const int saved = errno;
  ::close(fd);
  errno = saved;
  if (!ok) fail("cannot write " + temp);
  if (::rename(temp.c_str(), path.c_str()) != 0) fail("cannot replace " + path);
  const std::string dir = std::filesystem::path(path).parent_path().string();
  const int dir_fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    [[maybe_unused]] int rc = ::fsync(dir_fd);
    ::close(dir_fd);
  }
}

}  // namespace mqkit::devices::detail
