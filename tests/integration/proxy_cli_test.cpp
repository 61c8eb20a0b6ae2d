// The reliable proxy as users run it: `mqkit proxy`, `mqkit send --proxy`
// and `mqkit consume --proxy` as separate processes over tcp loopback, with
// spools on disk, SIGKILLs, slow and failing workers, a full spool and
// `mqkit group rm`. Every process is a ChildProcess, killed on scope exit.
#include <catch2/catch.hpp>
#include <zmq.hpp>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "child_process.hpp"
#include "cli_support.hpp"
#include "helpers.hpp"
#include "mqkit/devices/stats.hpp"
#include "protocol/commands.hpp"
#include "protocol_peer.hpp"

using namespace std::chrono_literals;
using namespace mqkit::detail::protocol;
using mqkit::test::ChildProcess;
using mqkit::test::DeviceEndpoints;
using mqkit::test::kAnyPort;
using mqkit::test::run_mqkit;
using mqkit::test::TempDir;
using mqkit::test::wait_for;

namespace {

using RunningProxy = mqkit::test::RunningDevice;
using mqkit::test::start_proxy;

ChildProcess start_worker(const DeviceEndpoints& proxy, const std::string& group,
                          const std::string& out_file, std::vector<std::string> extra = {}) {
  std::vector<std::string> argv{
      mqkit::test::mqkit_binary(), "consume", "--proxy", proxy.out, "--group", group};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return ChildProcess(argv, mqkit::test::Stdio{false, "", out_file});
}

std::uint64_t counter(const DeviceEndpoints& proxy, const std::string& name) {
  try {
    return mqkit::devices::query_stats(proxy.stats, 2s).get(name);
  } catch (const std::exception&) {
    return 0;  // restarting: ask again
  }
}

// "order 0" ... "order N-1", one per line, in a file for `send --file`.
std::string write_orders(const TempDir& dir, int n) {
  std::string text;
  for (int i = 0; i < n; ++i) text += "order " + std::to_string(i) + "\n";
  mqkit::test::write_file(dir.file("orders"), text);
  return dir.file("orders");
}

std::multiset<std::string> lines_of(const std::vector<std::string>& files) {
  std::multiset<std::string> all;
  for (const auto& f : files)
    for (auto& line : mqkit::test::read_lines(f)) all.insert(std::move(line));
  return all;
}

}  // namespace

TEST_CASE("4 groups of 2 workers: every group processes each of 10,000 messages once",
          "[integration][proxy]") {
  TempDir dir;
  const std::vector<std::string> groups{"email", "inventory", "billing", "warehouse"};
  std::vector<std::string> args;
  for (const auto& g : groups) args.insert(args.end(), {"--group", g + "=order.#"});
  auto proxy = start_proxy(dir, args);
  std::vector<ChildProcess> workers;
  for (const auto& g : groups)
    for (int w = 0; w < 2; ++w)
      workers.push_back(start_worker(proxy.endpoints, g, dir.file(g + "-" + std::to_string(w)),
                                     {"--prefetch", "50"}));
  const auto [code, err] = run_mqkit({"send", "--proxy", proxy.endpoints.in, "--topic",
                                      "order.created", "--file", write_orders(dir, 10000)});
  INFO(err);
  REQUIRE(code == 0);
  CHECK_THAT(err, Catch::Contains("10000 of 10000 messages confirmed"));
  for (const auto& g : groups)
    CHECK(
        wait_for([&] { return counter(proxy.endpoints, "group." + g + ".acked") >= 10000; }, 60s));
  for (auto& w : workers) w.signal(SIGTERM);
  for (auto& w : workers) CHECK(w.wait(10s) == 0);
  for (const auto& g : groups) {
    INFO("group " << g);
    const auto first = mqkit::test::read_lines(dir.file(g + "-0"));
    const auto second = mqkit::test::read_lines(dir.file(g + "-1"));
    CHECK_FALSE(first.empty());  // the two workers shared the work
    CHECK_FALSE(second.empty());
    const auto all = lines_of({dir.file(g + "-0"), dir.file(g + "-1")});
    CHECK(std::set<std::string>(all.begin(), all.end()).size() == 10000);
    const auto duplicates = all.size() - 10000;
    CHECK(duplicates <= counter(proxy.endpoints, "group." + g + ".retried"));
    CHECK(counter(proxy.endpoints, "group." + g + ".acked") == 10000);
  }
}

