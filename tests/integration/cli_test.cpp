// The mqkit binary as users run it: real processes, tcp loopback, free ports.
// Every process a test starts is a ChildProcess, killed on scope exit.
#include <catch2/catch.hpp>
#include <zmq.hpp>

#include <csignal>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "child_process.hpp"
#include "cli_support.hpp"
#include "helpers.hpp"

using namespace std::chrono_literals;
using mqkit::test::ChildProcess;
using mqkit::test::count_newlines;
using mqkit::test::DeviceEndpoints;
using mqkit::test::free_endpoint;
using mqkit::test::kAnyPort;
using mqkit::test::run_mqkit;
using mqkit::test::RunningDevice;
using mqkit::test::stat_json;
using mqkit::test::TempDir;

namespace {

RunningDevice start_device(const std::string& kind) {
  return mqkit::test::start_device(
      {kind, "--in", kAnyPort, "--out", kAnyPort, "--stats", kAnyPort});
}

}  // namespace

TEST_CASE("10,000 lines through a streamer reach 3 consumers exactly once in total",
          "[integration][cli]") {
  TempDir dir;
  auto streamer = start_device("streamer");
  std::vector<ChildProcess> consumers;
  for (int c = 0; c < 3; ++c)
    consumers.emplace_back(std::vector<std::string>{mqkit::test::mqkit_binary(), "consume",
                                                    "--from", streamer.endpoints.out},
                           mqkit::test::Stdio{false, "", dir.file("out" + std::to_string(c))});

  std::string input;
  for (int i = 0; i < 10000; ++i) input += "line " + std::to_string(i) + "\n";
  mqkit::test::write_file(dir.file("input"), input);
  const auto [code, err] =
      run_mqkit({"send", "--to", streamer.endpoints.in, "--file", dir.file("input")});
  INFO(err);
  REQUIRE(code == 0);
  CHECK_THAT(err, Catch::Contains("sent 10000 messages"));

  auto total = [&] {
    std::size_t n = 0;
    for (int c = 0; c < 3; ++c) n += count_newlines(dir.file("out" + std::to_string(c)));
    return n;
  };
  CHECK(mqkit::test::wait_for([&] { return total() >= 10000; }, 60s));
  for (auto& c : consumers) c.signal(SIGTERM);
  for (auto& c : consumers) CHECK(c.wait(10s) == 0);

  std::multiset<std::string> received;
  for (int c = 0; c < 3; ++c) {
    const auto lines = mqkit::test::read_lines(dir.file("out" + std::to_string(c)));
    UNSCOPED_INFO("consumer " << c << " got " << lines.size());
    received.insert(lines.begin(), lines.end());
  }
  REQUIRE(received.size() == 10000);
  for (int i = 0; i < 10000; ++i) CHECK(received.count("line " + std::to_string(i)) == 1);
  const auto stats = stat_json(streamer.endpoints.stats);
  CHECK(stats.at("in") == 10000);
  CHECK(stats.at("out") == 10000);
}

TEST_CASE("a forwarder fans a stream out to 2 subscribers that each get every message",
          "[integration][cli]") {
  TempDir dir;
  auto forwarder = start_device("forwarder");
  std::vector<ChildProcess> subscribers;
  for (int s = 0; s < 2; ++s)
    subscribers.emplace_back(
        std::vector<std::string>{mqkit::test::mqkit_binary(), "consume", "--sub", "--from",
                                 forwarder.endpoints.out, "--topic", "order.", "--count", "2000"},
        mqkit::test::Stdio{false, "", dir.file("sub" + std::to_string(s))});
  // Both subscriptions have reached the forwarder before anything is sent.
  REQUIRE(mqkit::test::wait_for(
      [&] { return stat_json(forwarder.endpoints.stats)["subscriptions"] >= 2; }, 20s));

  const auto [code, err] = run_mqkit({"send", "--pub", "--to", forwarder.endpoints.in, "--topic",
                                      "order.created", "--count", "2000", "--size", "64"});
  INFO(err);
  REQUIRE(code == 0);
  for (int s = 0; s < 2; ++s) {
    INFO("subscriber " << s);
    REQUIRE(subscribers[s].wait(30s) == 0);
    const auto lines = mqkit::test::read_lines(dir.file("sub" + std::to_string(s)));
    REQUIRE(lines.size() == 2000);
    for (int i = 0; i < 2000; ++i) {
      std::string expected = std::to_string(i);
      expected.resize(64, '.');
      REQUIRE(lines[i] == expected);
    }
  }
  CHECK(stat_json(forwarder.endpoints.stats).at("out") == 2000);
}

