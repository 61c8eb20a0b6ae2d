// The GROUPS file in a proxy's spool directory: the declared consumer groups,
// their filters, their own settings and whether they are paused, so that a
// group outlives a restart even while it has no pending message. Replaced
// atomically (write, fsync, rename) whenever any of it changes. Per group:
//   NAME FILTER FILTER...
//   NAME: KEY=VALUE ... [paused]      (only when it has settings or is paused)
// A filter never ends a group name with ':' (names are letters, digits, '-',
// '_', '.'), so the two lines cannot be confused.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "mqkit/device_settings.hpp"

namespace mqkit::devices::detail {

struct GroupRecord {
  std::vector<std::string> filters;
  GroupSettings settings;  // what the group sets itself
  bool paused = false;     // `mqkit group pause`: stored, not delivered
};

using GroupTable = std::map<std::string, GroupRecord>;

// Empty when the file does not exist (a new spool, or one from before the
// file). Throws Error naming a malformed line.
[[nodiscard]] std::optional<GroupTable> load_groups(const std::string& spool_dir);
// Throws Error when the file cannot be written.
void save_groups(const std::string& spool_dir, const GroupTable& groups);

}  // namespace mqkit::devices::detail
