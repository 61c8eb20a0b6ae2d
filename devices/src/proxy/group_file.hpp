// The GROUPS file in a proxy's spool directory: the declared consumer groups
// and their filters, so a group outlives a restart even while it has no
// pending message. One line per group, "NAME FILTER FILTER...", replaced
// atomically (write, fsync, rename) whenever a group is added or deleted.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mqkit::devices::detail {

using GroupTable = std::map<std::string, std::vector<std::string>>;

// Empty when the file does not exist (a new spool, or one from before the
// file). Throws Error naming a malformed line.
[[nodiscard]] std::optional<GroupTable> load_groups(const std::string& spool_dir);
// Throws Error when the file cannot be written.
void save_groups(const std::string& spool_dir, const GroupTable& groups);

}  // namespace mqkit::devices::detail
