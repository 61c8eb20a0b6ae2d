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
//   scheduled  `pending` messages scheduled evenly over the 100 s after all
//            are stored: RSS per scheduled message (compare with memory),
//            then how late each reaches a worker (wall clock), p50 / p99.
//
// usage: mqkit_bench_proxy [count] [workers] [spool-parent-dir] [pending-for-rss] [phase]
//   phase: all (default), raw, stream, backlog, latency, memory, scheduled
#include <zmq.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <string>

#include "bench_support.hpp"
#include "device_support.hpp"
#include "mqkit/devices/proxy.hpp"
#include "mqkit/mqkit.hpp"

namespace {

using namespace mqkit::bench;
namespace fs = std::filesystem;

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

double stream(const fs::path& parent, const std::string& fsync, std::uint64_t count, int workers) {
  ProxyBench b(parent, fsync);
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
  ProxyBench b(parent, fsync);
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
  const auto l = proxy_latency(parent, "always", rate, count);
  std::printf(
      "latency at %.0f msgs/s, fsync always, %llu msgs: publish->confirm p50 %.0f us p99 %.0f us; "
      "publish->handler p50 %.0f us p99 %.0f us\n",
      rate, (unsigned long long)count, percentile(l.to_confirm, 0.5),
      percentile(l.to_confirm, 0.99), percentile(l.to_delivery, 0.5),
      percentile(l.to_delivery, 0.99));
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
  ProxyBench b(parent, "never");
  produce(b.proxy->in_endpoint(), pending);
  const long after = rss_kib();
  std::printf("memory: %llu pending 100-byte messages: RSS %ld MiB -> %ld MiB (%.0f bytes/msg)\n",
              (unsigned long long)pending, before / 1024, after / 1024,
              double(after - before) * 1024.0 / double(pending));
}

std::uint64_t wall_us() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

void scheduled(const fs::path& parent, std::uint64_t count, int workers) {
  constexpr std::uint64_t kSpreadMs = 100000;  // due evenly over 100 s
  constexpr std::uint64_t kLeadMs = 30000;     // the first is due once all are stored
  const long before = rss_kib();
  ProxyBench b(parent, "never");
  const std::uint64_t first_due = wall_us() / 1000 + kLeadMs;
  produce(b.proxy->in_endpoint(), count, [&](std::uint64_t i, mqkit::Envelope& e) {
    e.not_before = first_due + i * kSpreadMs / count;
  });
  const long after = rss_kib();
  const std::uint64_t stored_at = wall_us() / 1000;
  std::printf(
      "scheduled: %llu 100-byte messages due over %llu s: RSS %ld MiB -> %ld MiB (%.0f bytes/msg)"
      "%s\n",
      (unsigned long long)count, (unsigned long long)(kSpreadMs / 1000), before / 1024,
      after / 1024, double(after - before) * 1024.0 / double(count),
      stored_at > first_due ? " (warning: some fell due while storing)" : "");
  std::mutex mutex;
  std::vector<double> late_ms;
  late_ms.reserve(count);
  std::uint64_t early = 0;
  Consumers consumers(b.proxy->out_endpoint(), workers, count, [&](const mqkit::Message& m) {
    const std::uint64_t now = wall_us();
    const std::uint64_t due = m.envelope.not_before * 1000;
    std::lock_guard lock(mutex);
    if (now < due) ++early;
    late_ms.push_back(now < due ? 0.0 : double(now - due) / 1000.0);
  });
  consumers.join(std::chrono::seconds(kLeadMs / 1000 + kSpreadMs / 1000 + 120));
  std::lock_guard lock(mutex);
  std::printf(
      "scheduled: %zu delivered, %llu early; lateness p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
      late_ms.size(), (unsigned long long)early, percentile(late_ms, 0.5),
      percentile(late_ms, 0.99), percentile(late_ms, 1.0));
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
  if (phase == "scheduled" && pending > 0) scheduled(parent, pending, workers);
  return 0;
}
