// The child of the spool crash test: appends messages under `always` with
// up to 500 outstanding, acks every even-numbered one as soon as it is
// durable (so compaction runs while it is killed), and prints
//   "P N ID" when message N is durable, "A N" when its ack is durable,
// flushed at once, until it is killed.
//
// usage: spool_crash_child DIR FIRST_N
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>

#include "mqkit/spool.hpp"

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  mqkit::Spool spool(argv[1], {.segment_size = 64 * 1024});
  std::atomic<int> outstanding{0};
  std::mutex out;
  auto print = [&out](const std::string& line) {
    std::lock_guard lock(out);
    std::fputs(line.c_str(), stdout);
    std::fflush(stdout);
  };
  for (long n = std::atol(argv[2]);; ++n) {
    while (outstanding.load() >= 500) std::this_thread::yield();
    const auto id = mqkit::MessageId::generate();
    std::string frame = "payload-" + std::to_string(n) + "-" + std::string(n % 300, 'x');
    ++outstanding;
    spool.publish(id, {"g"}, frame, [&, n, id](mqkit::AppendResult r) {
      --outstanding;
      if (!r) return;
      print("P " + std::to_string(n) + " " + id.to_string() + "\n");
      if (n % 2 != 0) return;
      spool.ack(id, "g", [&print, n](mqkit::AppendResult acked) {
        if (acked) print("A " + std::to_string(n) + "\n");
      });
    });
  }
}
