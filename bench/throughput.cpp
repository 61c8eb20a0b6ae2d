// Throughput of mqkit's patterns against raw libzmq, side by side in one run:
// the same payload sizes and counts, tcp loopback, one process. Raw means
// plain cppzmq sockets moving the payload as one frame; mqkit means the same
// payloads through Producer/Worker and Publisher/Subscriber, envelope
// included. Fan-out is lossless on both sides (XPUB_NODROP), as mqkit runs it.
//
// Each figure is the median of `runs` runs, raw and mqkit alternating, so
// that drift on a noisy machine hits both sides alike.
//
// usage: mqkit_bench_throughput [count] [subscribers] [hwm] [runs]
#include <zmq.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "bench_support.hpp"
#include "mqkit/mqkit.hpp"

namespace {

using Clock = std::chrono::steady_clock;
int g_hwm = 1000;  // applied to raw and mqkit sockets alike

mqkit::SocketOptions socket_options() {
  mqkit::SocketOptions o;
  o.send_hwm = o.receive_hwm = g_hwm;
  return o;
}

void set_hwm(zmq::socket_t& s) {
  s.set(zmq::sockopt::sndhwm, g_hwm);
  s.set(zmq::sockopt::rcvhwm, g_hwm);
}

double rate(std::uint64_t n, Clock::time_point start, Clock::time_point end) {
  return double(n) / std::chrono::duration<double>(end - start).count();
}

double mqkit_work_queue(std::size_t size, std::uint64_t count) {
  mqkit::Worker worker(mqkit::bind("tcp://127.0.0.1:*"), socket_options());
  const std::string ep = worker.last_endpoint();
  std::thread producer_thread([&] {
    mqkit::Producer producer(mqkit::connect(ep), socket_options());
    const std::string payload(size, 'x');
    for (std::uint64_t i = 0; i < count; ++i) (void)producer.send("bench.work", payload);
  });
  std::uint64_t seen = 0;
  Clock::time_point start;
  worker.run([&](const mqkit::Message&) {
    if (seen++ == 0) start = Clock::now();
    if (seen == count) worker.stop();
  });
  const auto end = Clock::now();
  producer_thread.join();
  return rate(count - 1, start, end);
}

// One publisher, `subscribers` subscribers; returns messages/s per subscriber.
double raw_pub_sub(std::size_t size, std::uint64_t count, int subscribers) {
  zmq::context_t ctx;
  zmq::socket_t pub(ctx, zmq::socket_type::xpub);
  pub.set(zmq::sockopt::xpub_nodrop, true);
  set_hwm(pub);
  pub.bind("tcp://127.0.0.1:*");
  const std::string ep = pub.get(zmq::sockopt::last_endpoint);
  std::vector<double> rates(subscribers);
  std::vector<std::thread> threads;
  std::atomic<int> ready{0};
  for (int s = 0; s < subscribers; ++s)
    threads.emplace_back([&, s] {
      zmq::socket_t sub(ctx, zmq::socket_type::sub);
      set_hwm(sub);
      sub.set(zmq::sockopt::subscribe, "");
      sub.connect(ep);
      ++ready;
      zmq::message_t m;
      (void)sub.recv(m);
      const auto start = Clock::now();
      for (std::uint64_t i = 1; i < count; ++i) (void)sub.recv(m);
      rates[s] = rate(count - 1, start, Clock::now());
    });
  // Wait until every subscription has arrived (XPUB passes the first only,
  // so count connections through verbose mode).
  pub.set(zmq::sockopt::xpub_verbose, true);
  zmq::message_t m;
  for (int seen = 0; seen < subscribers;) {
    (void)pub.recv(m);
    ++seen;
  }
  const std::string payload(size, 'x');
  for (std::uint64_t i = 0; i < count; ++i)
    (void)pub.send(zmq::buffer(payload), zmq::send_flags::none);
  for (auto& t : threads) t.join();
  double sum = 0;
  for (double r : rates) sum += r;
  return sum / subscribers;
}

double mqkit_fan_out(std::size_t size, std::uint64_t count, int subscribers) {
  mqkit::Publisher publisher(mqkit::bind("tcp://127.0.0.1:*"), {socket_options(), false});
  const std::string ep = publisher.last_endpoint();
  std::vector<double> rates(subscribers);
  std::vector<std::thread> threads;
  std::atomic<int> connected{0};
  for (int s = 0; s < subscribers; ++s)
    threads.emplace_back([&, s] {
      // "" as on the raw side: both sides subscribe to everything, so the
      // comparison measures mqkit's overhead, not prefix filtering.
      mqkit::Subscriber subscriber(mqkit::connect(ep), {""}, socket_options());
      ++connected;
      std::uint64_t seen = 0;
      Clock::time_point start;
      subscriber.run([&](const mqkit::Message&) {
        if (seen++ == 0) start = Clock::now();
        if (seen == count) subscriber.stop();
      });
      rates[s] = rate(count - 1, start, Clock::now());
    });
  // Every subscriber's subscription must have reached us: the publisher sees
  // the first; give the others the same handshake time, bounded.
  while (connected < subscribers) std::this_thread::yield();
  (void)publisher.wait_for_subscriber("bench.fan", std::chrono::seconds(5));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const std::string payload(size, 'x');
  for (std::uint64_t i = 0; i < count; ++i) (void)publisher.send("bench.fan", payload);
  for (auto& t : threads) t.join();
  double sum = 0;
  for (double r : rates) sum += r;
  return sum / subscribers;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void row(const char* pattern, std::size_t size, double raw, double ours, double target) {
  std::printf("%-22s %6zu B  raw %10.0f msg/s  mqkit %10.0f msg/s  ratio %.2f  (target >= %.2f)\n",
              pattern, size, raw, ours, ours / raw, target);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  const std::uint64_t count = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1'000'000;
  const int subscribers = argc > 2 ? std::atoi(argv[2]) : 2;
  if (argc > 3) g_hwm = std::atoi(argv[3]);
  const int runs = argc > 4 ? std::max(1, std::atoi(argv[4])) : 3;
  std::printf(
      "mqkit throughput vs raw libzmq, %llu messages per run, median of %d alternating runs, tcp "
      "loopback, fan-out to %d subscribers (msg/s per subscriber), HWM %d on both\n",
      static_cast<unsigned long long>(count), runs, subscribers, g_hwm);
  for (const std::size_t size : {std::size_t(100), std::size_t(1024)}) {
    const double target = size >= 1024 ? 0.9 : 0.7;
    std::vector<double> raw_q, our_q, raw_f, our_f;
    for (int r = 0; r < runs; ++r) {
      raw_q.push_back(mqkit::bench::raw_push_pull(count, size, g_hwm));
      our_q.push_back(mqkit_work_queue(size, count));
    }
    row("work queue PUSH/PULL", size, median(raw_q), median(our_q), target);
    for (int r = 0; r < runs; ++r) {
      raw_f.push_back(raw_pub_sub(size, count, subscribers));
      our_f.push_back(mqkit_fan_out(size, count, subscribers));
    }
    row("fan-out PUB/SUB", size, median(raw_f), median(our_f), target);
  }
  return 0;
}
