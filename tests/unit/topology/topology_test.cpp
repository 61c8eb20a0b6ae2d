// Topology files: what a valid one gives services and devices, and a clear
// FILE:LINE:COLUMN error for every kind of mistake.
#include <catch2/catch.hpp>

#include "helpers.hpp"
#include "mqkit/error.hpp"
#include "mqkit/topology.hpp"

using mqkit::Topology;

namespace {

const char* kValid = R"(
endpoints:
  orders: tcp://*:6555
  work:
    bind: tcp://0.0.0.0:6556
    connect: tcp://orders.internal:6556
devices:
  order-proxy:
    kind: proxy
    front: orders
    back: work
    stats: tcp://127.0.0.1:6557
    spool: data/spool
    fsync: interval=10ms
    max_attempts: 3
    ack_timeout: 5s
    backoff: fixed:100ms
    groups:
      email: order.#
      billing: [order.created, order.paid]
  jobs:
    kind: streamer
    in: tcp://*:6560
    out: tcp://*:6561
)";

// The error message for `yaml`, which must not load.
std::string error_of(const std::string& yaml) {
  try {
    (void)Topology::parse(yaml, "topo.yaml", "/srv/app");
  } catch (const mqkit::Error& e) {
    CHECK(e.code() == mqkit::errc::bad_argument);
    return e.what();
  }
  FAIL("loaded without an error:\n" << yaml);
  return {};
}

std::string with_proxy(const std::string& extra) {
  return "devices:\n  p:\n    kind: proxy\n    front: tcp://*:7001\n    back: tcp://*:7002\n"
         "    spool: s\n" +
         extra;
}

}  // namespace

TEST_CASE("a topology gives services connect addresses and devices their settings", "[topology]") {
  const auto topo = Topology::parse(kValid, "topo.yaml", "/srv/app");
  CHECK(topo.endpoint("orders") == "tcp://127.0.0.1:6555");
  CHECK(topo.endpoint_info("orders").bind == "tcp://*:6555");
  CHECK(topo.endpoint("work") == "tcp://orders.internal:6556");
  CHECK(topo.endpoint("order-proxy.stats") == "tcp://127.0.0.1:6557");
  CHECK(topo.endpoint("jobs.in") == "tcp://127.0.0.1:6560");
  REQUIRE(topo.devices().size() == 2);
  const auto& proxy = topo.devices()[0];
  CHECK(proxy.name == "order-proxy");
  CHECK(proxy.kind == "proxy");
  CHECK(proxy.proxy.spool_dir == "/srv/app/data/spool");
  CHECK(proxy.proxy.spool.durability == mqkit::Durability::interval);
  CHECK(proxy.proxy.spool.sync_interval == std::chrono::milliseconds(10));
  CHECK(proxy.proxy.retry.max_attempts == 3);
  CHECK(proxy.proxy.retry.to_string() == "fixed:100ms");
  CHECK(proxy.proxy.ack_timeout == std::chrono::seconds(5));
  CHECK(proxy.endpoints.at("front") == "orders");
  CHECK(proxy.proxy.groups.at("billing") ==
        std::vector<std::string>{"order.created", "order.paid"});
  CHECK(proxy.proxy.groups.at("email") == std::vector<std::string>{"order.#"});
  CHECK(topo.devices()[1].kind == "streamer");
  CHECK_THROWS_WITH(topo.endpoint("nope"), Catch::Contains("it has: jobs.in"));
}