TEST_CASE("kill -9 of the proxy 5 times under load loses no confirmed message",
          "[integration][proxy][crash]") {
  TempDir dir;
  const auto ports = mqkit::test::free_endpoints(3);
  const std::string front = ports[0], back = ports[1], stats = ports[2];
  const std::vector<std::string> args{
      "--fsync",         "always",      "--group", "email=order.#", "--group",
      "billing=order.#", "--heartbeat", "200ms",   "--ack-timeout", "5s"};
  auto proxy = std::make_unique<RunningProxy>(start_proxy(dir, args, front, back, stats));
  auto email = start_worker(proxy->endpoints, "email", dir.file("email"));
  auto billing = start_worker(proxy->endpoints, "billing", dir.file("billing"));
  ChildProcess producer({mqkit::test::mqkit_binary(), "send", "--proxy", front, "--topic",
                         "order.created", "--file", write_orders(dir, 20000), "--rate", "4000",
                         "--timeout", "90s"});
  for (int kill = 0; kill < 5; ++kill) {
    std::this_thread::sleep_for(700ms);
    proxy->process.signal(SIGKILL);
    REQUIRE(proxy->process.wait(10s));
    proxy.reset();
    proxy = std::make_unique<RunningProxy>(start_proxy(dir, args, front, back, stats));
  }
  const auto code = producer.wait(120s);
  INFO(producer.stderr_text());
  REQUIRE(code == 0);  // exit 0: every one of the 20,000 was confirmed
  CHECK_THAT(producer.stderr_text(), Catch::Contains("20000 of 20000 messages confirmed"));
  for (const std::string g : {"email", "billing"})
    CHECK(wait_for(
        [&] {
          return counter(proxy->endpoints, "group." + g + ".pending") == 0 &&
                 lines_of({dir.file(g)}).size() >= 20000;
        },
        60s));
  email.signal(SIGTERM);
  billing.signal(SIGTERM);
  CHECK(email.wait(10s) == 0);
  CHECK(billing.wait(10s) == 0);
  for (const std::string g : {"email", "billing"}) {
    const auto all = lines_of({dir.file(g)});
    const std::set<std::string> distinct(all.begin(), all.end());
    CHECK(distinct.size() == 20000);  // nothing confirmed is missing
    WARN("group " << g << ": 20000 confirmed, " << all.size() << " delivered, "
                  << all.size() - distinct.size() << " duplicates after 5 kill -9");
  }
}

TEST_CASE("a slow --exec is kept alive with IN_PROGRESS, a killed worker's message goes to another",
          "[integration][proxy]") {
  TempDir dir;
  auto proxy = start_proxy(dir, {"--group", "slow=#", "--ack-timeout", "1s", "--heartbeat", "200ms",
                                 "--backoff", "fixed:100ms"});
  // Holds its message until told to stop (or 10 s), like a long job.
  const std::string hold = "cat > /dev/null; echo \"$MQKIT_ATTEMPT\" >> " + dir.file("a") +
                           "; i=0; while [ ! -e " + dir.file("stop") +
                           " ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done";
  auto slow =
      start_worker(proxy.endpoints, "slow", dir.file("a.out"), {"--prefetch", "1", "--exec", hold});
  const auto [code, err] = run_mqkit(
      {"send", "--proxy", proxy.endpoints.in, "--topic", "job", "--count", "1", "--size", "10"});
  REQUIRE(code == 0);
  REQUIRE(wait_for([&] { return mqkit::test::read_lines(dir.file("a")).size() == 1; }, 10s));
  // Three ack timeouts pass while the command runs: no redelivery.
  std::this_thread::sleep_for(3s);
  CHECK(counter(proxy.endpoints, "delivered") == 1);
  CHECK(counter(proxy.endpoints, "retried") == 0);

  auto other = start_worker(
      proxy.endpoints, "slow", dir.file("b.out"),
      {"--count", "1", "--exec", "cat > /dev/null; echo \"$MQKIT_ATTEMPT\" >> " + dir.file("b")});
  REQUIRE(wait_for([&] { return counter(proxy.endpoints, "group.slow.workers") == 2; }, 10s));
  slow.signal(SIGKILL);
  CHECK(slow.wait(5s));
  mqkit::test::write_file(dir.file("stop"), "");  // lets the orphaned command end too
  CHECK(other.wait(15s) == 0);
  CHECK(mqkit::test::read_lines(dir.file("b")) == std::vector<std::string>{"2"});
  CHECK(counter(proxy.endpoints, "lost_workers") == 1);
  CHECK(counter(proxy.endpoints, "acked") == 1);
}

