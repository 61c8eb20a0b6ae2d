// Spool throughput against the disk's own limit, in one run on one disk:
//  1. single 4 KiB write + fdatasync, one at a time (the physical limit of a
//     sync per message);
//  2. appends of 100-byte messages from 8 threads that each keep up to 1,000
//     outstanding, under always (group commit), interval=10ms and never;
//  3. recovery time of a spool holding 1,000,000 pending 100-byte messages,
//     and the memory of its index per pending message.
//
// usage: mqkit_bench_spool [DIR=/tmp] [messages=1000000]
#include <fcntl.h>
#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <semaphore>
#include <string>
#include <thread>
#include <vector>

#include "mqkit/spool.hpp"

namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::uint64_t rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::uint64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

void raw_sync_rate(const std::string& dir) {
  const std::string path = dir + "/raw-sync-probe";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return;
  std::string block(4096, 'r');
  std::uint64_t n = 0;
  const auto start = Clock::now();
  while (seconds_since(start) < 2.0) {
    if (::pwrite(fd, block.data(), block.size(), static_cast<off_t>((n % 256) * 4096)) < 0) break;
    if (::fdatasync(fd) != 0) break;
    ++n;
  }
  const double s = seconds_since(start);
  ::close(fd);
  ::unlink(path.c_str());
  std::printf("%-34s %10.0f ops/s   (one 4 KiB write + fdatasync at a time)\n",
              "raw write+fdatasync", double(n) / s);
}

void append_rate(const std::string& dir, const char* policy, std::uint64_t total) {
  const std::string path = dir + "/bench-" + std::string(policy).substr(0, 5);
  fs::remove_all(path);
  mqkit::SpoolOptions options;
  mqkit::parse_durability(policy, options);
  constexpr int kThreads = 8;
  constexpr int kWindow = 1000;
  const std::string frame(100, 'm');
  double elapsed = 0;
  mqkit::SpoolStats stats;
  {
    mqkit::Spool spool(path, options);
    const auto start = Clock::now();
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
      threads.emplace_back([&] {
        // A window of kWindow outstanding appends, as the proxy pipelines them.
        std::counting_semaphore<kWindow> window(kWindow);
        for (std::uint64_t i = 0; i < total / kThreads; ++i) {
          window.acquire();
          spool.publish(mqkit::MessageId::generate(), {"g"}, frame,
                        [&window](mqkit::AppendResult) { window.release(); });
        }
        for (int i = 0; i < kWindow; ++i) window.acquire();  // all completed
      });
    for (auto& t : threads) t.join();
    elapsed = seconds_since(start);
    stats = spool.stats();
  }
  const double rate = double(total) / elapsed;
  const double record = 100 + 16 + 9 + 8;  // payload, id, record header, msgpack framing
  std::printf("%-34s %10.0f msgs/s %7.1f MB/s  %8.1f msgs per sync  (%llu syncs)\n",
              (std::string("append 100 B, ") + policy).c_str(), rate, rate * record / 1e6,
              stats.syncs ? double(total) / double(stats.syncs) : 0.0,
              static_cast<unsigned long long>(stats.syncs));
  fs::remove_all(path);
}

void recovery(const std::string& dir, std::uint64_t total) {
  const std::string path = dir + "/bench-recovery";
  fs::remove_all(path);
  {
    mqkit::SpoolOptions options;
    options.durability = mqkit::Durability::never;
    mqkit::Spool spool(path, options);
    const std::string frame(100, 'm');
    for (std::uint64_t i = 0; i < total; ++i)
      spool.publish(mqkit::MessageId::generate(), {"g"}, frame, nullptr);
    spool.flush();
  }
  // Recover in a freshly executed process, so that memory the build-up left
  // in this process does not hide or inflate the index's real size.
  std::fflush(stdout);
  const pid_t child = ::fork();
  if (child == 0) {
    ::execl("/proc/self/exe", "mqkit_bench_spool", "--recover", path.c_str(), nullptr);
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  fs::remove_all(path);
}

// The measuring half of recovery(), run as its own process.
int recover_and_report(const std::string& path) {
  const std::uint64_t before = rss_bytes();
  const auto start = Clock::now();
  mqkit::Spool spool(path);
  const double s = seconds_since(start);
  ::malloc_trim(0);  // return what recovery freed, so RSS shows what the index keeps
  const std::uint64_t after = rss_bytes();
  const auto pending = spool.stats().messages;
  std::printf("%-34s %10.2f s for %llu pending messages; index RSS %.0f bytes per message\n",
              "recovery", s, static_cast<unsigned long long>(pending),
              double(after - before) / double(pending));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "--recover") return recover_and_report(argv[2]);
  const std::string dir = argc > 1 ? argv[1] : "/tmp";
  const std::uint64_t total = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 1'000'000;
  std::printf("mqkit spool on %s, %llu messages per run\n", dir.c_str(),
              static_cast<unsigned long long>(total));
  raw_sync_rate(dir);
  append_rate(dir, "always", total);
  append_rate(dir, "interval=10ms", total);
  append_rate(dir, "never", total);
  recovery(dir, total);
  return 0;
}