TEST_CASE("send --pub waits for a late subscriber instead of losing messages",
          "[integration][cli]") {
  TempDir dir;
  mqkit::test::write_file(dir.file("in"), "first\nsecond\n");
  // The publisher binds and starts before the subscriber exists.
  const std::string port_endpoint = free_endpoint();
  ChildProcess late_publisher({mqkit::test::mqkit_binary(), "send", "--pub", "--bind", "--to",
                               port_endpoint, "--file", dir.file("in"), "--wait", "20s"});
  std::this_thread::sleep_for(300ms);  // the subscriber really is late
  ChildProcess subscriber(
      {mqkit::test::mqkit_binary(), "consume", "--sub", "--from", port_endpoint, "--count", "2"});
  CHECK(subscriber.read_line(20s) == "first");
  CHECK(subscriber.read_line(20s) == "second");
  CHECK(late_publisher.wait(20s) == 0);
}

TEST_CASE("consume --exec runs the command once per message with its payload and ids",
          "[integration][cli]") {
  TempDir dir;
  const auto log = dir.file("log");
  const std::string endpoint = free_endpoint();
  ChildProcess worker({mqkit::test::mqkit_binary(), "consume", "--bind", "--from", endpoint,
                       "--count", "5", "--exec",
                       "printf '%s|%s|%s|%s\\n' \"$MQKIT_ID\" \"$MQKIT_TOPIC\" "
                       "\"$MQKIT_ATTEMPT\" \"$(cat)\" >> " +
                           log});
  mqkit::test::write_file(dir.file("in"), "a\nb b\nc\nd\ne\n");
  const auto [code, err] =
      run_mqkit({"send", "--to", endpoint, "--topic", "jobs.t", "--file", dir.file("in")});
  REQUIRE(code == 0);
  REQUIRE(worker.wait(30s) == 0);
  const auto lines = mqkit::test::read_lines(log);
  REQUIRE(lines.size() == 5);
  std::set<std::string> ids;
  std::vector<std::string> payloads;
  for (const auto& line : lines) {
    const auto first = line.find('|');
    ids.insert(line.substr(0, first));
    CHECK(line.substr(first, 10) == "|jobs.t|1|");
    payloads.push_back(line.substr(first + 10));
  }
  CHECK(ids.size() == 5);
  CHECK(ids.begin()->size() == 36);
  CHECK(payloads == std::vector<std::string>{"a", "b b", "c", "d", "e"});
}

TEST_CASE("consume --json shows raw frames from a plain ZeroMQ peer with a fresh id",
          "[integration][cli][interop]") {
  zmq::context_t ctx;
  zmq::socket_t push(ctx, zmq::socket_type::push);
  push.bind(kAnyPort);
  ChildProcess consumer({mqkit::test::mqkit_binary(), "consume", "--json", "--count", "1", "--from",
                         push.get(zmq::sockopt::last_endpoint)});
  push.send(zmq::str_buffer("sensor.temp"), zmq::send_flags::sndmore);
  push.send(zmq::str_buffer("21.5\n"), zmq::send_flags::none);
  const auto line = consumer.read_line(20s);
  REQUIRE(line);
  CHECK_THAT(*line, Catch::Contains("\"topic\":\"sensor.temp\""));
  CHECK_THAT(*line, Catch::Contains("\"payload\":\"21.5\\n\""));
  CHECK_THAT(*line, Catch::Contains("\"attempt\":1"));
  CHECK(consumer.wait(10s) == 0);
}