TEST_CASE("a poison message dies after exactly --max-attempts while the others flow",
          "[integration][proxy]") {
  TempDir dir;
  auto proxy =
      start_proxy(dir, {"--group", "billing=#", "--max-attempts", "3", "--backoff", "fixed:50ms"});
  mqkit::test::write_file(dir.file("orders"), "good 1\ngood 2\npoison\ngood 3\ngood 4\n");
  auto worker =
      start_worker(proxy.endpoints, "billing", dir.file("out"), {"--exec", "grep -qv poison"});
  const auto [code, err] = run_mqkit(
      {"send", "--proxy", proxy.endpoints.in, "--topic", "order", "--file", dir.file("orders")});
  REQUIRE(code == 0);
  REQUIRE(wait_for([&] { return counter(proxy.endpoints, "dead") == 1; }, 20s));
  CHECK(wait_for([&] { return counter(proxy.endpoints, "acked") == 4; }, 10s));
  CHECK(counter(proxy.endpoints, "retried") == 2);
  CHECK(counter(proxy.endpoints, "delivered") == 4 + 3);
  ChildProcess dump({mqkit::test::mqkit_binary(), "spool", "dump", dir.file("dlq"), "--json"});
  std::string records;
  while (auto line = dump.read_line(5s)) records += *line + "\n";
  CHECK(dump.wait(5s) == 0);
  CHECK_THAT(records, Catch::Contains("\"reason\":\"max attempts\""));
  CHECK_THAT(records, Catch::Contains("\"attempts\":3"));
  CHECK_THAT(records, Catch::Contains("command exited with status 1"));
  CHECK_THAT(records, Catch::Contains("poison"));
}

TEST_CASE("a full spool answers full and the producer waits and finishes once workers drain it",
          "[integration][proxy]") {
  TempDir dir;
  auto proxy = start_proxy(dir, {"--group", "work=#", "--fsync", "never", "--max-spool", "1MiB"});
  ChildProcess producer({mqkit::test::mqkit_binary(), "send", "--proxy", proxy.endpoints.in,
                         "--topic", "job", "--count", "20000", "--size", "100", "--timeout",
                         "60s"});
  REQUIRE(wait_for([&] { return counter(proxy.endpoints, "full") > 0; }, 30s));
  CHECK_FALSE(producer.wait(0ms));  // still waiting for room, not failed
  auto worker = start_worker(proxy.endpoints, "work", dir.file("out"), {"--count", "20000"});
  const auto code = producer.wait(60s);
  INFO(producer.stderr_text());
  CHECK(code == 0);
  CHECK_THAT(producer.stderr_text(), Catch::Contains("20000 of 20000 messages confirmed"));
  CHECK(worker.wait(60s) == 0);
  const auto lines = mqkit::test::read_lines(dir.file("out"));
  CHECK(std::set<std::string>(lines.begin(), lines.end()).size() == 20000);
}

TEST_CASE("group rm acks away an abandoned group's messages and frees its spool share",
          "[integration][proxy]") {
  TempDir dir;
  auto proxy = start_proxy(dir, {"--group", "live=#", "--group", "abandoned=#", "--fsync", "never",
                                 "--segment-size", "64KiB"});
  auto [code, err] = run_mqkit(
      {"send", "--proxy", proxy.endpoints.in, "--topic", "t", "--count", "5000", "--size", "100"});
  REQUIRE(code == 0);
  auto worker = start_worker(proxy.endpoints, "live", dir.file("out"), {"--count", "5000"});
  CHECK(worker.wait(30s) == 0);
  const auto before = counter(proxy.endpoints, "spool_bytes");
  CHECK(before > 500 * 1024);

  std::tie(code, err) = run_mqkit({"group", "rm", proxy.endpoints.stats, "abandoned"});
  CHECK(code == 2);  // without --yes
  CHECK_THAT(err, Catch::Contains("--yes"));
  ChildProcess rm(
      {mqkit::test::mqkit_binary(), "group", "rm", proxy.endpoints.stats, "abandoned", "--yes"});
  const auto said = rm.read_line(10s);
  REQUIRE(said);
  CHECK(*said == "deleted group abandoned and 5000 pending messages");
  CHECK(rm.wait(5s) == 0);
  CHECK(wait_for([&] { return counter(proxy.endpoints, "spool_bytes") < 200 * 1024; }, 10s));
  CHECK(counter(proxy.endpoints, "pending") == 0);
  ChildProcess ls({mqkit::test::mqkit_binary(), "group", "ls", proxy.endpoints.stats});
  std::string table;
  while (auto line = ls.read_line(5s)) table += *line + "\n";
  CHECK_THAT(table, Catch::Contains("live"));
  CHECK_THAT(table, !Catch::Contains("abandoned"));
}

