// Every input kept in tests/fuzz/corpus/TARGET/ (seeds, and inputs that once
// found a bug) goes through its target again in the normal suite.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>

#include "harnesses.hpp"

namespace {

using Target = void (*)(const std::uint8_t*, std::size_t);

const std::map<std::string, Target> kTargets{
    {"envelope", mqkit::fuzz::envelope},           {"proxy_command", mqkit::fuzz::proxy_command},
    {"spool_segment", mqkit::fuzz::spool_segment}, {"topology", mqkit::fuzz::topology},
    {"proxy_state", mqkit::fuzz::proxy_state},     {"stream_state", mqkit::fuzz::stream_state}};

}  // namespace

TEST_CASE("every fuzz corpus input is handled without a crash", "[fuzz]") {
  const std::filesystem::path root = MQKIT_FUZZ_CORPUS;
  for (const auto& [name, target] : kTargets) {
    std::size_t files = 0;
    for (const auto& entry : std::filesystem::directory_iterator(root / name)) {
      std::ifstream in(entry.path(), std::ios::binary);
      const std::string input((std::istreambuf_iterator<char>(in)), {});
      INFO(entry.path());
      target(reinterpret_cast<const std::uint8_t*>(input.data()), input.size());
      ++files;
    }
    INFO(name);
    CHECK(files > 0);
  }
}
