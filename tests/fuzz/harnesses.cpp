// What each fuzz target does with its input.
#include "harnesses.hpp"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string_view>

#include "envelope/codec.hpp"
#include "mqkit/error.hpp"
#include "mqkit/spool.hpp"
#include "mqkit/topology.hpp"
#include "reliable/protocol.hpp"
#include "spool/format.hpp"

namespace mqkit::fuzz {
namespace {

std::string_view bytes(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// One scratch directory per process, removed at exit.
const std::string& scratch() {
  static const std::string dir = [] {
    char pattern[] = "/tmp/mqkit-fuzz-XXXXXX";
    const char* made = ::mkdtemp(pattern);
    if (made == nullptr) std::abort();
    return std::string(made);
  }();
  static const struct Cleanup {
    ~Cleanup() { std::filesystem::remove_all(dir); }
  } cleanup;
  return dir;
}

}  // namespace

void envelope(const std::uint8_t* data, std::size_t size) {
  static detail::EnvelopeCodec codec;
  Message m;
  Limits limits;
  limits.max_message_size = 1 << 20;
  if (codec.decode(bytes(data, size), m, limits)) {
    // Whatever decodes must encode again and decode to the same message.
    const std::string again = encode(m.envelope, m.payload());
    Message back;
    if (decode(again, back) || back.id() != m.id() || back.payload() != m.payload()) std::abort();
  }
}

void proxy_command(const std::uint8_t* data, std::size_t size) {
  detail::proxy::CommandFrame c;
  if (detail::proxy::decode_command(bytes(data, size), c)) {
    if (c.command == detail::proxy::Command::nack && c.ids.empty()) std::abort();
    detail::proxy::CommandFrame back;
    if (!detail::proxy::decode_command(detail::proxy::encode_command(c), back)) std::abort();
  }
}

void spool_segment(const std::uint8_t* data, std::size_t size) {
  // The input is a whole segment file after a valid header: recovery and the
  // read-only reader must both take it.
  const std::string dir = scratch() + "/spool";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  {
    std::ofstream seg(dir + "/" + detail::spool::segment_name(1), std::ios::binary);
    const char header[16] = {'M', 'Q', 'K', 'S', 'P', 'O', 'O', 'L', 1, 0, 0, 0, 0, 0, 0, 0};
    seg.write(header, sizeof header);
    seg.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  try {
    (void)read_spool(dir, 1 << 20);
    SpoolOptions options;
    options.durability = Durability::never;
    options.max_record_size = 1 << 20;
    Spool spool(dir, options);
    for (const auto& group : spool.groups())
      for (const auto& id : spool.pending(group)) (void)spool.read(id);
  } catch (const Error&) {
    // A refused file is a fine answer; a crash is not.
  }
}

void topology(const std::uint8_t* data, std::size_t size) {
  try {
    (void)Topology::parse(bytes(data, size), "fuzz.yaml", "/nonexistent");
  } catch (const Error&) {
  }
}

}  // namespace mqkit::fuzz
