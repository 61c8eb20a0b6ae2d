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

constexpr std::string_view kPaused = "paused";

}  // namespace

std::optional<GroupTable> load_groups(const std::string& spool_dir) {
  GroupTable groups;
  std::ifstream in(path_of(spool_dir));
  if (!in) return std::nullopt;
  std::map<std::string, std::vector<std::string>> settings_lines;  // after every group line
  std::map<std::string, int> settings_line_numbers;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    std::istringstream words(line);
    std::string name, word;
    if (!(words >> name)) continue;
    const auto where = [&] { return path_of(spool_dir) + ":" + std::to_string(number) + ": "; };
    if (name.ends_with(':')) {
      name.pop_back();
      auto& list = settings_lines[name];
      while (words >> word) list.push_back(word);
      settings_line_numbers[name] = number;
      continue;
    }
    auto& filters = groups[name].filters;
    while (words >> word) filters.push_back(word);
    if (filters.empty())
      throw Error(errc::malformed, where() + "a group line is NAME FILTER..., found no filter");
  }
  for (const auto& [name, words] : settings_lines) {
    const std::string where =
        path_of(spool_dir) + ":" + std::to_string(settings_line_numbers[name]) + ": ";
    auto group = groups.find(name);
    if (group == groups.end())
      throw Error(errc::malformed,
                  where + "settings for group '" + name + "', which no line declares");
    for (const auto& setting : words) {
      if (setting == kPaused) {
        group->second.paused = true;
        continue;
      }
      const auto eq = setting.find('=');
      try {
        if (eq == std::string::npos)
          throw Error(errc::bad_argument, "'" + setting + "' is not KEY=VALUE");
        group->second.settings.set(setting.substr(0, eq), setting.substr(eq + 1));
      } catch (const Error& e) {
        throw Error(errc::malformed, where + e.what());
      }
    }
  }
  return groups;
}

void save_groups(const std::string& spool_dir, const GroupTable& groups) {
  std::string text;
  for (const auto& [name, group] : groups) {
    text += name;
    for (const auto& f : group.filters) text += " " + f;
    text += "\n";
    auto words = group.settings.words();
    if (group.paused) words.emplace_back(kPaused);
    if (words.empty()) continue;
    text += name + ":";
    for (const auto& w : words) text += " " + w;
    text += "\n";
  }
  replace_file(path_of(spool_dir), text);
}

}  // namespace mqkit::devices::detail
