// Publish -> confirm latency of the proxy and the stream against the disk's
// floor, in one run and one directory (issue 16):
//
//   floor   a plain group-commit writer: a paced thread queues 100-byte
//           records at `rate`/s; one writer thread takes everything queued
//           and appends it with one write() and one fdatasync(), then stamps
//           each record's queued -> durable time.
//   proxy   publish -> confirm at `rate`/s, one worker attached, fsync
//           `always` and `never` (device_support.hpp: proxy_latency).
//   stream  the same into a one-partition stream, one reader attached
//           (stream_latency).
//
// Targets: under `always`, p99 <= 1.5 x the floor's p99 and p50 <= the
// floor's p50 + 0.5 ms; under `never`, p99 <= 1.5 ms. The directory's file
// system is printed: on tmpfs fdatasync is free and the `always` figures
// say nothing about a disk.
//
// usage: mqkit_bench_latency [count] [dir] [rate] [phase]
//   defaults: 30000 records per run, /var/tmp, 10000 records/s, all
//   phase: all, floor, proxy, stream (one part alone, e.g. under strace)
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "bench_support.hpp"
#include "device_support.hpp"
#include "run_profile.hpp"

namespace {

using namespace mqkit::bench;
namespace fs = std::filesystem;

constexpr double kNeverP99Us = 1500;  // under `never`: p99 <= 1.5 ms
constexpr double kP99Factor = 1.5;    // under `always`: p99 <= 1.5 x the floor's
constexpr double kP50SlackUs = 500;   // under `always`: p50 <= the floor's + 0.5 ms
constexpr auto kDrainLimit = std::chrono::seconds(30);  // past the last record

// ---- the file system ----

struct FsType {
  std::string name;
  bool memory = false;  // tmpfs or ramfs: fdatasync costs nothing
};

FsType fs_type(const fs::path& dir) {
  struct statfs st {};
  if (::statfs(dir.c_str(), &st) != 0)
    throw std::system_error(errno, std::generic_category(), "statfs " + dir.string());
  const auto magic = static_cast<unsigned long>(st.f_type);
  switch (magic) {
    case EXT4_SUPER_MAGIC:
      return {"ext4 (ext2/3/4 magic)"};
    case XFS_SUPER_MAGIC:
      return {"xfs"};
    case BTRFS_SUPER_MAGIC:
      return {"btrfs"};
    case TMPFS_MAGIC:
      return {"tmpfs", true};
    case RAMFS_MAGIC:
      return {"ramfs", true};
    case OVERLAYFS_SUPER_MAGIC:
      return {"overlayfs"};
    case NFS_SUPER_MAGIC:
      return {"nfs"};
    case F2FS_SUPER_MAGIC:
      return {"f2fs"};
    case FUSE_SUPER_MAGIC:
      return {"fuse"};
    case 0x2fc12fc1:
      return {"zfs"};
    default:
      break;
  }
  char hex[32];
  std::snprintf(hex, sizeof hex, "unknown (0x%lx)", magic);
  return {hex};
}

// ---- the floor: a plain group-commit writer ----

struct FloorRun {
  std::vector<double> to_durable;  // queued -> durable, us per record
  std::vector<double> sync_us;     // each fdatasync
  std::size_t syncs = 0;           // write + fdatasync turns
  RunProfile profile;              // while queueing
};

// Appends every record the producer queued since the last turn with one
// write() and one fdatasync() to `file`, until `count` records are durable
// or `deadline`.
class FloorWriter {
 public:
  FloorWriter(const fs::path& file, std::uint64_t count) : count_(count) {
    fd_ = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "open " + file.string());
    queued_bytes_.reserve(std::size_t(count) * kPayload);
    queued_at_.reserve(count);
  }
  ~FloorWriter() { ::close(fd_); }
  FloorWriter(const FloorWriter&) = delete;
  FloorWriter& operator=(const FloorWriter&) = delete;

  // Producer side: one 100-byte record carrying its queue time.
  void queue(std::int64_t at_us) {
    char record[kPayload];
    std::memset(record, 'x', sizeof record);
    std::memcpy(record, &at_us, sizeof at_us);
    std::lock_guard lock(mutex_);
    const bool was_empty = queued_at_.empty();
    queued_bytes_.append(record, sizeof record);
    queued_at_.push_back(at_us);
    if (was_empty) wake_.notify_one();  // the writer waits only on an empty queue
  }