TEST_CASE("topology mistakes are errors with file, line, column and what is wrong", "[topology]") {
  SECTION("an unknown key") {
    const auto e = error_of(with_proxy("    fsynk: always\n"));
    CHECK_THAT(e, Catch::StartsWith("topo.yaml:7:5: unknown key 'fsynk'"));
    CHECK_THAT(e, Catch::Contains("known: ack_timeout"));
  }
  SECTION("a wrong type") {
    CHECK_THAT(error_of(with_proxy("    max_attempts: three\n")),
               Catch::StartsWith("topo.yaml:7:19: devices.p.max_attempts must be a positive"));
    CHECK_THAT(error_of(with_proxy("    groups: [a, b]\n")),
               Catch::Contains("'devices.p.groups' must be a map"));
  }
  SECTION("a missing required field") {
    CHECK_THAT(error_of("devices:\n  p:\n    kind: proxy\n    front: tcp://*:7001\n    back: "
                        "tcp://*:7002\n"),
               Catch::Contains("devices.p needs 'spool:'"));
    CHECK_THAT(error_of("devices:\n  s:\n    kind: streamer\n    in: tcp://*:7001\n"),
               Catch::Contains("devices.s needs 'out:'"));
    CHECK_THAT(error_of("endpoints: {}\n"), Catch::Contains("needs 'devices:'"));
  }
  SECTION("duplicate names and keys") {
    CHECK_THAT(error_of(with_proxy("") + "  p:\n    kind: streamer\n"),
               Catch::Contains("'p' is given twice in 'devices'"));
    CHECK_THAT(error_of(with_proxy("    fsync: always\n    fsync: never\n")),
               Catch::StartsWith("topo.yaml:8:5: 'fsync' is given twice"));
  }
  SECTION("an endpoint two devices bind") {
    const auto e = error_of(
        with_proxy("") + "  s:\n    kind: streamer\n    in: tcp://*:7002\n    out: tcp://*:7003\n");
    CHECK_THAT(e, Catch::Contains("devices.s.in binds tcp://*:7002, which p.back binds already"));
  }
  SECTION("bad values") {
    CHECK_THAT(error_of(with_proxy("    ack_timeout: soon\n")),
               Catch::Contains("devices.p.ack_timeout"));
    CHECK_THAT(error_of(with_proxy("    fsync: sometimes\n")), Catch::Contains("devices.p.fsync"));
    CHECK_THAT(error_of(with_proxy("    backoff: linear\n")), Catch::Contains("devices.p.backoff"));
    CHECK_THAT(error_of(with_proxy("    groups:\n      email: ord*\n")),
               Catch::Contains("devices.p.groups.email"));
    CHECK_THAT(error_of(with_proxy("    groups:\n      'bad name': order.#\n")),
               Catch::Contains("group name 'bad name'"));
    CHECK_THAT(error_of(with_proxy("    kind2: x\n")), Catch::Contains("unknown key 'kind2'"));
  }
  SECTION("endpoints that are not usable") {
    CHECK_THAT(error_of("devices:\n  s:\n    kind: streamer\n    in: tcp://*:*\n    out: "
                        "tcp://*:7003\n"),
               Catch::Contains("needs a fixed port"));
    CHECK_THAT(error_of("devices:\n  s:\n    kind: streamer\n    in: nowhere\n    out: "
                        "tcp://*:7003\n"),
               Catch::Contains("no endpoint named 'nowhere'"));
    CHECK_THAT(error_of("endpoints:\n  a: http://x\ndevices: {}\n"),
               Catch::Contains("is not an endpoint"));
  }
  SECTION("an unknown kind, broken YAML, an empty file") {
    CHECK_THAT(error_of("devices:\n  x:\n    kind: broker\n"),
               Catch::StartsWith("topo.yaml:3:11: devices.x.kind 'broker' is not a device"));
    CHECK_THAT(error_of("devices:\n  x: [1, 2\n"), Catch::StartsWith("topo.yaml:"));
    CHECK_THAT(error_of(""), Catch::Contains("the file is empty"));
  }
}

TEST_CASE("streams and bridges in a topology", "[topology]") {
  const auto topo = Topology::parse(R"(endpoints:
  orders: tcp://*:7001
  work: tcp://*:7002
devices:
  p:
    kind: proxy
    front: orders
    back: work
    spool: spool
  log:
    kind: stream
    front: tcp://*:7010
    back: tcp://*:7011
    dir: data/log
    partitions: 4
    fsync: never
    retain_bytes: 10GiB
    retain_age: 7d
  feed:
    kind: bridge
    source: proxy
    from: work
    name: audit
    topics: [order.#]
    to: log.front
)",
                                    "topo.yaml", "/srv/app");
  REQUIRE(topo.devices().size() == 3);
  const auto& log = topo.devices()[1];
  CHECK(log.kind == "stream");
  CHECK(log.stream.dir == "/srv/app/data/log");
  CHECK(log.stream.partitions == 4);
  CHECK(log.stream.log.durability == mqkit::Durability::never);
  CHECK(log.stream.log.retain_bytes == 10ull << 30);
  CHECK(log.stream.log.retain_age == std::chrono::hours(7 * 24));
  const auto& feed = topo.devices()[2];
  CHECK(feed.source == "proxy");
  CHECK(feed.source_name == "audit");
  CHECK(feed.topics == std::vector<std::string>{"order.#"});
  CHECK(topo.endpoint(feed.endpoints.at("from")) == "tcp://127.0.0.1:7002");
  CHECK(topo.endpoint(feed.endpoints.at("to")) == "tcp://127.0.0.1:7010");

  const std::string stream =
      "devices:\n  s:\n    kind: stream\n    front: tcp://*:7001\n    back: "
      "tcp://*:7002\n";
  CHECK_THAT(error_of(stream), Catch::Contains("devices.s needs 'dir:'"));
  CHECK_THAT(error_of(stream + "    dir: d\n    fsync: sometimes\n"),
             Catch::Contains("is not a durability"));
  CHECK_THAT(error_of(stream + "    dir: d\n    fsync: interval=0ms\n"),
             Catch::Contains("interval must be positive"));
  CHECK_NOTHROW(
      Topology::parse(stream + "    dir: d\n    fsync: interval=1s\n", "topo.yaml", "/srv/app"));
  CHECK_THAT(error_of(stream + "    dir: d\n    partitions: 0\n"),
             Catch::Contains("devices.s.partitions"));
  const std::string bridge =
      "devices:\n  b:\n    kind: bridge\n    from: tcp://h:1\n    to: "
      "tcp://h:2\n";
  CHECK_THAT(error_of(bridge), Catch::Contains("devices.b needs 'source:'"));
  CHECK_THAT(error_of(bridge + "    source: kafka\n"),
             Catch::Contains("'kafka' is not proxy, stream or forwarder"));
  CHECK_THAT(error_of(bridge + "    source: stream\n"),
             Catch::Contains("needs 'name:' (the consumer name"));
}

