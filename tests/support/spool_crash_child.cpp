// The child of the spool crash test: appends messages under `always` with
// up to 500 outstanding and prints "N ID" for each one the spool reports
// durable, flushed at once, until it is killed.
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
  mqkit::Spool spool(argv[1], {.segment_size = 256 * 1024});
  std::atomic<int> outstanding{0};
  std::mutex out;
  for (long n = std::atol(argv[2]);; ++n) {
    while (outstanding.load() >= 500) std::this_thread::yield();
    const auto id = mqkit::MessageId::generate();
    std::string frame = "payload-" + std::to_string(n) + "-" + std::string(n % 300, 'x');
    ++outstanding;
    spool.publish(id, {"g"}, frame, [&, n, id](mqkit::AppendResult r) {
      --outstanding;
      if (!r) return;
      std::lock_guard lock(out);
      std::printf("%ld %s\n", n, id.to_string().c_str());
      std::fflush(stdout);
    });
  }
}
