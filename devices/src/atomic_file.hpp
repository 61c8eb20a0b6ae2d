// Small state files (a proxy's GROUPS, a stream's consumer positions) are
// replaced whole: written beside, synced, renamed over, directory synced, so
// a crash leaves the old file or the new one, never half of one.
#pragma once

#include <string>

namespace mqkit::devices::detail {

// Throws Error naming the file and the system's reason. The new text is
// written to `temp` first (default: PATH.new).
void replace_file(const std::string& path, const std::string& text, const std::string& temp = {});

}  // namespace mqkit::devices::detail