  // Writer side; returns what it measured.
  FloorRun run(Clock::time_point deadline) {
    FloorRun out;
    out.to_durable.reserve(count_);
    std::string bytes;
    std::vector<std::int64_t> at;
    bytes.reserve(std::size_t(count_) * kPayload);
    at.reserve(count_);
    while (out.to_durable.size() < count_ && Clock::now() < deadline) {
      {
        std::unique_lock lock(mutex_);
        if (queued_at_.empty()) wake_.wait_for(lock, std::chrono::milliseconds(10));
        bytes.swap(queued_bytes_);
        at.swap(queued_at_);
      }
      if (at.empty()) continue;
      write_all(bytes);
      const auto sync_start = Clock::now();
      if (::fdatasync(fd_) != 0)
        throw std::system_error(errno, std::generic_category(), "fdatasync");
      const auto durable = now_us();
      out.sync_us.push_back(1e6 * seconds(sync_start, Clock::now()));
      ++out.syncs;
      for (const auto t : at) out.to_durable.push_back(double(durable - t));
      bytes.clear();
      at.clear();
    }
    return out;
  }

 private:
  // One write(); a short write (rare on a regular file) is finished with more.
  void write_all(const std::string& bytes) {
    std::size_t done = 0;
    while (done < bytes.size()) {  // bounded: each turn writes something or throws
      const auto n = ::write(fd_, bytes.data() + done, bytes.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) throw std::system_error(errno, std::generic_category(), "write");
      done += std::size_t(n);
    }
  }

  int fd_ = -1;
  std::uint64_t count_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::string queued_bytes_;             // guarded by mutex_
  std::vector<std::int64_t> queued_at_;  // guarded by mutex_
};

