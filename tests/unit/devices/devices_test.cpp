// Streamer and Forwarder as in-process devices: forwarding, stats, garbage.
#include <catch2/catch.hpp>
#include <zmq.hpp>

#include <pthread.h>

#include <csignal>
#include <set>
#include <thread>

#include "helpers.hpp"
#include "mqkit/devices/forwarder.hpp"
#include "mqkit/devices/streamer.hpp"
#include "mqkit/error.hpp"
#include "mqkit/producer.hpp"
#include "mqkit/publisher.hpp"
#include "mqkit/subscriber.hpp"
#include "mqkit/worker.hpp"
#include "stats_protocol.hpp"

using namespace std::chrono_literals;
namespace md = mqkit::devices;

namespace {
md::DeviceOptions loopback_options() {
  return {"tcp://127.0.0.1:*", "tcp://127.0.0.1:*", "tcp://127.0.0.1:*", {}};
}
}  // namespace

TEST_CASE("a streamer spreads messages over its workers, each once", "[devices]") {
  md::Streamer streamer(loopback_options());
  streamer.start();
  mqkit::Worker a(mqkit::connect(streamer.out_endpoint()));
  mqkit::Worker b(mqkit::connect(streamer.out_endpoint()));
  mqkit::Producer producer(mqkit::connect(streamer.in_endpoint()));
  for (int i = 0; i < 200; ++i) (void)producer.send("t", std::to_string(i));
  std::multiset<std::string> seen;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (seen.size() < 200 && std::chrono::steady_clock::now() < deadline)
    for (auto* worker : {&a, &b})
      if (auto m = worker->receive(10ms)) seen.emplace(m->payload());
  CHECK(seen.size() == 200);
  CHECK(std::set<std::string>(seen.begin(), seen.end()).size() == 200);
  const auto stats = md::query_stats(streamer.stats_endpoint());
  CHECK(stats.device == "streamer");
  CHECK(stats.get("in") == 200);
  CHECK(stats.get("out") == 200);
}

TEST_CASE("a forwarder passes subscriptions up and messages down", "[devices]") {
  md::Forwarder forwarder(loopback_options());
  forwarder.start();
  mqkit::Subscriber s1(mqkit::connect(forwarder.out_endpoint()), {"a."});
  mqkit::Subscriber s2(mqkit::connect(forwarder.out_endpoint()), {"a."});
  mqkit::Publisher publisher(mqkit::connect(forwarder.in_endpoint()));
  REQUIRE(publisher.wait_for_subscriber("a.x", 5s));
  // The second subscription is forwarded too (XPUB_VERBOSE).
  REQUIRE(mqkit::test::wait_for([&] { return forwarder.stats().get("subscriptions") >= 2; }));
  for (int i = 0; i < 100; ++i) (void)publisher.send("a.x", std::to_string(i));
  for (auto* s : {&s1, &s2}) {
    for (int i = 0; i < 100; ++i) {
      const auto m = s->receive(5s);
      REQUIRE(m);
      CHECK(m->payload() == std::to_string(i));
    }
  }
  CHECK(forwarder.stats().get("out") == 100);
}

TEST_CASE("devices pass garbage through and answer bad stats requests", "[devices]") {
  md::Streamer streamer(loopback_options());
  streamer.start();
  zmq::context_t ctx;
  zmq::socket_t push(ctx, zmq::socket_type::push);
  push.connect(streamer.in_endpoint());
  push.send(zmq::str_buffer("\x00\x01garbage"), zmq::send_flags::none);
  mqkit::Worker worker(mqkit::connect(streamer.out_endpoint()));
  const auto m = worker.receive(5s);
  REQUIRE(m);  // a raw frame, passed unchanged and wrapped by the worker
  CHECK(m->wrapped);

  zmq::socket_t req(ctx, zmq::socket_type::req);
  req.connect(streamer.stats_endpoint());
  req.send(zmq::str_buffer("not msgpack at all \xc1"), zmq::send_flags::none);
  zmq::message_t reply;
  REQUIRE(req.recv(reply));
  CHECK(streamer.stats().get("bad_stats_requests") == 1);
  CHECK(md::query_stats(streamer.stats_endpoint()).get("in") == 1);
}

TEST_CASE("a device that cannot bind names the endpoint", "[devices]") {
  md::Streamer first(loopback_options());
  auto options = loopback_options();
  options.out = first.out_endpoint();
  CHECK_THROWS_WITH(md::Streamer(options), Catch::Contains(first.out_endpoint()));
}

TEST_CASE("query_stats on an endpoint with no device times out clearly", "[devices]") {
  mqkit::Worker placeholder(mqkit::bind("tcp://127.0.0.1:*"));  // a port nobody answers on
  const auto ep = placeholder.last_endpoint();
  CHECK_THROWS_WITH(md::query_stats(ep, 100ms), Catch::Contains("no stats reply"));
}

TEST_CASE("a signal during a stats query does not end the wait: the late reply is read",
          "[devices]") {
  // A CLI with a SIGINT handler, or libFuzzer's SIGALRM watchdog: poll()
  // returns EINTR, which cppzmq throws. The query must wait on instead.
  struct sigaction quiet = {};
  struct sigaction before = {};
  quiet.sa_handler = [](int) {};
  sigemptyset(&quiet.sa_mask);
  REQUIRE(sigaction(SIGALRM, &quiet, &before) == 0);
  zmq::context_t context;
  zmq::socket_t slow_device(context, zmq::socket_type::rep);
  slow_device.bind("tcp://127.0.0.1:*");
  const auto endpoint = slow_device.get(zmq::sockopt::last_endpoint);
  const pthread_t asker = pthread_self();
  std::thread device([&] {
    zmq::message_t request;
    if (!slow_device.recv(request)) return;
    pthread_kill(asker, SIGALRM);  // while the asker waits for the reply
    std::this_thread::sleep_for(200ms);
    md::DeviceStats stats{"slow", {{"in", 7}}};
    slow_device.send(zmq::buffer(md::detail::encode_stats_reply(stats)), zmq::send_flags::none);
  });
  std::optional<md::DeviceStats> answer;
  std::string failure;
  try {
    answer = md::query_stats(endpoint, 5s);
  } catch (const std::exception& e) {
    failure = e.what();
  }
  device.join();
  sigaction(SIGALRM, &before, nullptr);
  INFO(failure);
  REQUIRE(answer.has_value());
  CHECK(answer->device == "slow");
  CHECK(answer->get("in") == 7);
}
