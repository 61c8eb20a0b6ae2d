// Opening the stream's directory and partitions; start positions; retention.
#include "stream/partitions.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "atomic_file.hpp"
#include "mqkit/error.hpp"
#include "stream/stream_id.hpp"
#include "stream/time_seek.hpp"

namespace mqkit::devices::detail {
namespace {

namespace fs = std::filesystem;

std::uint32_t read_partition_count(const std::string& dir) {
  std::ifstream in(dir + "/PARTITIONS");
  std::uint32_t n = 0;
  if (in >> n && n > 0) return n;
  return 0;
}

}  // namespace

using mqkit::detail::protocol::StartPosition;

Partitions::Partitions(const std::string& dir, std::uint32_t requested, const StreamLogOptions& log)
    : dir_(dir) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) throw Error(ec, "cannot create stream directory " + dir_ + ": " + ec.message());
  lock_.emplace(dir_);
  stream_id_ = load_or_create_stream_id(dir_);
  const std::uint32_t had = read_partition_count(dir_);
  std::uint32_t count = requested != 0 ? requested : std::max(had, 1u);
  if (had != 0 && had != count) {
    // Keys would map to other partitions: refuse unless the stream is empty.
    for (std::uint32_t p = 0; p < had; ++p) {
      StreamLog existing(partition_dir(p), log);
      if (existing.next_offset() > 0)
        throw Error(errc::bad_argument,
                    dir_ + " holds a stream of " + std::to_string(had) +
                        " partitions; its partition count cannot change once it holds "
                        "records (use --partitions " +
                        std::to_string(had) + " or another --dir)");
    }
  }
  if (count != had) replace_file(dir_ + "/PARTITIONS", std::to_string(count) + "\n");
  for (std::uint32_t p = 0; p < count; ++p)
    logs_.push_back(std::make_unique<StreamLog>(partition_dir(p), log));
}

std::string Partitions::partition_dir(std::uint32_t p) const {
  return dir_ + "/p" + std::to_string(p);
}

// Offsets past a partition's end are a mistake worth saying at once.
void Partitions::check_start(const StartPosition& from) const {
  auto check = [&](std::uint32_t p, std::uint64_t offset) {
    if (p >= logs_.size())
      throw Error(errc::bad_argument, "partition " + std::to_string(p) +
                                          " does not exist: the stream has " +
                                          std::to_string(logs_.size()) + " (0.." +
                                          std::to_string(logs_.size() - 1) + ")");
    if (offset > logs_[p]->next_offset())
      throw Error(errc::bad_argument, "offset " + std::to_string(offset) +
                                          " is past the end of partition " + std::to_string(p) +
                                          " (its next offset is " +
                                          std::to_string(logs_[p]->next_offset()) + ")");
  };
  if (from.kind == StartPosition::Kind::offset)
    for (std::uint32_t p = 0; p < logs_.size(); ++p) check(p, from.value);
  if (from.kind == StartPosition::Kind::partitions)
    for (const auto& [p, offset] : from.offsets) check(p, offset);
}

std::uint64_t Partitions::start_of(const StartPosition& from, std::uint32_t p) const {
  const StreamLog& log = *logs_[p];
  switch (from.kind) {
    case StartPosition::Kind::earliest:
      return log.first_offset();
    case StartPosition::Kind::latest:
      return log.readable_end();
    case StartPosition::Kind::time:
      return offset_at_time(log, from.value);
    case StartPosition::Kind::offset:
      return std::min(from.value, log.next_offset());
    case StartPosition::Kind::partitions: {
      auto it = from.offsets.find(p);
      return it == from.offsets.end() ? log.first_offset()
                                      : std::min(it->second, log.next_offset());
    }
  }
  return log.first_offset();
}

void Partitions::apply_retention(std::uint32_t p) {
  try {
    retention_deleted_.add(logs_[p]->enforce_retention());
  } catch (const Error&) {
    // A segment that cannot be deleted stays (and is tried again next tick).
    retention_errors_.add();
  }
}

}  // namespace mqkit::devices::detail
