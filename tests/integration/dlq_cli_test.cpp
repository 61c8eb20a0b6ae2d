// `mqkit dlq`: dead letters made by a real proxy, listed, shown, replayed
// through the running proxy (which then removes them), and purged directly
// from the files once no proxy owns them.
#include <algorithm>
#include <catch2/catch.hpp>

#include <csignal>
#include <filesystem>
#include <set>

#include <zmq.hpp>

#include "child_process.hpp"
#include "cli_support.hpp"
#include "helpers.hpp"
#include "mqkit/devices/stats.hpp"
#include "mqkit/spool.hpp"
#include "protocol/commands.hpp"

using namespace std::chrono_literals;
using mqkit::test::ChildProcess;
using mqkit::test::kAnyPort;
using mqkit::test::run_mqkit;
using mqkit::test::TempDir;

namespace {

std::vector<std::string> output_of(const std::vector<std::string>& args) {
  std::vector<std::string> argv{mqkit::test::mqkit_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  ChildProcess p(argv);
  std::vector<std::string> lines;
  while (auto line = p.read_line(10s)) lines.push_back(*line);
  const auto code = p.wait(10s);
  INFO(p.stderr_text());
  CHECK(code == 0);
  return lines;
}

std::vector<std::string> ids_in(const std::vector<std::string>& ls_lines) {
  std::vector<std::string> ids;
  for (std::size_t i = 1; i < ls_lines.size(); ++i) ids.push_back(ls_lines[i].substr(0, 36));
  return ids;
}

}  // namespace

TEST_CASE("dead letters are listed, shown, replayed through the proxy and purged",
          "[integration][dlq]") {
  TempDir dir;
  const std::string dlq = dir.file("dlq");
  auto device = mqkit::test::start_proxy(
      dir, {"--group", "billing=order.#", "--max-attempts", "2", "--backoff", "fixed:20ms"});
  auto& proxy = device.process;
  const auto ep = device.endpoints;
  // Billing is broken for "bad" orders while the marker file exists.
  mqkit::test::write_file(dir.file("broken"), "");
  ChildProcess worker(
      {mqkit::test::mqkit_binary(), "consume", "--proxy", ep.out, "--group", "billing", "--exec",
       "if grep -q bad && [ -e " + dir.file("broken") + " ]; then echo declined >&2; exit 3; fi"},
      mqkit::test::Stdio{false, "", dir.file("worker.out")});
  mqkit::test::write_file(dir.file("orders"), "ok 1\nbad 1\nok 2\nbad 2\nbad 3\n");
  auto [code, err] = run_mqkit(
      {"send", "--proxy", ep.in, "--topic", "order.created", "--file", dir.file("orders")});
  REQUIRE(code == 0);
  REQUIRE(
      mqkit::test::wait_for([&] { return mqkit::test::stat_json(ep.stats).at("dead") == 3; }, 20s));

  const auto table = output_of({"dlq", "ls", dlq});
  REQUIRE(table.size() == 4);
  CHECK_THAT(table[0], Catch::StartsWith("ID "));
  CHECK_THAT(table[0], Catch::Contains("LAST_ERROR"));
  CHECK_THAT(table[1],
             Catch::Contains("billing  2         max attempts  command exited with status 3"));
  const auto ids = ids_in(table);
  const auto json = output_of({"dlq", "ls", dlq, "--json"});
  REQUIRE(json.size() == 1);
  CHECK_THAT(json[0], Catch::Contains("\"attempts\":2"));

  // `show` gives the id and the payload. Which of the three died first
  // depends on timing ("bad 2" may: a retry waits for its ATTEMPT record),
  // so "bad 1" is looked for.
  const auto bad_1 = std::find_if(ids.begin(), ids.end(), [&](const std::string& id) {
    return output_of({"dlq", "show", dlq, id}).back() == "bad 1";
  });
  REQUIRE(bad_1 != ids.end());
  CHECK(output_of({"dlq", "show", dlq, *bad_1}).front() == "id:            " + *bad_1);
  std::tie(code, err) = run_mqkit({"dlq", "show", dlq, "01a22000-0000-7000-8000-000000000000"});
  CHECK(code == 2);
  CHECK_THAT(err, Catch::Contains("no dead letter"));

  // Fixed: replay two of them through the running proxy; the third stays.
  std::filesystem::remove(dir.file("broken"));
  const auto dry = output_of(
      {"dlq", "replay", dlq, "--proxy", ep.in, "--id", ids[0], "--id", ids[1], "--dry-run"});
  CHECK(dry.back() == "2 dead letters would be replayed through " + ep.in);
  CHECK(ids_in(output_of({"dlq", "ls", dlq})).size() == 3);  // a dry run changes nothing
  std::tie(code, err) =
      run_mqkit({"dlq", "replay", dlq, "--proxy", ep.in, "--id", ids[0], "--id", ids[1]});
  INFO(err);
  CHECK(code == 0);
  CHECK_THAT(err, Catch::Contains("2 of 2 dead letters replayed"));
  CHECK(ids_in(output_of({"dlq", "ls", dlq})) == std::vector<std::string>{ids[2]});
  REQUIRE(mqkit::test::wait_for([&] { return mqkit::test::stat_json(ep.stats).at("acked") == 4; },
                                10s));
  // The copies went to billing only and were handled: "bad 1" and "bad 2" now passed.

  // Purge needs a selection; with the proxy gone it edits the files directly.
  std::tie(code, err) = run_mqkit({"dlq", "purge", dlq});
  CHECK(code == 2);
  worker.signal(SIGTERM);
  CHECK(worker.wait(10s) == 0);
  proxy.signal(SIGTERM);
  REQUIRE(proxy.wait(15s) == 0);
  std::tie(code, err) = run_mqkit({"dlq", "purge", dlq, "--older-than", "1h"});
  CHECK(code == 0);
  CHECK_THAT(err, Catch::Contains("purged 0 dead letters"));
  std::tie(code, err) = run_mqkit({"dlq", "purge", dlq, "--all"});
  CHECK(code == 0);
  CHECK_THAT(err, Catch::Contains("purged 1 dead letters"));
  CHECK(output_of({"dlq", "ls", dlq}) == std::vector<std::string>{"no dead letters in " + dlq});
}

TEST_CASE("dlq tools work while the proxy keeps writing dead letters: none lost or doubled",
          "[integration][dlq]") {
  TempDir dir;
  const std::string dlq = dir.file("dlq");
  auto device =
      mqkit::test::start_proxy(dir, {"--group", "g=#", "--max-attempts", "1", "--fsync", "never"});
  auto& proxy = device.process;
  const auto ep = device.endpoints;
  // Every delivery fails at once: a steady stream of new dead letters.
  ChildProcess worker({mqkit::test::mqkit_binary(), "consume", "--proxy", ep.out, "--group", "g",
                       "--exec", "exit 1"});
  constexpr int kMessages = 600;
  ChildProcess producer({mqkit::test::mqkit_binary(), "send", "--proxy", ep.in, "--topic", "t",
                         "--count", std::to_string(kMessages), "--size", "20", "--rate", "300"});
  std::size_t purged = 0, replayed = 0, listings = 0;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < deadline) {
    const bool producing = !producer.wait(0ms).has_value();
    // A listing while the proxy writes: every id once.
    const auto listed = ids_in(output_of({"dlq", "ls", dlq}));
    CHECK(std::set<std::string>(listed.begin(), listed.end()).size() == listed.size());
    ++listings;
    if (listed.size() >= 4 && replayed < 20) {  // copies die again under new ids
      const auto [code, err] =
          run_mqkit({"dlq", "replay", dlq, "--proxy", ep.in, "--id", listed[0], "--id", listed[1]});
      INFO(err);
      CHECK(code == 0);
      replayed += 2;
      CHECK_FALSE(ids_in(output_of({"dlq", "ls", dlq})).empty());
    }
    if (listed.size() >= 10) {
      const auto [code, err] =
          run_mqkit({"dlq", "purge", dlq, "--id", listed[2], "--id", listed[3], "--id", listed[4]});
      CHECK(code == 0);
      CHECK_THAT(err, Catch::Contains("purged 3 dead letters"));
      purged += 3;
    }
    if (!producing && mqkit::test::stat_json(ep.stats).at("pending") == 0) break;
  }
  REQUIRE(producer.wait(10s) == 0);
  REQUIRE(mqkit::test::wait_for(
      [&] {
        const auto s = mqkit::test::stat_json(ep.stats);
        return s.at("dead") == kMessages + replayed && s.at("pending") == 0;
      },
      20s));
  const auto final_ids = ids_in(output_of({"dlq", "ls", dlq}));
  CHECK(std::set<std::string>(final_ids.begin(), final_ids.end()).size() == final_ids.size());
  // Every message died once; replayed ones were replaced by their copies;
  // only the purged ones are gone.
  CHECK(final_ids.size() + purged == kMessages);
  CHECK(listings > 3);
  WARN(listings << " listings, " << replayed << " replayed, " << purged
                << " purged while the proxy wrote " << kMessages + replayed << " dead letters");
  worker.signal(SIGTERM);
  proxy.signal(SIGTERM);
  CHECK(proxy.wait(15s) == 0);
}

