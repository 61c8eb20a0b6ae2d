// Producer and Worker: a PUSH/PULL work queue over tcp loopback, fan-in,
// raw-frame interop, bad input and clean stops.
#include <catch2/catch.hpp>
#include <zmq.hpp>

#include <set>
#include <thread>

#include "mqkit/error.hpp"
#include "mqkit/producer.hpp"
#include "mqkit/worker.hpp"

using namespace std::chrono_literals;

TEST_CASE("a worker receives what a producer sends, envelope and all", "[pipeline]") {
  mqkit::Worker worker(mqkit::bind("tcp://127.0.0.1:*"));
  mqkit::Producer producer(mqkit::connect(worker.last_endpoint()));
  const auto id = producer.send("jobs.resize", "image-1");
  const auto m = worker.receive(5s);
  REQUIRE(m);
  CHECK(m->id() == id);
  CHECK(m->topic() == "jobs.resize");
  CHECK(m->payload() == "image-1");
  CHECK(m->envelope.attempt == 1);
  CHECK_FALSE(m->wrapped);
  CHECK(producer.sent() == 1);
  CHECK(worker.stats().received == 1);
}

TEST_CASE("headers and key set by the producer reach the worker", "[pipeline]") {
  mqkit::Worker worker(mqkit::bind("tcp://127.0.0.1:*"));
  mqkit::Producer producer(mqkit::connect(worker.last_endpoint()));
  auto e = mqkit::Envelope::make("t");
  e.headers["trace-id"] = "abc";
  e.key = "k1";
  producer.send(e, "p");
  const auto m = worker.receive(5s);
  REQUIRE(m);
  CHECK(m->envelope.headers.at("trace-id") == "abc");
  CHECK(m->envelope.key == "k1");
}

TEST_CASE("many producers feed one worker (fan-in)", "[pipeline]") {
  mqkit::Worker worker(mqkit::bind("tcp://127.0.0.1:*"));
  const auto ep = worker.last_endpoint();
  std::vector<std::thread> producers;
  for (int p = 0; p < 3; ++p)
    producers.emplace_back([ep, p] {
      mqkit::Producer producer(mqkit::connect(ep));
      for (int i = 0; i < 1000; ++i)
        (void)producer.send("t", std::to_string(p) + ":" + std::to_string(i));
    });
  std::set<std::string> seen;
  worker.run([&](const mqkit::Message& m) {
    seen.emplace(m.payload());
    if (seen.size() == 3000) worker.stop();
  });
  for (auto& t : producers) t.join();
  CHECK(seen.size() == 3000);
}

TEST_CASE("raw frames from a plain cppzmq peer are accepted and wrapped", "[pipeline][interop]") {
  mqkit::Worker worker(mqkit::bind("tcp://127.0.0.1:*"));
  zmq::context_t ctx;
  zmq::socket_t push(ctx, zmq::socket_type::push);
  push.connect(worker.last_endpoint());
  push.send(zmq::str_buffer("sensor.temp"), zmq::send_flags::sndmore);
  push.send(zmq::str_buffer("21.5"), zmq::send_flags::none);
  push.send(zmq::str_buffer("just a payload"), zmq::send_flags::none);

  const auto a = worker.receive(5s);
  const auto b = worker.receive(5s);
  REQUIRE(a);
  REQUIRE(b);
  CHECK(a->wrapped);
  CHECK(a->topic() == "sensor.temp");
  CHECK(a->payload() == "21.5");
  CHECK(b->topic().empty());
  CHECK(b->payload() == "just a payload");
  CHECK(a->id() != b->id());
  CHECK(worker.stats().wrapped == 2);
}

TEST_CASE("malformed messages are counted and skipped while the worker keeps going", "[pipeline]") {
  mqkit::Worker worker(mqkit::bind("tcp://127.0.0.1:*"));
  std::vector<std::string> drops;
  worker.on_drop([&](std::error_code, std::string_view detail) { drops.emplace_back(detail); });
  zmq::context_t ctx;
  zmq::socket_t push(ctx, zmq::socket_type::push);
  push.connect(worker.last_endpoint());
  push.send(zmq::str_buffer("a"), zmq::send_flags::sndmore);
  push.send(zmq::str_buffer("b"), zmq::send_flags::sndmore);
  push.send(zmq::str_buffer("c"), zmq::send_flags::none);  // three frames
  const std::string bad_version = std::string("t\0\xA3MQK\x09\x00\x80", 8);
  push.send(zmq::buffer(bad_version), zmq::send_flags::none);  // unknown major
  const std::string good = mqkit::encode(mqkit::Envelope::make("t"), "good");
  push.send(zmq::buffer(good), zmq::send_flags::none);

  const auto m = worker.receive(5s);
  REQUIRE(m);
  CHECK(m->payload() == "good");
  CHECK(worker.stats().malformed == 2);
  REQUIRE(drops.size() == 2);
  CHECK_THAT(drops[1], Catch::Contains("MQKIT-ENVELOPE-VERSION"));
}

TEST_CASE("a frame over the maximum message size never reaches the handler", "[pipeline]") {
  mqkit::SocketOptions options;
  options.limits.max_message_size = 1000;
  mqkit::Worker worker(mqkit::bind("tcp://127.0.0.1:*"), options);
  mqkit::Producer producer(mqkit::connect(worker.last_endpoint()));
  (void)producer.send("t", std::string(1001, 'x'));  // refused by the decoder
  CHECK_FALSE(worker.receive(300ms));
  CHECK(worker.stats().malformed == 1);
  (void)producer.send("t", std::string(200000, 'x'));  // refused by ZMQ_MAXMSGSIZE
  mqkit::Producer second(mqkit::connect(worker.last_endpoint()));
  (void)second.send("t", "fits");
  const auto m = worker.receive(5s);
  REQUIRE(m);
  CHECK(m->payload() == "fits");
}

TEST_CASE("stop() ends run() from another thread", "[pipeline]") {
  mqkit::Worker worker(mqkit::bind("tcp://127.0.0.1:*"));
  std::thread stopper([&] {
    std::this_thread::sleep_for(50ms);
    worker.stop();
  });
  worker.run([](const mqkit::Message&) {});
  stopper.join();
  CHECK_FALSE(worker.receive(0ms));
}

TEST_CASE("receive returns empty when nothing arrives in time", "[pipeline]") {
  mqkit::Worker worker(mqkit::bind("tcp://127.0.0.1:*"));
  CHECK_FALSE(worker.receive(20ms));
}

TEST_CASE("a send with no peer times out with a clear error", "[pipeline]") {
  mqkit::SocketOptions options;
  options.send_timeout = 50ms;
  options.send_hwm = 1;
  mqkit::Producer producer(mqkit::bind("tcp://127.0.0.1:*"), options);
  CHECK_THROWS_WITH(producer.send("t", "x"), Catch::Contains("no peer took the message"));
  CHECK_FALSE(producer.try_send("t", "x"));
}

TEST_CASE("endpoints that cannot be used are named in the error", "[pipeline]") {
  mqkit::Worker first(mqkit::bind("tcp://127.0.0.1:*"));
  const auto taken = first.last_endpoint();
  CHECK_THROWS_WITH(mqkit::Worker(mqkit::bind(taken)),
                    Catch::Contains(taken) && Catch::Contains("Address already in use"));
  CHECK_THROWS_WITH(mqkit::Worker(mqkit::bind("tcp://127.0.0.1:70000")),
                    Catch::Contains("1-65535"));
  CHECK_THROWS_WITH(mqkit::Producer(mqkit::connect("nonsense")), Catch::Contains("nonsense"));
}