TEST_CASE("a streamer fed random garbage keeps serving well-behaved clients",
          "[integration][cli]") {
  auto streamer = start_device("streamer");
  {
    zmq::context_t ctx;
    std::mt19937 rng(7);
    for (int c = 0; c < 5; ++c) {  // raw TCP-level garbage: not even ZMTP
      zmq::socket_t stream(ctx, zmq::socket_type::stream);
      stream.connect(streamer.endpoints.in);
      zmq::message_t id;
      (void)stream.recv(id);  // the connect notification carries the peer id
      std::string junk(1 + rng() % 2000, '\0');
      for (auto& ch : junk) ch = static_cast<char>(rng());
      stream.send(id, zmq::send_flags::sndmore);
      stream.send(zmq::buffer(junk), zmq::send_flags::none);
    }
  }
  // libzmq reads bytes without a ZMTP 3 greeting as ZMTP 1.0 frames, so some
  // garbage may arrive as raw messages: the streamer passes them on unchanged
  // and the consumer prints them escaped. The well-formed message must follow.
  ChildProcess consumer({mqkit::test::mqkit_binary(), "consume", "--from", streamer.endpoints.out});
  const auto [code, err] =
      run_mqkit({"send", "--to", streamer.endpoints.in, "--count", "1", "--size", "5"});
  CHECK(code == 0);
  bool found = false;
  for (int i = 0; i < 1000 && !found; ++i) {
    const auto line = consumer.read_line(20s);
    if (!line) break;
    found = *line == "0....";
  }
  CHECK(found);
  consumer.signal(SIGTERM);
  CHECK(consumer.wait(10s) == 0);
  CHECK(streamer.process.wait(0ms) == std::nullopt);  // still running
}

TEST_CASE("usage errors exit 2 and runtime errors exit 1, each with one line",
          "[integration][cli]") {
  auto one_line = [](const std::string& err) {
    return std::count(err.begin(), err.end(), '\n') == 1;
  };
  SECTION("a missing required flag") {
    const auto [code, err] = run_mqkit({"send"});
    CHECK(code == 2);
    CHECK_THAT(err, Catch::Contains("--to EP") && Catch::Contains("--proxy EP"));
    CHECK(one_line(err));
  }
  SECTION("an unknown flag") {
    const auto [code, err] = run_mqkit({"consume", "--from", "tcp://127.0.0.1:1", "--frobnicate"});
    CHECK(code == 2);
    CHECK(one_line(err));
  }
  SECTION("an unreadable --file") {
    const auto [code, err] =
        run_mqkit({"send", "--to", "tcp://127.0.0.1:1", "--file", "/nonexistent/x"});
    CHECK(code == 2);
    CHECK_THAT(err, Catch::Contains("/nonexistent/x"));
  }
  SECTION("a bad duration") {
    const auto [code, err] = run_mqkit({"send", "--to", "tcp://127.0.0.1:1", "--timeout", "soon"});
    CHECK(code == 2);
    CHECK_THAT(err, Catch::Contains("e.g. 500ms"));
  }
  SECTION("--count without --size") {
    const auto [code, err] = run_mqkit({"send", "--to", "tcp://127.0.0.1:1", "--count", "3"});
    CHECK(code == 2);
    CHECK_THAT(err, Catch::Contains("--size"));
  }
  SECTION("a port that is already in use") {
    zmq::context_t ctx;
    zmq::socket_t taken(ctx, zmq::socket_type::pull);
    taken.bind(kAnyPort);
    const std::string ep = taken.get(zmq::sockopt::last_endpoint);
    const auto [code, err] = run_mqkit({"streamer", "--in", ep, "--out", kAnyPort});
    CHECK(code == 1);
    CHECK_THAT(err, Catch::Contains(ep) && Catch::Contains("Address already in use"));
    CHECK(one_line(err));
  }
  SECTION("a send that no peer takes") {
    const auto [code, err] = run_mqkit(
        {"send", "--to", free_endpoint(), "--timeout", "300ms", "--count", "1", "--size", "10"});
    CHECK(code == 1);
    CHECK_THAT(err, Catch::Contains("nothing took a message") && Catch::Contains("0 sent"));
    CHECK(one_line(err));
  }
  SECTION("an endpoint that is not one") {
    const auto [code, err] = run_mqkit({"forwarder", "--in", "tcp://nowhere", "--out", kAnyPort});
    CHECK(code == 1);
    CHECK_THAT(err, Catch::Contains("tcp://nowhere"));
  }
  SECTION("stat on an endpoint where no device answers") {
    zmq::context_t ctx;
    zmq::socket_t silent(ctx, zmq::socket_type::pull);
    silent.bind(kAnyPort);
    const auto [code, err] =
        run_mqkit({"stat", silent.get(zmq::sockopt::last_endpoint), "--timeout", "200ms"});
    CHECK(code == 1);
    CHECK_THAT(err, Catch::Contains("no stats reply"));
  }
  SECTION("--help at every level") {
    for (const char* sub : {"streamer", "forwarder", "send", "consume", "stat"}) {
      ChildProcess p({mqkit::test::mqkit_binary(), sub, "--help"});
      const auto first = p.read_line(10s);
      REQUIRE(first);
      CHECK(p.wait(10s) == 0);
    }
  }
}

