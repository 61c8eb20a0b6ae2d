// The reliable proxy end to end against the raw libzmq ceiling, in one run
// on one machine (tcp loopback, one process, 100-byte payloads):
//
//   raw      DEALER -> ROUTER, one ack frame back per message, `window` in
//            flight: what two sockets do with no disk, no envelope, one hop.
//   stream   ReliableProducer -> Proxy (spool) -> ReliableConsumers -> ack,
//            producing and consuming at once, per --fsync policy.
//   backlog  publish everything first (no worker attached), then drain it.
//   latency  publish at a fixed rate with --fsync always: publish -> confirm
//            and publish -> handler, p50 / p99.
//   memory   the process's RSS with `pending` messages stored and not acked.
//
// usage: mqkit_bench_proxy [count] [workers] [spool-parent-dir] [pending-for-rss] [phase]
//   phase: all (default), raw, stream, backlog, latency, memory
#include <zmq.hpp>

#include <sys/resource.h>
#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_support.hpp"
#include "mqkit/devices/proxy.hpp"
#include "mqkit/mqkit.hpp"

namespace {

using namespace mqkit::bench;
namespace fs = std::filesystem;

// ---- the proxy ----

struct Bench {
  fs::path dir;
  mqkit::devices::ProxyOptions options;
  std::unique_ptr<mqkit::devices::Proxy> proxy;

  Bench(const fs::path& parent, const std::string& fsync) {
    dir = parent / ("mqkit-proxy-bench-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    options.front = options.back = "tcp://127.0.0.1:*";
    options.spool_dir = (dir / "spool").string();
    mqkit::parse_durability(fsync, options.spool);
    options.groups = {{"work", {"#"}}};
    proxy = std::make_unique<mqkit::devices::Proxy>(options);
    proxy->start();
  }
  ~Bench() {
    proxy.reset();
    fs::remove_all(dir);
  }
};

// Publishes `count` messages, pipelined, and waits for every confirm.
void produce(const std::string& front, std::uint64_t count,
             const std::function<void(std::uint64_t, mqkit::Envelope&)>& stamp = {}) {
  mqkit::ReliableProducerOptions o;
  o.window = kWindow;
  mqkit::ReliableProducer producer(front, o);
  const std::string payload(kPayload, 'x');
  std::uint64_t failed = 0;
  for (std::uint64_t i = 0; i < count; ++i) {
    auto e = mqkit::Envelope::make("bench");
    if (stamp) stamp(i, e);
    producer.send_async(e, payload, [&](const mqkit::PublishResult& r) { failed += !r.ok(); });
  }
  producer.flush(std::chrono::seconds(120));
  if (failed > 0)
    std::fprintf(stderr, "warning: %llu publishes failed\n", (unsigned long long)failed);
}

// Runs `workers` consumers until `count` acks in total; returns when done.
class Consumers {
 public:
  Consumers(const std::string& back, int workers, std::uint64_t count,
            std::function<void(const mqkit::Message&)> on_message = {})
      : count_(count), on_message_(std::move(on_message)) {
    for (int i = 0; i < workers; ++i)
      consumers_.push_back(std::make_unique<mqkit::ReliableConsumer>(
          back, mqkit::ReliableConsumerOptions{.group = "work", .prefetch = 1000}));
    for (auto& c : consumers_)
      threads_.emplace_back([this, c = c.get()] {
        ::pthread_setname_np(::pthread_self(), "consumer");
        c->run([this](const mqkit::Message& m) {
          if (on_message_) on_message_(m);
          if (++acked_ >= count_)
            for (auto& other : consumers_) other->stop();
          return mqkit::Outcome::ack;
        });
      });
  }
  void join() {
    for (auto& t : threads_) t.join();
  }