TEST_CASE("a topology file that cannot be read says so", "[topology]") {
  mqkit::test::TempDir dir;
  CHECK_THROWS_WITH(Topology::load(dir.file("missing.yaml")),
                    Catch::Contains("cannot read topology file"));
}

TEST_CASE("a bridge to a CURVE device needs a key pair and learns the device's key", "[topology]") {
  const std::string curve_proxy =
      "devices:\n  p:\n    kind: proxy\n    front: tcp://*:7001\n    back: tcp://*:7002\n"
      "    spool: s\n    curve_key: keys/p.key\n    allow: keys/clients\n"
      "  log:\n    kind: stream\n    front: tcp://*:7010\n    back: tcp://*:7011\n    dir: d\n"
      "  b:\n    kind: bridge\n    source: proxy\n    name: audit\n    from: p.back\n"
      "    to: log.front\n";
  CHECK_THAT(error_of(curve_proxy),
             Catch::Contains("topo.yaml:18:11: devices.b.from: 'p.back' is p's, a CURVE device, "
                             "so the bridge needs curve_key"));
  const auto topo =
      Topology::parse(curve_proxy + "    curve_key: keys/b.key\n", "topo.yaml", "/srv/app");
  const auto& b = topo.devices()[2];
  CHECK(b.curve_key == "/srv/app/keys/b.key");
  CHECK(b.from_server_key == "/srv/app/keys/p.key");  // its public key is read from there
  CHECK(b.to_server_key.empty());                     // the stream is plain

  // A device outside the file: its key is given.
  const std::string outside =
      "devices:\n  b:\n    kind: bridge\n    source: stream\n    name: n\n"
      "    from: tcp://h:1\n    to: tcp://h:2\n";
  CHECK_THAT(error_of(outside + "    from_server_key: k/remote.pub\n"),
             Catch::Contains("devices.b.from: a server key is given, so the bridge needs "
                             "curve_key"));
  CHECK_THAT(error_of(outside + "    curve_key: k/b.key\n"),
             Catch::Contains("devices.b.curve_key: neither side of the bridge is a CURVE device"));
  const auto remote = Topology::parse(
      outside + "    curve_key: k/b.key\n    to_server_key: k/remote.pub\n", "topo.yaml", "/x");
  CHECK(remote.devices()[0].to_server_key == "/x/k/remote.pub");
  CHECK_THAT(error_of(outside + "    allow: k/clients\n"), Catch::Contains("allow"));
}

TEST_CASE("a group written as a map has topics and settings of its own", "[topology][groups]") {
  const auto topo = Topology::parse(with_proxy("    max_attempts: 5\n"
                                               "    groups:\n"
                                               "      email: order.#\n"
                                               "      billing:\n"
                                               "        topics: [order.created, order.paid]\n"
                                               "        max_attempts: 2\n"
                                               "        backoff: fixed:250ms\n"
                                               "        ack_timeout: 1m\n"),
                                    "topo.yaml", "/srv/app");
  const auto& p = topo.devices()[0].proxy;
  CHECK(p.groups.at("billing") == std::vector<std::string>{"order.created", "order.paid"});
  CHECK(p.groups.at("email") == std::vector<std::string>{"order.#"});
  REQUIRE(p.group_settings.contains("billing"));
  CHECK_FALSE(p.group_settings.contains("email"));
  CHECK(p.group_settings.at("billing").words() ==
        std::vector<std::string>{"max_attempts=2", "ack_timeout=60s", "backoff=fixed:250ms"});
  CHECK(p.retry.max_attempts == 5);  // the proxy's own is untouched

  const std::string group = "    groups:\n      billing:\n";
  CHECK_THAT(error_of(with_proxy(group + "        max_attempts: 2\n")),
             Catch::Contains("devices.p.groups.billing needs 'topics:'"));
  CHECK_THAT(error_of(with_proxy(group + "        topics: a\n        ordred: true\n")),
             Catch::Contains("unknown key 'ordred' in group 'billing' (known: ack_timeout, "
                             "backoff, max_attempts, topics)"));
  CHECK_THAT(error_of(with_proxy(group + "        topics: a\n        max_attempts: none\n")),
             Catch::StartsWith("topo.yaml:10:23: devices.p.groups.billing.max_attempts must be"));
  CHECK_THAT(error_of(with_proxy(group + "        topics: a\n        backoff: slow\n")),
             Catch::Contains("devices.p.groups.billing.backoff: "));
}
