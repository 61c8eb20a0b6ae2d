// One stream partition (mqkit::StreamLog) on this machine's disk: appends of
// 100-byte records in batches under `always` (one fdatasync per batch: group
// commit) and `never`, then a backlog read of everything from the earliest
// offset in batches of 4,096.
//
// usage: mqkit_bench_stream [dir=/tmp] [records=1000000] [batch=1000]
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "mqkit/stream_log.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

void run(const std::filesystem::path& dir, const char* policy, mqkit::Durability durability,
         std::uint64_t records, std::size_t batch) {
  std::filesystem::remove_all(dir);
  mqkit::StreamLogOptions options;
  options.durability = durability;
  const std::string frame(100, 'x');
  {
    mqkit::StreamLog log(dir.string(), options);
    const std::vector<std::string_view> frames(batch, frame);
    const auto start = Clock::now();
    for (std::uint64_t n = 0; n < records; n += batch) (void)log.append_batch(frames);
    const double append_s = seconds_since(start);
    std::printf("append, fsync %-6s: %.0f records/s (%zu per batch)\n", policy,
                double(records) / append_s, batch);
  }
  mqkit::StreamLog log(dir.string(), options);  // reopened: recovery included below
  const auto start = Clock::now();
  std::uint64_t read = 0;
  for (std::uint64_t offset = log.first_offset(); offset < log.next_offset();) {
    const auto got = log.read(offset, 4096);
    read += got.size();
    offset += got.size();
  }
  std::printf("backlog read from earliest: %.0f records/s (%llu records)\n",
              double(read) / seconds_since(start), static_cast<unsigned long long>(read));
  std::filesystem::remove_all(dir);
}

}  // namespace

int main(int argc, char** argv) {
  const std::filesystem::path parent = argc > 1 ? argv[1] : "/tmp";
  const std::uint64_t records = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 1000000;
  const std::size_t batch = argc > 3 ? std::strtoul(argv[3], nullptr, 10) : 1000;
  const auto dir = parent / ("mqkit-stream-bench-" + std::to_string(::getpid()));
  run(dir, "always", mqkit::Durability::always, records, batch);
  run(dir, "never", mqkit::Durability::never, records, batch);
  return 0;
}