 private:
  std::uint64_t count_;
  std::function<void(const mqkit::Message&)> on_message_;
  std::atomic<std::uint64_t> acked_{0};
  std::vector<std::unique_ptr<mqkit::ReliableConsumer>> consumers_;
  std::vector<std::thread> threads_;
};

// CPU seconds each thread of this process used so far, by thread name.
std::map<std::string, double> thread_cpu() {
  std::map<std::string, double> out;
  const double tick = double(::sysconf(_SC_CLK_TCK));
  for (const auto& task : fs::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm"), stat(task.path() / "stat");
    std::string name, text;
    std::getline(comm, name);
    std::getline(stat, text);
    std::istringstream fields(text.substr(text.rfind(')') + 2));
    std::string skip;
    for (int i = 0; i < 11; ++i) fields >> skip;  // fields 3..13
    double utime = 0, stime = 0;
    fields >> utime >> stime;
    out[name] += (utime + stime) / tick;
  }
  return out;
}

double process_cpu() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  auto secs = [](const timeval& t) { return double(t.tv_sec) + double(t.tv_usec) / 1e6; };
  return secs(usage.ru_utime) + secs(usage.ru_stime);
}

double stream(const fs::path& parent, const std::string& fsync, std::uint64_t count, int workers) {
  Bench b(parent, fsync);
  Consumers consumers(b.proxy->out_endpoint(), workers, count);
  const auto cpu_before = thread_cpu();
  const double process_before = process_cpu();
  const auto start = Clock::now();
  produce(b.proxy->in_endpoint(), count);
  consumers.join();
  const double elapsed = seconds(start, Clock::now());
  if (std::getenv("MQKIT_BENCH_THREADS")) {  // where the CPU went, per thread
    double listed = 0;
    for (const auto& [name, cpu] : thread_cpu()) {
      const double used = cpu - (cpu_before.contains(name) ? cpu_before.at(name) : 0);
      listed += used;
      std::printf("  thread %-16s %5.0f%% of the run\n", name.c_str(), 100.0 * used / elapsed);
    }
    // Joined threads (the consumers) are gone from /proc: the rest of the process total.
    std::printf("  consumers (joined) %5.0f%% of the run\n",
                100.0 * (process_cpu() - process_before - listed) / elapsed);
  }
  return double(count) / elapsed;
}

std::pair<double, double> backlog(const fs::path& parent, const std::string& fsync,
                                  std::uint64_t count, int workers) {
  Bench b(parent, fsync);
  auto start = Clock::now();
  produce(b.proxy->in_endpoint(), count);
  const double in = double(count) / seconds(start, Clock::now());
  start = Clock::now();
  Consumers consumers(b.proxy->out_endpoint(), workers, count);
  consumers.join();
  return {in, double(count) / seconds(start, Clock::now())};
}

// Publishes `count` messages at `rate`/s with send_async and a flush per
// message (no batching delay), recording publish->confirm and
// publish->handler in microseconds.
void latency(const fs::path& parent, double rate, std::uint64_t count) {
  Bench b(parent, "always");
  std::vector<double> to_handler;
  std::mutex handler_mutex;
  to_handler.reserve(count);
  Consumers consumers(b.proxy->out_endpoint(), 1, count, [&](const mqkit::Message& m) {
    const auto sent = std::stoll(std::string(m.envelope.headers.at("sent_us")));
    std::lock_guard lock(handler_mutex);
    to_handler.push_back(double(now_us() - sent));
  });
  mqkit::ReliableProducer producer(b.proxy->in_endpoint());
  const auto to_confirm = publish_paced(producer, rate, count);
  consumers.join();
  std::printf(
      "latency at %.0f msgs/s, fsync always, %llu msgs: publish->confirm p50 %.0f us p99 %.0f us; "
      "publish->handler p50 %.0f us p99 %.0f us\n",
      rate, (unsigned long long)count, percentile(to_confirm, 0.5), percentile(to_confirm, 0.99),
      percentile(to_handler, 0.5), percentile(to_handler, 0.99));
}

long rss_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  return 0;
}

void memory(const fs::path& parent, std::uint64_t pending) {
  const long before = rss_kib();
  Bench b(parent, "never");
  produce(b.proxy->in_endpoint(), pending);
  const long after = rss_kib();
  std::printf("memory: %llu pending 100-byte messages: RSS %ld MiB -> %ld MiB (%.0f bytes/msg)\n",
              (unsigned long long)pending, before / 1024, after / 1024,
              double(after - before) * 1024.0 / double(pending));
}

}  // namespace

int main(int argc, char** argv) {
  ::pthread_setname_np(::pthread_self(), "producer");
  const std::uint64_t count = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 500000;
  const int workers = argc > 2 ? std::atoi(argv[2]) : 2;
  const fs::path parent = argc > 3 ? fs::path(argv[3]) : fs::temp_directory_path();
  const std::uint64_t pending = argc > 4 ? std::strtoull(argv[4], nullptr, 10) : 1000000;
  const std::string phase = argc > 5 ? argv[5] : "all";
  auto wanted = [&](const char* name) { return phase == "all" || phase == name; };

  std::printf("proxy benchmark: %llu x %zu-byte msgs, %d workers, window %zu, spool under %s\n",
              (unsigned long long)count, kPayload, workers, kWindow, parent.c_str());
  double raw = 0;
  if (wanted("raw") || phase == "all") {
    raw = raw_dealer_router(count * 2, kWindow);
    std::printf("raw DEALER/ROUTER, one ack per msg, %zu in flight: %.0f msgs/s\n", kWindow, raw);
  }
  for (const char* fsync : {"never", "always"}) {
    if (wanted("stream")) {
      const double s = stream(parent, fsync, count, workers);
      std::printf("proxy stream, fsync %-6s: %.0f msgs/s end to end", fsync, s);
      if (raw > 0) std::printf(" (%.2f of raw)", s / raw);
      std::printf("\n");
    }
    if (wanted("backlog")) {
      const auto [in, out] = backlog(parent, fsync, count, workers);
      std::printf("proxy backlog, fsync %-6s: publish %.0f msgs/s, drain %.0f msgs/s\n", fsync, in,
                  out);
    }
  }
  if (wanted("latency")) latency(parent, 10000, 30000);
  if (wanted("memory") && pending > 0) memory(parent, pending);
  return 0;
}
