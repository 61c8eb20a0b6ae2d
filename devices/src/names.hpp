// Names that become file names and table cells (proxy groups, stream
// consumer names): 1-128 letters, digits, '-', '_' or '.', and not a
// dot-only name that would mean a directory.
#pragma once

#include <algorithm>
#include <cctype>
#include <string_view>

namespace mqkit::devices::detail {

inline bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > 128 || name == "." || name == "..") return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

}  // namespace mqkit::devices::detail