FloorRun floor_latency(const fs::path& parent, double rate, std::uint64_t count) {
  const fs::path dir = parent / ("mqkit-latency-floor-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  FloorRun out;
  {
    FloorWriter writer(dir / "floor.log", count);
    const auto deadline =
        Clock::now() + std::chrono::duration_cast<Clock::duration>(
                           std::chrono::duration<double>(double(count) / rate) + kDrainLimit);
    const auto before = ProfileSnapshot::take();
    const auto start = Clock::now();
    std::exception_ptr failed;  // a failed write or fdatasync, thrown again below
    std::thread writing([&] {
      ::pthread_setname_np(::pthread_self(), "floor-writer");
      try {
        out = writer.run(deadline);
      } catch (...) {
        failed = std::current_exception();
      }
    });
    // The paced producer, as publish_paced: record i is queued at start + i / rate.
    const auto interval = std::chrono::duration<double>(1.0 / rate);
    for (std::uint64_t i = 0; i < count && Clock::now() < deadline; ++i) {
      std::this_thread::sleep_until(
          start + std::chrono::duration_cast<Clock::duration>(interval * double(i)));
      writer.queue(now_us());
    }
    auto profile = RunProfile::since(before);
    writing.join();
    if (failed) std::rethrow_exception(failed);
    out.profile = std::move(profile);
  }
  fs::remove_all(dir);
  return out;
}

// ---- the report ----

struct Row {
  std::string name;
  std::string fsync;
  std::vector<double> latency;      // record -> durable (floor) or publish -> confirm
  std::vector<double> to_delivery;  // devices only
  RunProfile profile;
  std::string note;  // a line under the row, or empty
};

Row floor_row(const char* name, FloorRun run) {
  char note[160];
  std::snprintf(note, sizeof note,
                "%zu write+fdatasync, %.1f records each; fdatasync p50 %.0f us p99 %.0f us",
                run.syncs, run.syncs ? double(run.to_durable.size()) / double(run.syncs) : 0.0,
                percentile(run.sync_us, 0.5), percentile(run.sync_us, 0.99));
  return {name, "always", std::move(run.to_durable), {}, std::move(run.profile), note};
}

Row device_row(const char* name, const char* fsync, Latencies l) {
  return {name, fsync, std::move(l.to_confirm), std::move(l.to_delivery), std::move(l.profile), {}};
}

void print_row(const Row& r) {
  std::printf("%-14s %-7s %7zu %8.0f %8.0f %8.0f", r.name.c_str(), r.fsync.c_str(),
              r.latency.size(), percentile(r.latency, 0.5), percentile(r.latency, 0.99),
              percentile(r.latency, 1.0));
  if (r.to_delivery.empty())
    std::printf(" %8s %8s\n", "-", "-");
  else
    std::printf(" %8.0f %8.0f\n", percentile(r.to_delivery, 0.5), percentile(r.to_delivery, 0.99));
  if (!r.note.empty()) std::printf("      %s\n", r.note.c_str());
  if (!r.profile.threads.empty()) r.profile.print();
}

const char* verdict(bool ok, bool valid) {
  return !valid ? "INVALID" : ok ? "PASS" : "MISS";
}

// Runs the phases `wanted` and prints the table and the verdicts.
void run(std::uint64_t count, const fs::path& dir, double rate,
         const std::function<bool(const char*)>& wanted) {
  const FsType type = fs_type(dir);
  std::printf("latency benchmark: %llu x %zu-byte records per run at %.0f/s, in %s\n",
              (unsigned long long)count, kPayload, rate, dir.c_str());
  std::printf("file system: %s\n", type.name.c_str());
  if (type.memory)
    std::printf(
        "\n*** WARNING: %s keeps files in memory: fdatasync is free, so the floor and every\n"
        "*** `always` figure below say nothing about a disk. NOT A VALID RUN for the\n"
        "*** `always` targets; give a directory on a real disk (e.g. /var/tmp).\n\n",
        type.name.c_str());
  std::fflush(stdout);

  // The floor brackets the `always` runs (the disk's pace drifts); the
  // targets use both floor runs together.
  std::vector<Row> rows;
  if (wanted("floor")) rows.push_back(floor_row("floor, before", floor_latency(dir, rate, count)));
  if (wanted("proxy"))
    rows.push_back(device_row("proxy", "always", proxy_latency(dir, "always", rate, count)));
  if (wanted("stream"))
    rows.push_back(device_row("stream", "always",
                              stream_latency(dir, mqkit::Durability::always, rate, count)));
  if (wanted("floor")) {
    rows.push_back(floor_row("floor, after", floor_latency(dir, rate, count)));
    Row both{"floor, both", "always", rows.front().latency, {}, {}, "(the floor the targets use)"};
    both.latency.insert(both.latency.end(), rows.back().latency.begin(), rows.back().latency.end());
    rows.push_back(std::move(both));
  }
  if (wanted("proxy"))
    rows.push_back(device_row("proxy", "never", proxy_latency(dir, "never", rate, count)));
  if (wanted("stream"))
    rows.push_back(
        device_row("stream", "never", stream_latency(dir, mqkit::Durability::never, rate, count)));

  std::printf("\n%-14s %-7s %7s %8s %8s %8s %8s %8s\n", "run", "fsync", "n", "p50 us", "p99 us",
              "max us", "dlv p50", "dlv p99");
  for (const auto& r : rows) print_row(r);
  std::printf(
      "(p50/p99/max: record->durable for the floor, publish->confirm for the devices;\n"
      " dlv: publish->worker's handler (proxy) or ->reader (stream))\n\n");

  std::vector<double> floor;
  bool complete = true;
  for (const auto& r : rows) {
    if (r.name == "floor, both")
      floor = r.latency;
    else if (r.latency.size() != count)
      complete = false;
  }
  const double floor_p50 = percentile(floor, 0.5), floor_p99 = percentile(floor, 0.99);
  const bool valid = !type.memory && !floor.empty();
  for (const auto& r : rows) {
    if (r.name.rfind("floor", 0) == 0) continue;
    const bool all_in = r.latency.size() == count;
    const double p50 = percentile(r.latency, 0.5), p99 = percentile(r.latency, 0.99);
    if (r.fsync == "always") {
      std::printf("%-6s always p99 <= %.1f x floor p99:     %6.0f / %6.0f us = %5.2f x  %s\n",
                  r.name.c_str(), kP99Factor, p99, floor_p99, floor_p99 > 0 ? p99 / floor_p99 : 0,
                  verdict(all_in && p99 <= kP99Factor * floor_p99, valid));
      std::printf("%-6s always p50 <= floor p50 + %.1f ms: %6.0f - %6.0f us = %+6.0f us %s\n",
                  r.name.c_str(), kP50SlackUs / 1000, p50, floor_p50, p50 - floor_p50,
                  verdict(all_in && p50 <= floor_p50 + kP50SlackUs, valid));
    } else {
      std::printf("%-6s never  p99 <= %.1f ms:                %6.0f us                    %s\n",
                  r.name.c_str(), kNeverP99Us / 1000, p99,
                  verdict(all_in && p99 <= kNeverP99Us, true));
    }
  }
  if (!complete)
    std::printf("warning: a run did not finish every record (n < %llu): its verdicts are MISS\n",
                (unsigned long long)count);
}

}  // namespace

int main(int argc, char** argv) {
  ::pthread_setname_np(::pthread_self(), "producer");
  const std::uint64_t count = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 30000;
  const fs::path dir = argc > 2 ? fs::path(argv[2]) : fs::path("/var/tmp");
  const double rate = argc > 3 ? std::strtod(argv[3], nullptr) : 10000;
  const std::string phase = argc > 4 ? argv[4] : "all";
  auto wanted = [&](const char* name) { return phase == "all" || phase == name; };
  if (count == 0 || !(rate > 0) || !(wanted("floor") || wanted("proxy") || wanted("stream"))) {
    std::fprintf(stderr,
                 "usage: mqkit_bench_latency [count] [dir] [rate] [all|floor|proxy|stream]\n");
    return 2;
  }

  try {
    run(count, dir, rate, wanted);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mqkit_bench_latency: %s\n", e.what());
    return 1;
  }
  return 0;
}