TEST_CASE("a slow --exec worker's prefetched messages are not timed out or dead-lettered",
          "[integration][proxy][integrity]") {
  // Regression: the messages waiting behind a slow command in the worker ran
  // out their ack timeouts; every command exited 0 at attempt 1, yet the
  // proxy retried them and finally dead-lettered them.
  TempDir dir;
  auto proxy = start_proxy(dir, {"--group", "slow=#", "--ack-timeout", "600ms", "--heartbeat",
                                 "200ms", "--max-attempts", "1"});
  const auto ep = proxy.endpoints;
  ChildProcess worker({mqkit::test::mqkit_binary(), "consume", "--proxy", ep.out, "--group", "slow",
                       "--exec", "sleep 0.2; cat >> " + dir.file("handled")});
  auto [code, err] =
      run_mqkit({"send", "--proxy", ep.in, "--topic", "job", "--count", "12", "--size", "8"});
  REQUIRE(code == 0);
  CHECK(wait_for([&] { return counter(ep, "acked") + counter(ep, "dead") == 12; }, 30s));
  CHECK(counter(ep, "acked") == 12);
  CHECK(counter(ep, "dead") == 0);
  CHECK(counter(ep, "retried") == 0);
  worker.signal(SIGTERM);
  CHECK(worker.wait(10s) == 0);
}

TEST_CASE("a bridge waiting for its paused target keeps its lease: nothing dead-lettered",
          "[integration][proxy][bridge][integrity]") {
  // Regression (issue 14.9): the bridge waited for the target's confirms
  // under the consumer's socket lock, so it stopped heartbeating; the source
  // proxy took it for lost and, with --max-attempts 1, dead-lettered every
  // message although the target stored them all.
  TempDir dir;
  auto source = start_proxy(dir, {"--group", "bridge=#", "--heartbeat", "200ms", "--ack-timeout",
                                  "1s", "--max-attempts", "1"});
  TempDir target_dir;
  auto target = start_proxy(target_dir, {"--group", "sink=#"});
  const std::string topology = dir.file("bridge.yaml");
  mqkit::test::write_file(topology,
                          "devices:\n"
                          "  forward:\n"
                          "    kind: bridge\n"
                          "    source: proxy\n"
                          "    from: " +
                              source.endpoints.out +
                              "\n"
                              "    name: bridge\n"
                              "    to: " +
                              target.endpoints.in + "\n");
  ChildProcess bridge({mqkit::test::mqkit_binary(), "run", topology, "--quiet"});
  REQUIRE(wait_for([&] { return counter(source.endpoints, "group.bridge.workers") == 1; }, 20s));
  target.process.signal(SIGSTOP);
  auto [code, err] = run_mqkit(
      {"send", "--proxy", source.endpoints.in, "--topic", "t", "--count", "40", "--size", "8"});
  REQUIRE(code == 0);
  REQUIRE(wait_for([&] { return counter(source.endpoints, "delivered") >= 40; }, 20s));
  // The stall itself: longer than 5 heartbeats and the ack timeout, shorter
  // than the bridge's wait for confirms.
  std::this_thread::sleep_for(3s);
  target.process.signal(SIGCONT);
  CHECK(wait_for([&] { return counter(source.endpoints, "acked") == 40; }, 30s));
  CHECK(counter(source.endpoints, "dead") == 0);
  CHECK(counter(source.endpoints, "retried") == 0);
  CHECK(counter(source.endpoints, "lost_workers") == 0);
  CHECK(wait_for([&] { return counter(target.endpoints, "stored") == 40; }, 10s));
  bridge.signal(SIGTERM);
  CHECK(bridge.wait(20s) == 0);
}

