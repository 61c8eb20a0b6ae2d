// The stream device end to end against the raw libzmq ceiling, in one run
// on one machine (tcp loopback, one process, 100-byte payloads):
//
//   raw      DEALER -> ROUTER with one ack per message (the append ceiling)
//            and PUSH -> PULL (the read ceiling).
//   append   ReliableProducer -> Stream (one partition), every record
//            confirmed, per --fsync policy (group commit under `always`).
//   backlog  `count` records already in the log, read from earliest by one
//            StreamConsumer (window 10,000).
//   latency  append at a fixed rate with fsync always: publish -> confirm and
//            publish -> reader (a reader from latest), p50 / p99.
//   bridge   a proxy group bridged into a stream (fsync always on both): the
//            rate at which the stream's reader sees the proxy's messages.
//
// usage: mqkit_bench_stream_device [count] [log-parent-dir] [phase]
//   phase: all (default), raw, append, backlog, latency, bridge
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>

#include "bench_support.hpp"
#include "device_support.hpp"
#include "mqkit/devices/bridge.hpp"
#include "mqkit/devices/proxy.hpp"
#include "mqkit/devices/stream.hpp"
#include "mqkit/mqkit.hpp"

namespace {

using namespace mqkit::bench;
namespace fs = std::filesystem;

double append(const std::string& front, std::uint64_t count) {
  mqkit::ReliableProducerOptions o;
  o.window = kWindow;
  mqkit::ReliableProducer producer(front, o);
  const std::string payload(kPayload, 'x');
  std::uint64_t failed = 0;
  const auto start = Clock::now();
  for (std::uint64_t i = 0; i < count; ++i)
    producer.send_async(mqkit::Envelope::make("bench"), payload,
                        [&](const mqkit::PublishResult& r) { failed += !r.ok(); });
  producer.flush(std::chrono::seconds(300));
  const double rate = double(count) / seconds(start, Clock::now());
  if (failed > 0)
    std::fprintf(stderr, "warning: %llu appends failed\n", (unsigned long long)failed);
  return rate;
}

double read_backlog(const std::string& back, std::uint64_t count) {
  mqkit::StreamConsumer reader(back, {.from = "earliest", .window = 10000});
  std::uint64_t read = 0, bytes = 0;
  const auto start = Clock::now();
  reader.run([&](const mqkit::StreamEntry& e) {
    bytes += e.message.payload().size();
    if (++read >= count) reader.stop();
  });
  const double rate = double(read) / seconds(start, Clock::now());
  if (bytes != read * kPayload) std::fprintf(stderr, "warning: payload bytes do not add up\n");
  return rate;
}

void latency(const fs::path& parent, double rate, std::uint64_t count) {
  const auto l = stream_latency(parent, mqkit::Durability::always, rate, count);
  std::printf(
      "latency at %.0f records/s, fsync always, %llu records: publish->confirm p50 %.0f us p99 "
      "%.0f us; publish->reader p50 %.0f us p99 %.0f us\n",
      rate, (unsigned long long)count, percentile(l.to_confirm, 0.5),
      percentile(l.to_confirm, 0.99), percentile(l.to_delivery, 0.5),
      percentile(l.to_delivery, 0.99));
}

// Messages published to a proxy first, then moved by a bridge into the
// stream: records/s from the bridge's start until the stream holds them all.
double bridge(const fs::path& parent, std::uint64_t count) {
  StreamBench b(parent, mqkit::Durability::always);
  mqkit::devices::ProxyOptions po;
  po.front = po.back = "tcp://127.0.0.1:*";
  po.spool_dir = (b.dir / "spool").string();
  po.groups = {{"audit", {"#"}}};
  mqkit::devices::Proxy proxy(po);
  proxy.start();
  append(proxy.in_endpoint(), count);
  mqkit::devices::BridgeOptions bo;
  bo.from = proxy.out_endpoint();
  bo.name = "audit";
  bo.to = b.stream->in_endpoint();
  const auto start = Clock::now();
  mqkit::devices::Bridge moving(bo);
  moving.start();
  while (b.stream->stats().get("appended") < count &&
         seconds(start, Clock::now()) < 600)  // bounded
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  return double(b.stream->stats().get("appended")) / seconds(start, Clock::now());
}

}  // namespace

int main(int argc, char** argv) {
  const std::uint64_t count = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1000000;
  const fs::path parent = argc > 2 ? fs::path(argv[2]) : fs::temp_directory_path();
  const std::string phase = argc > 3 ? argv[3] : "all";
  auto wanted = [&](const char* name) { return phase == "all" || phase == name; };

  std::printf("stream device benchmark: %llu x %zu-byte records, window %zu, logs under %s\n",
              (unsigned long long)count, kPayload, kWindow, parent.c_str());
  double raw_append = 0, raw_read = 0;
  if (wanted("raw")) {
    raw_append = raw_dealer_router(count, kWindow);
    raw_read = raw_push_pull(count);
    std::printf("raw DEALER/ROUTER, one ack per msg, %zu in flight: %.0f msgs/s\n", kWindow,
                raw_append);
    std::printf("raw PUSH/PULL: %.0f msgs/s\n", raw_read);
  }
  auto ratio = [](double x, double raw) {
    if (raw > 0) std::printf(" (%.2f of raw)", x / raw);
    std::printf("\n");
  };
  if (wanted("append") || wanted("backlog")) {
    for (const auto durability : {mqkit::Durability::never, mqkit::Durability::always}) {
      const char* name = durability == mqkit::Durability::always ? "always" : "never";
      StreamBench b(parent, durability);
      const double a = append(b.stream->in_endpoint(), count);
      std::printf("append, fsync %-6s: %.0f records/s confirmed", name, a);
      ratio(a, raw_append);
      if (wanted("backlog") && durability == mqkit::Durability::never) {
        const double r = read_backlog(b.stream->out_endpoint(), count);
        std::printf("backlog read from earliest: %.0f records/s", r);
        ratio(r, raw_read);
      }
    }
  }
  if (wanted("latency")) latency(parent, 10000, 30000);
  if (wanted("bridge")) {
    const std::uint64_t n = std::min<std::uint64_t>(count, 20000);
    std::printf("bridge proxy group -> stream, fsync always, %llu msgs: %.0f msgs/s\n",
                (unsigned long long)n, bridge(parent, n));
  }
  return 0;
}
