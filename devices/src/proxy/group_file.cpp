// Reading and atomically replacing the GROUPS file.
#include "proxy/group_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "mqkit/error.hpp"

namespace mqkit::devices::detail {
namespace {

std::string path_of(const std::string& dir) {
  return dir + "/GROUPS";
}

[[noreturn]] void fail(const std::string& what) {
  const int err = errno;
  throw Error(std::error_code(err, std::system_category()), what + ": " + std::strerror(err));
}

}  // namespace

GroupTable load_groups(const std::string& spool_dir) {
  GroupTable groups;
  std::ifstream in(path_of(spool_dir));
  if (!in) return groups;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    std::istringstream words(line);
    std::string name, filter;
    if (!(words >> name)) continue;
    auto& filters = groups[name];
    while (words >> filter) filters.push_back(filter);
    if (filters.empty())
      throw Error(errc::malformed, path_of(spool_dir) + ":" + std::to_string(number) +
                                       ": a group line is NAME FILTER..., found no filter");
  }
  return groups;
}

void save_groups(const std::string& spool_dir, const GroupTable& groups) {
  std::string text;
  for (const auto& [name, filters] : groups) {
    text += name;
    for (const auto& f : filters) text += " " + f;
    text += "\n";
  }
  const std::string path = path_of(spool_dir), temp = path + ".new";
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("cannot write " + temp);
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                  ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) fail("cannot write " + temp);
  if (::rename(temp.c_str(), path.c_str()) != 0) fail("cannot replace " + path);
  const int dir = ::open(spool_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    [[maybe_unused]] int rc = ::fsync(dir);
    ::close(dir);
  }
}

}  // namespace mqkit::devices::detail
