// How the device benchmarks start the proxy and the stream in a scratch
// directory, drive their workers and readers, and measure publish -> confirm
// at a fixed rate: shared by proxy_bench, stream_device_bench and
// latency_bench, so each reports the same measurement.
#pragma once

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench_support.hpp"
#include "mqkit/devices/proxy.hpp"
#include "mqkit/devices/stream.hpp"
#include "mqkit/mqkit.hpp"
#include "run_profile.hpp"

namespace mqkit::bench {

// A proxy with one group "work" (every topic) and its spool under
// parent/mqkit-proxy-bench-PID, removed again by the destructor.
struct ProxyBench {
  std::filesystem::path dir;
  mqkit::devices::ProxyOptions options;
  std::unique_ptr<mqkit::devices::Proxy> proxy;

  ProxyBench(const std::filesystem::path& parent, const std::string& fsync) {
    dir = parent / ("mqkit-proxy-bench-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    options.front = options.back = "tcp://127.0.0.1:*";
    options.spool_dir = (dir / "spool").string();
    mqkit::parse_durability(fsync, options.spool);
    options.groups = {{"work", {"#"}}};
    // The frame cache's budget (default 64 MiB): with 0, the memory phase
    // measures the index alone, and the difference is the cache.
    if (const char* budget = std::getenv("MQKIT_BENCH_FRAME_MEMORY"))
      options.frame_memory = std::strtoull(budget, nullptr, 10);
    proxy = std::make_unique<mqkit::devices::Proxy>(options);
    proxy->start();
  }
  ~ProxyBench() {
    proxy.reset();
    std::filesystem::remove_all(dir);
  }
};

// A stream with one partition under parent/mqkit-stream-bench-PID, removed
// again by the destructor.
struct StreamBench {
  std::filesystem::path dir;
  std::unique_ptr<mqkit::devices::Stream> stream;

  StreamBench(const std::filesystem::path& parent, mqkit::Durability durability) {
    dir = parent / ("mqkit-stream-bench-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    mqkit::devices::StreamOptions o;
    o.front = o.back = "tcp://127.0.0.1:*";
    o.dir = dir.string();
    o.log.durability = durability;
    stream = std::make_unique<mqkit::devices::Stream>(o);
    stream->start();
  }
  ~StreamBench() {
    stream.reset();
    std::filesystem::remove_all(dir);
  }
};

// Runs `workers` consumers of the group "work" until `count` acks in total.
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
  // Waits until `count` acks, or `limit` (then stops the consumers short).
  void join(std::chrono::seconds limit = std::chrono::seconds(600)) {
    const auto deadline = Clock::now() + limit;
    while (acked_ < count_ && Clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    for (auto& c : consumers_) c->stop();
    for (auto& t : threads_) t.join();
  }
  std::uint64_t acked() const noexcept { return acked_; }

 private:
  std::uint64_t count_;
  std::function<void(const mqkit::Message&)> on_message_;
  std::atomic<std::uint64_t> acked_{0};
  std::vector<std::unique_ptr<mqkit::ReliableConsumer>> consumers_;
  std::vector<std::thread> threads_;
};

// One latency run, in microseconds per message.
struct Latencies {
  std::vector<double> to_confirm;   // publish -> confirm
  std::vector<double> to_delivery;  // publish -> worker's handler (proxy) or reader (stream)
  RunProfile profile;               // while publishing
};

// Publishes `count` messages at `rate`/s through a proxy (fsync policy
// `fsync`) with one worker attached (publish_paced: no batching delay).
inline Latencies proxy_latency(const std::filesystem::path& parent, const std::string& fsync,
                               double rate, std::uint64_t count) {
  ProxyBench b(parent, fsync);
  Latencies out;
  std::mutex handler_mutex;
  out.to_delivery.reserve(count);
  Consumers consumers(b.proxy->out_endpoint(), 1, count, [&](const mqkit::Message& m) {
    const auto sent = std::stoll(std::string(m.envelope.headers.at("sent_us")));
    std::lock_guard lock(handler_mutex);
    out.to_delivery.push_back(double(now_us() - sent));
  });
  mqkit::ReliableProducer producer(b.proxy->in_endpoint());
  const auto before = ProfileSnapshot::take();
  out.to_confirm = publish_paced(producer, rate, count);
  out.profile = RunProfile::since(before);
  consumers.join(std::chrono::seconds(30));
  std::lock_guard lock(handler_mutex);
  return out;
}

// Appends `count` records at `rate`/s to a one-partition stream with the
// given durability, with one reader from `latest` attached.
inline Latencies stream_latency(const std::filesystem::path& parent, mqkit::Durability durability,
                                double rate, std::uint64_t count) {
  StreamBench b(parent, durability);
  Latencies out;
  out.to_delivery.reserve(count);
  std::mutex reader_mutex;
  std::atomic<std::uint64_t> seen{0};
  mqkit::StreamConsumer reader(b.stream->out_endpoint(), {.from = "latest", .window = 1000});
  std::thread reading([&] {
    reader.run([&](const mqkit::StreamEntry& e) {
      const auto sent = std::stoll(std::string(e.message.envelope.headers.at("sent_us")));
      std::lock_guard lock(reader_mutex);
      out.to_delivery.push_back(double(now_us() - sent));
      if (++seen >= count) reader.stop();
    });
  });
  mqkit::ReliableProducer producer(b.stream->in_endpoint());
  const auto before = ProfileSnapshot::take();
  out.to_confirm = publish_paced(producer, rate, count);
  out.profile = RunProfile::since(before);
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  while (seen < count && Clock::now() < deadline)  // bounded
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  reader.stop();
  reading.join();
  std::lock_guard lock(reader_mutex);
  return out;
}

}  // namespace mqkit::bench