namespace {

// A worker that takes up to `credit` messages and never answers: with
// --max-attempts 1 every one becomes a dead letter at its ack timeout.
class SilentWorker {
 public:
  SilentWorker(const std::string& endpoint, const std::string& group, std::uint32_t credit)
      : socket_(ctx_, zmq::socket_type::dealer) {
    using namespace mqkit::detail::protocol;
    socket_.set(zmq::sockopt::linger, 0);
    socket_.connect(endpoint);
    const auto attach =
        encode_command({.command = Command::attach, .group = group, .credit = credit});
    socket_.send(zmq::buffer(attach), zmq::send_flags::none);
  }

 private:
  zmq::context_t ctx_;
  zmq::socket_t socket_;
};

std::size_t dead_letter_count(const std::string& dlq) {
  return mqkit::read_spool(dlq).dead_letters.size();
}

}  // namespace

TEST_CASE("dlq replay refuses before publishing anything when it could not remove what it replays",
          "[integration][dlq][integrity]") {
  // Regression: with a proxy that owns the DLQ but has no admin endpoint (a
  // topology proxy without stats:), each replay stored its copies, then
  // failed to remove the dead letters: every run delivered them once more.
  TempDir dir;
  const std::string dlq = dir.file("dlq");
  const auto endpoints = mqkit::test::free_endpoints(2);
  const std::string topology = dir.file("topology.yaml");
  mqkit::test::write_file(topology,
                          "endpoints:\n"
                          "  orders-in: " +
                              endpoints[0] +
                              "\n"
                              "  orders-work: " +
                              endpoints[1] +
                              "\n"
                              "devices:\n"
                              "  orders:\n"
                              "    kind: proxy\n"
                              "    front: orders-in\n"
                              "    back: orders-work\n"
                              "    spool: " +
                              dir.file("spool") +
                              "\n"
                              "    dlq: " +
                              dlq +
                              "\n"
                              "    max_attempts: 1\n"
                              "    ack_timeout: 300ms\n"
                              "    groups:\n"
                              "      g: \"#\"\n");
  ChildProcess run({mqkit::test::mqkit_binary(), "run", topology, "--quiet"});
  {
    const auto up = run.read_line(15s);
    INFO(run.stderr_text());
    REQUIRE(up);
  }
  const mqkit::test::DeviceEndpoints ep{endpoints[0], endpoints[1], ""};
  {
    SilentWorker worker(ep.out, "g", 100);
    auto [code, err] =
        run_mqkit({"send", "--proxy", ep.in, "--topic", "t", "--count", "3", "--size", "8"});
    REQUIRE(code == 0);
    REQUIRE(mqkit::test::wait_for([&] { return dead_letter_count(dlq) == 3; }, 20s));
  }
  auto [code, err] = run_mqkit({"dlq", "replay", dlq, "--proxy", ep.in});
  CHECK(code != 0);
  CHECK_THAT(err, Catch::Contains("no admin endpoint"));
  run.signal(SIGTERM);
  REQUIRE(run.wait(15s) == 0);
  const auto spool = mqkit::read_spool(dir.file("spool"));
  CHECK(spool.pending.at("g") == 0);  // no copy was stored
  CHECK(dead_letter_count(dlq) == 3);
}