TEST_CASE("devices stop cleanly on SIGTERM and print their counters", "[integration][cli]") {
  auto forwarder = start_device("forwarder");
  forwarder.process.signal(SIGTERM);
  CHECK(forwarder.process.wait(10s) == 0);
  CHECK_THAT(forwarder.process.stderr_text(), Catch::Contains("stopped; in=0 out=0"));
}

TEST_CASE("a second proxy on the same spool refuses and names the first one's pid",
          "[integration][cli][proxy]") {
  TempDir dir;
  ChildProcess first({mqkit::test::mqkit_binary(), "proxy", "--front", kAnyPort, "--back", kAnyPort,
                      "--spool", dir.file("spool"), "--group", "email=order.#"});
  const auto up = first.read_line(10s);
  INFO(first.stderr_text());
  REQUIRE(up);
  CHECK_THAT(*up, Catch::StartsWith("mqkit proxy: up, in tcp://127.0.0.1:"));
  const auto [code, err] =
      run_mqkit({"proxy", "--front", kAnyPort, "--back", kAnyPort, "--spool", dir.file("spool")});
  CHECK(code == 1);
  CHECK_THAT(err, Catch::Contains("pid " + std::to_string(first.pid())));
  first.signal(SIGTERM);
  CHECK(first.wait(10s) == 0);
}

TEST_CASE("send --proxy and consume --proxy: every group gets every message, failures retry",
          "[integration][cli][proxy]") {
  TempDir dir;
  ChildProcess proxy({mqkit::test::mqkit_binary(), "proxy", "--front", kAnyPort, "--back", kAnyPort,
                      "--stats", kAnyPort, "--spool", dir.file("spool"), "--group", "email=order.#",
                      "--group", "billing=order.created", "--backoff", "fixed:50ms",
                      "--max-attempts", "3"});
  const auto up = proxy.read_line(10s);
  INFO(proxy.stderr_text());
  REQUIRE(up);
  const auto endpoints = mqkit::test::parse_up_line(*up);
  ChildProcess email({mqkit::test::mqkit_binary(), "consume", "--proxy", endpoints.out, "--group",
                      "email", "--count", "200"},
                     mqkit::test::Stdio{false, "", dir.file("email")});
  // Billing's command fails on every first attempt, so each message is retried once.
  ChildProcess billing({mqkit::test::mqkit_binary(), "consume", "--proxy", endpoints.out, "--group",
                        "billing", "--count", "200", "--exec",
                        "cat > /dev/null; [ \"$MQKIT_ATTEMPT\" -ge 2 ]"});
  std::string input;
  for (int i = 0; i < 200; ++i) input += "order " + std::to_string(i) + "\n";
  mqkit::test::write_file(dir.file("orders"), input);
  const auto [code, err] = run_mqkit(
      {"send", "--proxy", endpoints.in, "--topic", "order.created", "--file", dir.file("orders")});
  INFO(err);
  CHECK(code == 0);
  CHECK_THAT(err, Catch::Contains("200 of 200 messages confirmed"));
  CHECK(email.wait(30s) == 0);
  CHECK(billing.wait(30s) == 0);
  const auto lines = mqkit::test::read_lines(dir.file("email"));
  CHECK(std::set<std::string>(lines.begin(), lines.end()).size() == 200);
  const auto stats = stat_json(endpoints.stats);
  CHECK(stats.at("stored") == 200);
  CHECK(stats.at("acked") == 400);
  CHECK(stats.at("retried") == 200);
  CHECK(stats.at("dead") == 0);
  proxy.signal(SIGTERM);
  CHECK(proxy.wait(10s) == 0);
}
