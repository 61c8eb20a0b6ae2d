// Bridges in process: one stops in a bounded time from library code even
// while its target is down; one from a stream reports a record its target
// refuses for good, and holds its position there.
#include <catch2/catch.hpp>
#include <zmq.hpp>

#include <future>
#include <memory>
#include <thread>

#include "helpers.hpp"
#include "mqkit/devices/bridge.hpp"
#include "mqkit/devices/forwarder.hpp"
#include "mqkit/devices/proxy.hpp"
#include "mqkit/devices/stream.hpp"
#include "mqkit/publisher.hpp"
#include "mqkit/reliable_producer.hpp"

using namespace std::chrono_literals;
namespace md = mqkit::devices;
using mqkit::test::wait_for;

namespace {

// A loopback endpoint where nothing listens (its port was free a moment ago).
std::string nobody_there() {
  zmq::context_t ctx;
  zmq::socket_t probe(ctx, zmq::socket_type::pull);
  probe.set(zmq::sockopt::linger, 0);
  probe.bind("tcp://127.0.0.1:*");
  return probe.get(zmq::sockopt::last_endpoint);
}

}  // namespace

TEST_CASE("a bridge whose target is down stops within a bounded time and stops bridging",
          "[bridge]") {
  md::Forwarder forwarder({"tcp://127.0.0.1:*", "tcp://127.0.0.1:*", {}, {}});
  forwarder.start();
  md::BridgeOptions o;
  o.source = md::BridgeOptions::Source::forwarder;
  o.from = forwarder.out_endpoint();
  o.to = nobody_there();
  auto bridge = std::make_shared<md::Bridge>(o);
  bridge->start();
  mqkit::Publisher publisher(mqkit::connect(forwarder.in_endpoint()));
  // Until the bridge holds one: a subscriber joins late (slow joiner).
  REQUIRE(wait_for([&] {
    (void)publisher.send("t", "held");
    return forwarder.stats().get("out") >= 1;
  }));
  // Stopped and destroyed on a thread of its own, so a hang fails the test
  // instead of hanging it (the thread is left behind then).
  auto stopped = std::make_shared<std::promise<void>>();
  auto done = stopped->get_future();
  std::thread([bridge = std::move(bridge), stopped]() mutable {
    bridge->stop();
    bridge.reset();
    stopped->set_value();
  }).detach();
  CHECK(done.wait_for(15s) == std::future_status::ready);
}

TEST_CASE("a stream bridge reports a record its target refuses for good and keeps its position",
          "[bridge]") {
  mqkit::test::TempDir dir;
  md::StreamOptions so;
  so.front = so.back = "tcp://127.0.0.1:*";
  so.dir = dir.file("log");
  md::Stream stream(so);
  stream.start();
  {
    mqkit::ReliableProducer producer(stream.in_endpoint());
    REQUIRE(producer.send("nobody.wants.this", "x").ok());
  }
  md::ProxyOptions po;  // no group matches: it answers unroutable
  po.front = po.back = "tcp://127.0.0.1:*";
  po.spool_dir = dir.file("spool");
  md::Proxy proxy(po);
  proxy.start();
  md::BridgeOptions o;
  o.source = md::BridgeOptions::Source::stream;
  o.from = stream.out_endpoint();
  o.name = "feed";
  o.to = proxy.in_endpoint();
  md::Bridge bridge(o);
  bridge.start();
  CHECK(wait_for([&] { return bridge.stats().get("stalled_on_refusal") == 1; }, 30s));
  CHECK(bridge.stats().get("refused_by_target") >= 3);
  CHECK(bridge.stats().get("bridged") == 0);
}