TEST_CASE("dlq replay of 1,200 dead letters is exactly once, also when run again after a crash",
          "[integration][dlq][integrity]") {
  // Regression: the admin decoder refused more than 16 words, so replay
  // failed past 11 dead letters (after storing its copies); and a second
  // replay of the same dead letters stored new copies (new random ids,
  // `duplicate` counted as a refusal).
  constexpr int kDead = 1200;
  TempDir dir;
  const std::string dlq = dir.file("dlq");
  const std::vector<std::string> flags{"--group",       "g=#",   "--max-attempts", "1",
                                       "--ack-timeout", "300ms", "--fsync",        "never"};
  auto device = mqkit::test::start_proxy(dir, flags);
  {
    SilentWorker worker(device.endpoints.out, "g", 2 * kDead);
    auto [code, err] = run_mqkit({"send", "--proxy", device.endpoints.in, "--topic", "t", "--count",
                                  std::to_string(kDead), "--size", "8"});
    REQUIRE(code == 0);
    REQUIRE(mqkit::test::wait_for(
        [&] { return mqkit::test::stat_json(device.endpoints.stats).at("dead") == kDead; }, 30s));
  }
  REQUIRE(mqkit::test::wait_for([&] { return dead_letter_count(dlq) == kDead; }));
  // The silent worker is gone (else the copies would die with it).
  REQUIRE(mqkit::test::wait_for(
      [&] { return mqkit::test::stat_json(device.endpoints.stats).at("workers") == 0; }, 20s));
  // What the DLQ held before the replay: put back later, as if the replay
  // had crashed after publishing and before removing.
  const std::string saved = dir.file("dlq-before");
  std::filesystem::copy(dlq, saved);
  std::filesystem::remove(saved + "/LOCK");

  auto [code, err] = run_mqkit({"dlq", "replay", dlq, "--proxy", device.endpoints.in});
  INFO(err);
  REQUIRE(code == 0);
  CHECK_THAT(err, Catch::Contains(std::to_string(kDead) + " of " + std::to_string(kDead)));
  CHECK(dead_letter_count(dlq) == 0);
  CHECK(mqkit::test::stat_json(device.endpoints.stats).at("pending") == kDead);

  device.process.signal(SIGTERM);
  REQUIRE(device.process.wait(15s) == 0);
  std::filesystem::remove_all(dlq);
  std::filesystem::copy(saved, dlq);
  auto restarted = mqkit::test::start_proxy(dir, flags);
  std::tie(code, err) = run_mqkit({"dlq", "replay", dlq, "--proxy", restarted.endpoints.in});
  INFO(err);
  CHECK(code == 0);
  CHECK(dead_letter_count(dlq) == 0);
  const auto stats = mqkit::test::stat_json(restarted.endpoints.stats);
  CHECK(stats.at("duplicate") == kDead);  // each copy was stored once, by the first run
  CHECK(stats.at("stored") == 0);
  CHECK(stats.at("pending") == kDead);
  restarted.process.signal(SIGTERM);
  CHECK(restarted.process.wait(15s) == 0);
}

