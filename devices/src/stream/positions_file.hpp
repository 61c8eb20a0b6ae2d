// A named stream reader's committed positions: DIR/consumers/NAME, one line
// per partition, "PARTITION NEXT_OFFSET", replaced whole on every save.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace mqkit::devices::detail {

using Positions = std::map<std::uint32_t, std::uint64_t>;  // partition -> next offset

// Every name with saved positions, read from DIR/consumers.
std::map<std::string, Positions> load_positions(const std::string& stream_dir);
void save_positions(const std::string& stream_dir, const std::string& name, const Positions& p);

}  // namespace mqkit::devices::detail
