// What the end-to-end benchmarks share: the raw libzmq ceiling they are
// compared with in the same run, clocks, percentiles and CPU time per thread.
#pragma once

#include <zmq.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "mqkit/reliable_producer.hpp"

namespace mqkit::bench {

using Clock = std::chrono::steady_clock;
inline constexpr std::size_t kPayload = 100;
inline const std::size_t kWindow =
    std::getenv("MQKIT_BENCH_WINDOW") ? std::strtoul(std::getenv("MQKIT_BENCH_WINDOW"), nullptr, 10)
                                      : 1000;

inline double seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

inline double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * double(v.size())))];
}

inline std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now().time_since_epoch())
      .count();
}

// DEALER -> ROUTER over tcp loopback, one ack frame back per message,
// `window` in flight: what two sockets do with no disk, no envelope, one hop.
inline double raw_dealer_router(std::uint64_t count, std::size_t window) {
  zmq::context_t ctx;
  zmq::socket_t router(ctx, zmq::socket_type::router);
  // A ROUTER drops what it cannot queue, and libzmq counts a pipe's room
  // lazily (every half high-water mark), so even 1,000 acks in flight can
  // meet a "full" pipe: block instead, or the bench waits for ever.
  router.set(zmq::sockopt::router_mandatory, true);
  router.bind("tcp://127.0.0.1:*");
  const std::string ep = router.get(zmq::sockopt::last_endpoint);
  std::thread echo([&] {
    zmq::message_t id, body;
    for (std::uint64_t i = 0; i < count; ++i) {
      (void)router.recv(id);
      (void)router.recv(body);
      (void)router.send(id, zmq::send_flags::sndmore);
      (void)router.send(zmq::buffer(body.data(), 17), zmq::send_flags::none);  // an ack
    }
  });
  zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
  dealer.connect(ep);
  const std::string payload(kPayload, 'x');
  std::uint64_t sent = 0, acked = 0;
  zmq::message_t ack;
  const auto start = Clock::now();
  while (acked < count) {
    while (sent < count && sent - acked < window) {
      (void)dealer.send(zmq::buffer(payload), zmq::send_flags::none);
      ++sent;
    }
    (void)dealer.recv(ack);
    ++acked;
    while (dealer.recv(ack, zmq::recv_flags::dontwait)) ++acked;
  }
  const double rate = double(count) / seconds(start, Clock::now());
  echo.join();
  return rate;
}

// PUSH -> PULL over tcp loopback, no acks: the most two sockets move, with
// `size`-byte messages and both high-water marks at `hwm`.
inline double raw_push_pull(std::uint64_t count, std::size_t size = kPayload, int hwm = 1000) {
  zmq::context_t ctx;
  zmq::socket_t pull(ctx, zmq::socket_type::pull);
  pull.set(zmq::sockopt::rcvhwm, hwm);
  pull.bind("tcp://127.0.0.1:*");
  const std::string ep = pull.get(zmq::sockopt::last_endpoint);
  std::thread pusher([&] {
    zmq::socket_t push(ctx, zmq::socket_type::push);
    push.set(zmq::sockopt::sndhwm, hwm);
    push.connect(ep);
    const std::string payload(size, 'x');
    for (std::uint64_t i = 0; i < count; ++i)
      (void)push.send(zmq::buffer(payload), zmq::send_flags::none);
  });
  zmq::message_t m;
  (void)pull.recv(m);
  const auto start = Clock::now();
  for (std::uint64_t i = 1; i < count; ++i) (void)pull.recv(m);
  const double rate = double(count - 1) / seconds(start, Clock::now());
  pusher.join();
  return rate;
}

// Publishes `count` 100-byte messages at `rate`/s, each sent at once (no
// batching delay) with its send time in the header `sent_us`; records
// publish -> confirm in microseconds.
inline std::vector<double> publish_paced(mqkit::ReliableProducer& producer, double rate,
                                         std::uint64_t count) {
  std::vector<double> to_confirm;
  to_confirm.reserve(count);
  const std::string payload(kPayload, 'x');
  const auto interval = std::chrono::duration<double>(1.0 / rate);
  const auto start = Clock::now();
  for (std::uint64_t i = 0; i < count; ++i) {
    std::this_thread::sleep_until(
        start + std::chrono::duration_cast<Clock::duration>(interval * double(i)));
    auto e = mqkit::Envelope::make("bench");
    const auto sent = now_us();
    e.headers["sent_us"] = std::to_string(sent);
    producer.send_async(e, payload, [&to_confirm, sent](const mqkit::PublishResult&) {
      to_confirm.push_back(double(now_us() - sent));
    });
    producer.flush(std::chrono::milliseconds(0));  // send now, take confirms that are in
  }
  producer.flush(std::chrono::seconds(30));
  return to_confirm;
}

// CPU seconds each live thread of this process used so far, by thread name
// (joined threads are gone from /proc: process_cpu() still counts them).
inline std::map<std::string, double> thread_cpu() {
  std::map<std::string, double> out;
  const double tick = double(::sysconf(_SC_CLK_TCK));
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm"), stat(task.path() / "stat");
    std::string name, text;
    std::getline(comm, name);
    std::getline(stat, text);
    const auto comm_end = text.rfind(')');
    if (comm_end == std::string::npos || comm_end + 2 > text.size()) continue;  // it just exited
    std::istringstream fields(text.substr(comm_end + 2));
    std::string skip;
    for (int i = 0; i < 11; ++i) fields >> skip;  // fields 3..13
    double utime = 0, stime = 0;
    fields >> utime >> stime;
    out[name] += (utime + stime) / tick;
  }
  return out;
}

inline double process_cpu() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  auto secs = [](const timeval& t) { return double(t.tv_sec) + double(t.tv_usec) / 1e6; };
  return secs(usage.ru_utime) + secs(usage.ru_stime);
}

}  // namespace mqkit::bench