TEST_CASE("a replayed copy that dies again is replayed again, not taken for its original",
          "[integration][dlq]") {
  // Regression: the replayed copy's id was the dead letter's id with a hash
  // of the group XORed in, so the copy of a copy had the original's id: the
  // proxy still remembered it (dedup window) and answered `duplicate`; the
  // replay counted that as done and removed the dead letter, which was
  // never delivered again.
  TempDir dir;
  const std::string dlq = dir.file("dlq");
  auto device = mqkit::test::start_proxy(
      dir, {"--group", "billing=#", "--max-attempts", "1", "--backoff", "fixed:20ms"});
  const auto ep = device.endpoints;
  mqkit::test::write_file(dir.file("broken"), "");
  ChildProcess worker(
      {mqkit::test::mqkit_binary(), "consume", "--proxy", ep.out, "--group", "billing", "--exec",
       "if [ -e " + dir.file("broken") + " ]; then exit 3; fi; cat >> " + dir.file("handled")});
  mqkit::test::write_file(dir.file("orders"), "order 1\n");
  auto [code, err] =
      run_mqkit({"send", "--proxy", ep.in, "--topic", "t", "--file", dir.file("orders")});
  REQUIRE(code == 0);
  auto stat = [&](const char* name) { return mqkit::test::stat_json(ep.stats).at(name); };
  REQUIRE(mqkit::test::wait_for([&] { return stat("dead") == 1; }, 20s));
  // Still broken: the copy dies as well.
  std::tie(code, err) = run_mqkit({"dlq", "replay", dlq, "--proxy", ep.in});
  INFO(err);
  REQUIRE(code == 0);
  REQUIRE(mqkit::test::wait_for([&] { return stat("dead") == 2; }, 20s));
  // Fixed: the copy of the copy is stored and handled.
  std::filesystem::remove(dir.file("broken"));
  std::tie(code, err) = run_mqkit({"dlq", "replay", dlq, "--proxy", ep.in});
  INFO(err);
  CHECK(code == 0);
  CHECK(stat("duplicate") == 0);
  CHECK(mqkit::test::wait_for([&] { return stat("acked") == 1; }, 10s));
  CHECK(mqkit::test::read_lines(dir.file("handled")) == std::vector<std::string>{"order 1"});
  worker.signal(SIGTERM);
  CHECK(worker.wait(10s) == 0);
}

