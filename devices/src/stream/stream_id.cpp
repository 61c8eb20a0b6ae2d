// Reading, or making, DIR/STREAM_ID.
#include "stream/stream_id.hpp"

#include <cstdio>
#include <fstream>
#include <random>

#include "atomic_file.hpp"

namespace mqkit::devices::detail {

std::string load_or_create_stream_id(const std::string& stream_dir) {
  const std::string path = stream_dir + "/STREAM_ID";
  std::ifstream in(path);
  std::string id;
  if (in >> id && !id.empty()) return id;
  std::random_device random;
  char text[33];
  std::snprintf(text, sizeof text, "%08x%08x%08x%08x", random(), random(), random(), random());
  id = text;
  replace_file(path, id + "\n");
  return id;
}

}  // namespace mqkit::devices::detail