TEST_CASE(
    "a worker that asks for unbounded credit and never reads or acks does not make the proxy "
    "queue its spool in memory",
    "[integration][proxy][integrity]") {
  // Regression (issue 14.7, the proxy's part): any credit was taken and the
  // workers' socket queue was unbounded, so a worker that attached with
  // credit 2^32-1 and never read had the proxy copy every ready message into
  // its send queue; each ack timeout then queued them again.
  TempDir dir;
  auto proxy = start_proxy(dir, {"--group", "hog=#", "--fsync", "never", "--ack-timeout", "300ms",
                                 "--heartbeat", "100ms", "--max-attempts", "100"});
  const auto ep = proxy.endpoints;
  constexpr int kMessages = 480, kSize = 100000;  // a 48 MB backlog
  REQUIRE(run_mqkit({"send", "--proxy", ep.in, "--topic", "t", "--count", std::to_string(kMessages),
                     "--size", std::to_string(kSize)})
              .first == 0);
  auto rss_kib = [&] { return mqkit::test::resident_bytes(proxy.process.pid()) / 1024; };
  const auto before = rss_kib();
  // A raw DEALER, as a pyzmq client would be: one message in its queue and a
  // tiny socket buffer, so what the proxy sends stays with the proxy. It
  // heartbeats, so the proxy keeps it and its deliveries time out again and again.
  zmq::context_t ctx;
  zmq::socket_t hog = mqkit::test::slow_reader(ctx, ep.out);
  const auto attach =
      encode_command({.command = Command::attach, .group = "hog", .credit = 0xFFFFFFFFu});
  const auto beat = encode_command({.command = Command::heartbeat});
  hog.send(zmq::buffer(attach), zmq::send_flags::none);
  REQUIRE(wait_for([&] {
    hog.send(zmq::buffer(beat), zmq::send_flags::dontwait);
    return counter(ep, "delivered") > 0;
  }));
  // Several ack timeouts go by while the hog stays attached.
  const auto until = std::chrono::steady_clock::now() + 2s;
  while (std::chrono::steady_clock::now() < until) {
    hog.send(zmq::buffer(beat), zmq::send_flags::dontwait);
    std::this_thread::sleep_for(50ms);
  }
  REQUIRE(counter(ep, "group.hog.workers") == 1);
  const auto delivered = counter(ep, "delivered");
  const auto grown_kib = rss_kib() - std::min(before, rss_kib());
  WARN("delivered to the hog " << delivered << " times " << kSize << " bytes of " << kMessages
                               << " messages; proxy RSS grew " << grown_kib << " KiB");
  CHECK(delivered * kSize <= 20u * 1024 * 1024);
#if !defined(__SANITIZE_ADDRESS__)  // its quarantine keeps freed memory resident
  CHECK(grown_kib <= 24u * 1024);
#endif
}

TEST_CASE(
    "a group the proxy could not write to its GROUPS file is refused, not kept: nothing confirmed "
    "for it is acked away at the next start",
    "[integration][proxy][integrity]") {
  // Regression: declare_group added the group in memory before writing the
  // GROUPS file; when the write failed the worker was told so, but the group
  // stayed: a second ATTACH was accepted, messages were stored and confirmed
  // for it, and the next start, not finding it in GROUPS, took it for a
  // removed group and acked its messages away.
  TempDir dir;
  auto proxy = std::make_unique<RunningProxy>(start_proxy(dir, {"--fsync", "always"}));
  // The GROUPS file cannot be replaced: its temporary name is taken by a directory.
  std::filesystem::create_directories(dir.file("spool") + "/GROUPS.new");
  zmq::context_t ctx;
  zmq::socket_t worker(ctx, zmq::socket_type::dealer);
  worker.set(zmq::sockopt::linger, 0);
  worker.set(zmq::sockopt::rcvtimeo, 10000);
  worker.connect(proxy->endpoints.out);
  const auto attach = encode_command({.command = Command::attach, .group = "g", .credit = 1});
  for (int i = 0; i < 2; ++i) {
    worker.send(zmq::buffer(attach), zmq::send_flags::none);
    zmq::message_t reply;
    REQUIRE(worker.recv(reply));
    CommandFrame c;
    REQUIRE(
        decode_command(std::string_view(static_cast<const char*>(reply.data()), reply.size()), c));
    INFO("attach " << i);
    CHECK(c.command == Command::error);
  }
  worker.close();
  mqkit::test::write_file(dir.file("one"), "one\n");
  const auto [code, err] = run_mqkit(
      {"send", "--proxy", proxy->endpoints.in, "--file", dir.file("one"), "--timeout", "3s"});
  if (code == 0) {  // confirmed stored: it must survive a restart
    proxy->process.signal(SIGKILL);
    REQUIRE(proxy->process.wait(10s));
    proxy.reset();
    std::filesystem::remove(dir.file("spool") + "/GROUPS.new");
    proxy = std::make_unique<RunningProxy>(start_proxy(dir, {"--fsync", "always"}));
    CHECK(counter(proxy->endpoints, "pending") == 1);
  } else {
    CHECK_THAT(err, Catch::Contains("unroutable"));
  }
}