TEST_CASE("dlq replay --delay re-schedules the copies instead of replaying them at once",
          "[integration][dlq][schedule]") {
  TempDir dir;
  auto device = mqkit::test::start_proxy(dir, {"--group", "billing=#", "--max-attempts", "1"});
  const auto ep = device.endpoints;
  {
    ChildProcess worker({mqkit::test::mqkit_binary(), "consume", "--proxy", ep.out, "--group",
                         "billing", "--exec", "exit 3"},
                        mqkit::test::Stdio{false, "", dir.file("worker.out")});
    mqkit::test::write_file(dir.file("orders"), "a\nb\n");
    const auto [code, err] =
        run_mqkit({"send", "--proxy", ep.in, "--topic", "t", "--file", dir.file("orders")});
    REQUIRE(code == 0);
    REQUIRE(mqkit::test::wait_for([&] { return mqkit::test::stat_json(ep.stats).at("dead") == 2; },
                                  20s));
  }  // the worker is gone: nothing would take a replayed copy either way
  auto [code, err] = run_mqkit(
      {"dlq", "replay", dir.file("dlq"), "--proxy", ep.in, "--group", "billing", "--delay", "1h"});
  INFO(err);
  CHECK(code == 0);
  CHECK_THAT(err, Catch::Contains("2 of 2 dead letters replayed"));
  CHECK(output_of({"dlq", "ls", dir.file("dlq")}) ==
        std::vector<std::string>{"no dead letters in " + dir.file("dlq")});
  CHECK(mqkit::test::wait_for(
      [&] { return mqkit::devices::query_stats(ep.stats, 5s).get("group.billing.scheduled") == 2; },
      10s));
  std::tie(code, err) = run_mqkit({"dlq", "replay", dir.file("dlq"), "--proxy", ep.in, "--group",
                                   "billing", "--delay", "soon"});
  CHECK(code == 2);
}
