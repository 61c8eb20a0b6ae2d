// Reading and replacing DIR/consumers/NAME.
#include "stream/positions_file.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "atomic_file.hpp"
#include "mqkit/error.hpp"
#include "names.hpp"

namespace mqkit::devices::detail {
namespace fs = std::filesystem;

std::map<std::string, Positions> load_positions(const std::string& stream_dir) {
  std::map<std::string, Positions> out;
  const fs::path dir = fs::path(stream_dir) / "consumers";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    // Not a name (a save cut short, NAME~): the old file stands.
    if (!valid_name(name)) continue;
    std::ifstream in(entry.path());
    Positions& positions = out[name];
    std::string line;
    for (int number = 1; std::getline(in, line); ++number) {
      std::istringstream words(line);
      std::uint32_t partition = 0;
      std::uint64_t offset = 0;
      if (line.empty()) continue;
      if (!(words >> partition >> offset))
        throw Error(errc::malformed, entry.path().string() + ":" + std::to_string(number) +
                                         ": a position line is PARTITION OFFSET");
      positions[partition] = offset;
    }
  }
  return out;
}

void save_positions(const std::string& stream_dir, const std::string& name, const Positions& p) {
  const fs::path dir = fs::path(stream_dir) / "consumers";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error(ec, "cannot create " + dir.string() + ": " + ec.message());
  std::string text;
  for (const auto& [partition, offset] : p)
    text += std::to_string(partition) + " " + std::to_string(offset) + "\n";
  // Written beside as NAME~: no consumer name has a '~', so no name's file
  // is ever taken for another's interrupted save.
  replace_file((dir / name).string(), text, (dir / (name + "~")).string());
}

}  // namespace mqkit::devices::detail
