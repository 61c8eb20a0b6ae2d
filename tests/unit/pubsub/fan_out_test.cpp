// Publisher and Subscriber: prefix filters, waiting for subscribers,
// lossless delivery, counted drops and raw-frame interop.
#include <catch2/catch.hpp>
#include <zmq.hpp>

#include <thread>

#include "helpers.hpp"
#include "mqkit/publisher.hpp"
#include "mqkit/subscriber.hpp"

using namespace std::chrono_literals;

TEST_CASE("every subscriber gets every message whose topic matches its prefix", "[pubsub]") {
  mqkit::Publisher publisher(mqkit::bind("tcp://127.0.0.1:*"));
  const auto ep = publisher.last_endpoint();
  // One at a time, so that each wait sees exactly that subscriber's prefix.
  mqkit::Subscriber orders(mqkit::connect(ep), {"order."});
  REQUIRE(publisher.wait_for_subscriber("order.created", 5s));
  mqkit::Subscriber everything(mqkit::connect(ep), {""});
  REQUIRE(publisher.wait_for_subscriber("user.signup", 5s));
  (void)publisher.send("order.created", "o1");
  (void)publisher.send("user.signup", "u1");
  const auto o = orders.receive(5s);
  REQUIRE(o);
  CHECK(o->payload() == "o1");
  CHECK_FALSE(orders.receive(100ms));  // user.signup does not match "order."
  const auto e1 = everything.receive(5s);
  const auto e2 = everything.receive(5s);
  REQUIRE(e1);
  REQUIRE(e2);
  CHECK(e1->payload() == "o1");
  CHECK(e2->payload() == "u1");
}

TEST_CASE("wait_for_subscriber times out when nobody subscribed to the topic", "[pubsub]") {
  mqkit::Publisher publisher(mqkit::bind("tcp://127.0.0.1:*"));
  mqkit::Subscriber other(mqkit::connect(publisher.last_endpoint()), {"billing."});
  CHECK(publisher.wait_for_subscriber("billing.paid", 5s));
  CHECK_FALSE(publisher.wait_for_subscriber("email.sent", 100ms));
}

TEST_CASE("a subscriber that unsubscribes stops getting the topic, and the publisher sees it go",
          "[pubsub]") {
  mqkit::Publisher publisher(mqkit::bind("tcp://127.0.0.1:*"));
  mqkit::Subscriber subscriber(mqkit::connect(publisher.last_endpoint()), {"billing."});
  REQUIRE(publisher.wait_for_subscriber("billing.paid", 5s));
  subscriber.unsubscribe("billing.");
  subscriber.subscribe("order.");
  REQUIRE(publisher.wait_for_subscriber("order.created", 5s));
  // The unsubscribe was sent before the subscribe: it has arrived too.
  CHECK_FALSE(publisher.wait_for_subscriber("billing.paid", 100ms));
  (void)publisher.send("billing.paid", "b1");
  (void)publisher.send("order.created", "o1");
  const auto got = subscriber.receive(5s);
  REQUIRE(got);
  CHECK(got->payload() == "o1");
  CHECK_FALSE(subscriber.receive(100ms));
}

TEST_CASE("a lossless publisher delivers everything to a slow subscriber", "[pubsub]") {
  mqkit::SocketOptions small;
  small.send_hwm = small.receive_hwm = 10;
  mqkit::Publisher publisher(mqkit::bind("tcp://127.0.0.1:*"), {small, false});
  mqkit::Subscriber subscriber(mqkit::connect(publisher.last_endpoint()), {""}, small);
  REQUIRE(publisher.wait_for_subscriber("t", 5s));
  std::thread sender([&] {
    for (int i = 0; i < 5000; ++i) (void)publisher.send("t", std::to_string(i));
  });
  int expected = 0;
  subscriber.run([&](const mqkit::Message& m) {
    CHECK(m.payload() == std::to_string(expected));
    if (++expected == 5000) subscriber.stop();
  });
  sender.join();
  CHECK(expected == 5000);
  CHECK(publisher.dropped() == 0);
}

TEST_CASE("a publisher in drop mode counts what a full subscriber missed", "[pubsub]") {
  mqkit::SocketOptions tiny;
  tiny.send_hwm = tiny.receive_hwm = 1;
  const auto ep = mqkit::test::unique_inproc();  // inproc: no TCP buffers to hide the HWM
  mqkit::Publisher publisher(mqkit::bind(ep), {tiny, /*drop_when_full=*/true});
  mqkit::Subscriber idle(mqkit::connect(ep), {""}, tiny);
  REQUIRE(publisher.wait_for_subscriber("t", 5s));
  int sent = 0;
  for (int i = 0; i < 100; ++i) sent += publisher.send("t", "x").has_value();
  CHECK(publisher.dropped() > 0);
  CHECK(publisher.dropped() + static_cast<std::uint64_t>(sent) == 100);
}

TEST_CASE("raw [topic][payload] from a plain cppzmq publisher is filtered and wrapped",
          "[pubsub][interop]") {
  zmq::context_t ctx;
  zmq::socket_t pub(ctx, zmq::socket_type::xpub);
  pub.bind("tcp://127.0.0.1:*");
  mqkit::Subscriber subscriber(mqkit::connect(pub.get(zmq::sockopt::last_endpoint)), {"weather."});
  zmq::message_t subscription;
  REQUIRE(pub.recv(subscription));  // the subscription has arrived
  pub.send(zmq::str_buffer("sports.score"), zmq::send_flags::sndmore);
  pub.send(zmq::str_buffer("3-1"), zmq::send_flags::none);
  pub.send(zmq::str_buffer("weather.oslo"), zmq::send_flags::sndmore);
  pub.send(zmq::str_buffer("-4C"), zmq::send_flags::none);
  const auto m = subscriber.receive(5s);
  REQUIRE(m);
  CHECK(m->wrapped);
  CHECK(m->topic() == "weather.oslo");
  CHECK(m->payload() == "-4C");
}
