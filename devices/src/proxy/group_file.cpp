// Reading and atomically replacing the GROUPS file.
#include "proxy/group_file.hpp"

#include <fstream>
#include <sstream>

#include "atomic_file.hpp"
#include "mqkit/error.hpp"

namespace mqkit::devices::detail {
namespace {

std::string path_of(const std::string& dir) {
  return dir + "/GROUPS";
}

}  // namespace

std::optional<GroupTable> load_groups(const std::string& spool_dir) {
  GroupTable groups;
  std::ifstream in(path_of(spool_dir));
  if (!in) return std::nullopt;
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
  replace_file(path_of(spool_dir), text);
}

}  // namespace mqkit::devices::detail
