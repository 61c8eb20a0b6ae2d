// The stream device driven as users drive it: `mqkit stream` as a process,
// `mqkit send --stream` and `mqkit consume --stream` as processes, logs on
// disk, kill -9 of the device and of a consumer, retention at work.
#include <catch2/catch.hpp>

#include <algorithm>
#include <csignal>
#include <ctime>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "child_process.hpp"
#include "cli_support.hpp"
#include "helpers.hpp"
#include "mqkit/reliable_producer.hpp"

using namespace std::chrono_literals;
using mqkit::test::all_counters;
using mqkit::test::ChildProcess;
using mqkit::test::kAnyPort;
using mqkit::test::read_lines;
using mqkit::test::run_mqkit;
using mqkit::test::RunningDevice;
using mqkit::test::start_device;
using mqkit::test::Stdio;
using mqkit::test::TempDir;
using mqkit::test::wait_for;

namespace {

RunningDevice start_stream(const std::string& dir, const std::vector<std::string>& extra = {},
                           const std::string& front = kAnyPort,
                           const std::string& back = kAnyPort) {
  std::vector<std::string> args{"stream", "--front", front, "--back", back, "--dir", dir};
  args.insert(args.end(), extra.begin(), extra.end());
  return start_device(args);
}

std::string generated(std::uint64_t i, std::size_t size) {
  std::string s = std::to_string(i);
  s.resize(size, '.');
  return s;
}

std::uint64_t counter(const std::string& stats, const std::string& name) {
  const auto all = all_counters(stats);
  auto it = all.find(name);
  return it == all.end() ? 0 : it->second;
}

// "P O KEY SEQ" lines an --exec consumer wrote: per key, the sequence numbers in
// the order this member handled them.
std::map<std::string, std::vector<int>> per_key(const std::string& path) {
  std::map<std::string, std::vector<int>> out;
  for (const auto& line : read_lines(path)) {
    std::istringstream words(line);
    std::string partition, offset, key;
    int seq = -1;
    if (words >> partition >> offset >> key >> seq) out[key].push_back(seq);
  }
  return out;
}

std::string rfc3339(std::chrono::system_clock::time_point t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()) % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char text[40];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &tm);
  return std::string(text) + "." + std::to_string(1000 + ms.count()).substr(1) + "Z";
}

}  // namespace

TEST_CASE("100000 records appended through the CLI come back after a restart in order and intact",
          "[integration][stream][cli]") {
  TempDir dir;
  const std::string log_dir = dir.file("orders");
  {
    auto stream = start_stream(log_dir, {"--fsync", "never"});
    const auto [code, err] =
        run_mqkit({"send", "--stream", stream.endpoints.in, "--count", "100000", "--size", "100"});
    INFO(err);
    REQUIRE(code == 0);
    CHECK(err.find("100000 of 100000 messages confirmed") != std::string::npos);
    stream.process.signal(SIGTERM);
    REQUIRE(stream.process.wait(10s) == 0);
  }
  auto stream = start_stream(log_dir);
  const std::string out = dir.file("out.txt");
  const auto [code, err] = run_mqkit(
      {"consume", "--stream", stream.endpoints.out, "--from", "earliest", "--count", "100000"},
      Stdio{.stdout_file = out});
  INFO(err);
  REQUIRE(code == 0);
  const auto lines = read_lines(out);
  REQUIRE(lines.size() == 100000);
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < lines.size(); ++i) wrong += lines[i] != generated(i, 100);
  CHECK(wrong == 0);
  const auto counters = all_counters(stream.endpoints.stats);
  CHECK(counters.at("partition.0.first_offset") == 0);
  CHECK(counters.at("partition.0.next_offset") == 100000);
}

TEST_CASE(
    "each key's records arrive in order across 4 partitions and 2 members and a killed "
    "member's partitions move without skipping any",
    "[integration][stream][cli]") {
  TempDir dir;
  auto stream = start_stream(dir.file("log"), {"--partitions", "4", "--heartbeat", "200ms"});
  auto member = [&](const std::string& file) {
    return ChildProcess({mqkit::test::mqkit_binary(), "consume", "--stream", stream.endpoints.out,
                         "--name", "billing", "--prefetch", "20", "--exec",
                         "printf '%s %s %s\\n' \"$MQKIT_PARTITION\" \"$MQKIT_OFFSET\" "
                         "\"$(cat)\" >> " +
                             file});
  };
  auto a = std::make_optional(member(dir.file("a.txt")));
  REQUIRE(
      wait_for([&] { return counter(stream.endpoints.stats, "consumer.billing.members") == 1; }));
  auto b = member(dir.file("b.txt"));
  REQUIRE(
      wait_for([&] { return counter(stream.endpoints.stats, "consumer.billing.members") == 2; }));

  constexpr int kKeys = 16, kPerKey = 60;
  {
    mqkit::ReliableProducer producer(stream.endpoints.in);
    for (int seq = 0; seq < kPerKey; ++seq)
      for (int k = 0; k < kKeys; ++k) {
        auto envelope = mqkit::Envelope::make("order.created");
        envelope.key = "customer-" + std::to_string(k);
        producer.send_async(envelope, *envelope.key + " " + std::to_string(seq),
                            [](const mqkit::PublishResult& r) { REQUIRE(r.ok()); });
      }
    REQUIRE(producer.flush(30s) == 0);
  }
  // Kill one member part-way: its partitions go to the other.
  REQUIRE(wait_for([&] { return read_lines(dir.file("a.txt")).size() >= 100; }, 60s));
  a->signal(SIGKILL);
  a.reset();
  auto handled_all = [&] {
    std::set<std::string> seen;
    for (const auto* file : {"a.txt", "b.txt"})
      for (const auto& [key, seqs] : per_key(dir.file(file)))
        for (int s : seqs) seen.insert(key + "/" + std::to_string(s));
    return seen.size() == static_cast<std::size_t>(kKeys * kPerKey);
  };
  REQUIRE(wait_for(handled_all, 90s));
  for (const auto* file : {"a.txt", "b.txt"}) {
    INFO(file);
    for (const auto& [key, seqs] : per_key(dir.file(file))) {
      INFO(key);
      // In append order within each member (a redelivery after the kill
      // starts the moved partition anew at the other member).
      CHECK(std::is_sorted(seqs.begin(), seqs.end()));
      CHECK(std::adjacent_find(seqs.begin(), seqs.end()) == seqs.end());
    }
  }
  const auto counters = all_counters(stream.endpoints.stats);
  CHECK(counters.at("consumer.billing.members") == 1);
  CHECK(counters.at("lost_readers") >= 1);
  // Every key stayed in one partition: a member saw each key from one partition only.
  std::map<std::string, std::set<std::string>> partitions_of_key;
  for (const auto* file : {"a.txt", "b.txt"})
    for (const auto& line : read_lines(dir.file(file))) {
      std::istringstream words(line);
      std::string partition, offset, key;
      words >> partition >> offset >> key;
      partitions_of_key[key].insert(partition);
    }
  for (const auto& [key, partitions] : partitions_of_key) CHECK(partitions.size() == 1);
  std::set<std::string> used;
  for (const auto& [key, partitions] : partitions_of_key) used.insert(*partitions.begin());
  CHECK(used.size() >= 2);  // 16 keys spread over more than one of the 4 partitions
}

TEST_CASE(
    "kill -9 of the stream device while producers append and a named consumer reads "
    "loses no confirmed record and skips nothing",
    "[integration][stream][cli]") {
  TempDir dir;
  const auto addresses = mqkit::test::free_endpoints(2);
  const std::string front = addresses[0], back = addresses[1];
  const std::string log_dir = dir.file("log");
  const std::vector<std::string> flags{"--heartbeat", "200ms", "--partitions", "2"};
  auto stream = std::make_optional(start_stream(log_dir, flags, front, back));
  const std::string out = dir.file("consumed.txt");
  ChildProcess consumer({mqkit::test::mqkit_binary(), "consume", "--stream", back, "--name",
                         "audit", "--prefetch", "200"},
                        Stdio{.stdout_file = out});
  constexpr int kRecords = 12000;
  ChildProcess producer({mqkit::test::mqkit_binary(), "send", "--stream", front, "--count",
                         std::to_string(kRecords), "--size", "64", "--rate", "4000", "--timeout",
                         "60s"});
  // Each kill comes once the (re)started device has stored 2000 records more:
  // under load however fast the machine is.
  auto appended = [&] {
    return counter(stream->endpoints.stats, "partition.0.next_offset") +
           counter(stream->endpoints.stats, "partition.1.next_offset");
  };
  std::uint64_t at_kill = 0;
  for (int kill = 0; kill < 3; ++kill) {
    REQUIRE(wait_for([&] { return appended() >= at_kill + 2000; }, 30s));
    at_kill = appended();
    stream->process.signal(SIGKILL);
    REQUIRE(stream->process.wait(5s));
    stream.reset();
    std::this_thread::sleep_for(200ms);
    stream.emplace(start_stream(log_dir, flags, front, back));
  }
  const auto sent = producer.wait(90s);
  INFO(producer.stderr_text());
  REQUIRE(sent == 0);  // every record confirmed
  auto consumed = [&] {
    std::set<std::string> seen;
    for (const auto& line : read_lines(out)) seen.insert(line);
    return seen;
  };
  // The named consumer went on by itself after every restart and, resuming
  // at or before its last processed position, skipped nothing.
  REQUIRE(wait_for([&] { return consumed().size() == kRecords; }, 60s));
  std::set<std::string> expected;
  for (int i = 0; i < kRecords; ++i) expected.insert(generated(static_cast<std::uint64_t>(i), 64));
  CHECK(consumed() == expected);
  // And every confirmed record is readable from the log.
  const auto [code, err] =
      run_mqkit({"consume", "--stream", back, "--count", std::to_string(kRecords)},
                Stdio{.stdout_file = dir.file("replay.txt")});
  INFO(err);
  REQUIRE(code == 0);
  const auto replay = read_lines(dir.file("replay.txt"));
  CHECK(std::set<std::string>(replay.begin(), replay.end()) == expected);
  const auto counters = all_counters(stream->endpoints.stats);
  const auto stored =
      counters.at("partition.0.next_offset") + counters.at("partition.1.next_offset");
  WARN("confirmed " << kRecords << ", stored " << stored << ", consumed lines "
                    << read_lines(out).size() << " after 3 kills");
  CHECK(stored >= static_cast<std::uint64_t>(kRecords));
}

TEST_CASE("readers start from a time or latest or an offset and past the end is a clear error",
          "[integration][stream][cli]") {
  TempDir dir;
  auto stream = start_stream(dir.file("log"));
  auto send = [&](const std::string& lines) {
    const std::string file = dir.file("in.txt");
    mqkit::test::write_file(file, lines);
    const auto [code, err] = run_mqkit({"send", "--stream", stream.endpoints.in, "--file", file});
    INFO(err);
    REQUIRE(code == 0);
  };
  auto consume = [&](const std::vector<std::string>& from_and_count) {
    std::vector<std::string> args{"consume", "--stream", stream.endpoints.out};
    args.insert(args.end(), from_and_count.begin(), from_and_count.end());
    const std::string out = dir.file("out.txt");
    const auto [code, err] = run_mqkit(args, Stdio{.stdout_file = out}, 20s);
    INFO(err);
    REQUIRE(code == 0);
    return read_lines(out);
  };
  send("a\nb\nc\n");
  std::this_thread::sleep_for(50ms);
  const auto between = std::chrono::system_clock::now();
  std::this_thread::sleep_for(50ms);
  send("d\ne\n");

  CHECK(consume({"--from", rfc3339(between), "--count", "2"}) ==
        std::vector<std::string>{"d", "e"});
  CHECK(consume({"--from", "-1h", "--count", "5"}) ==
        std::vector<std::string>{"a", "b", "c", "d", "e"});
  CHECK(consume({"--from", "3", "--count", "2"}) == std::vector<std::string>{"d", "e"});
  CHECK(consume({"--from", "0:1", "--count", "1"}) == std::vector<std::string>{"b"});

  // latest: only what is appended after the reader came.
  ChildProcess latest({mqkit::test::mqkit_binary(), "consume", "--stream", stream.endpoints.out,
                       "--from", "latest", "--count", "1"});
  REQUIRE(wait_for([&] { return counter(stream.endpoints.stats, "readers") == 1; }));
  send("f\n");
  const auto line = latest.read_line(10s);
  REQUIRE(line);
  CHECK(*line == "f");
  CHECK(latest.wait(10s) == 0);

  const auto [code, err] = run_mqkit({"consume", "--stream", stream.endpoints.out, "--from", "99"});
  CHECK(code != 0);
  CHECK(err.find("offset 99 is past the end of partition 0 (its next offset is 6)") !=
        std::string::npos);
  CHECK(std::count(err.begin(), err.end(), '\n') == 1);
  const auto [bad_code, bad_err] =
      run_mqkit({"consume", "--stream", stream.endpoints.out, "--from", "yesterday"});
  CHECK(bad_code != 0);
  CHECK(bad_err.find("is not earliest, latest") != std::string::npos);
}

TEST_CASE(
    "retention deletes whole old segments by size and by age but never the active one and a "
    "reader that fell behind is told and goes on from the earliest record",
    "[integration][stream][cli]") {
  TempDir dir;
  const std::string log_dir = dir.file("log");
  SECTION("by size") {
    auto stream = start_stream(log_dir, {"--segment-size", "8KiB", "--retain-bytes", "32KiB"});
    const auto [code, err] =
        run_mqkit({"send", "--stream", stream.endpoints.in, "--count", "10", "--size", "100"});
    REQUIRE(code == 0);
    // A named reader that stops after 5 records: its position is 5.
    const auto [c1, e1] =
        run_mqkit({"consume", "--stream", stream.endpoints.out, "--name", "slow", "--count", "5"},
                  Stdio{.stdout_file = dir.file("first.txt")});
    REQUIRE(c1 == 0);
    const auto [c2, e2] =
        run_mqkit({"send", "--stream", stream.endpoints.in, "--count", "3000", "--size", "100"});
    REQUIRE(c2 == 0);
    // Past 32 KiB the oldest whole segments go, until the rest fits (or only
    // the active segment, never deleted, is left).
    REQUIRE(wait_for(
        [&] {
          const auto c = all_counters(stream.endpoints.stats);
          return c.at("partition.0.first_offset") > 5 &&
                 (c.at("partition.0.bytes") <= 32 * 1024 || c.at("partition.0.segments") == 1);
        },
        10s));
    const auto counters = all_counters(stream.endpoints.stats);
    CHECK(counters.at("partition.0.next_offset") == 3010);
    CHECK(counters.at("retention_deleted") == counters.at("partition.0.first_offset"));
    // The oldest files are gone; what is left starts at the first retained offset.
    std::vector<std::string> segments;
    for (const auto& e : std::filesystem::directory_iterator(log_dir + "/p0"))
      if (e.path().extension() == ".log") segments.push_back(e.path().filename().string());
    std::sort(segments.begin(), segments.end());
    REQUIRE(!segments.empty());
    CHECK(std::stoull(segments.front().substr(0, 20)) == counters.at("partition.0.first_offset"));
    CHECK(segments.size() == counters.at("partition.0.segments"));
    // The newest record (in the active segment) is there.
    const auto [c4, e4] =
        run_mqkit({"consume", "--stream", stream.endpoints.out, "--from", "3009", "--count", "1"},
                  Stdio{.stdout_file = dir.file("newest.txt")});
    REQUIRE(c4 == 0);
    CHECK(read_lines(dir.file("newest.txt")) == std::vector<std::string>{generated(2999, 100)});

    const auto [c3, e3] =
        run_mqkit({"consume", "--stream", stream.endpoints.out, "--name", "slow", "--count", "1"},
                  Stdio{.stdout_file = dir.file("after.txt")});
    INFO(e3);
    REQUIRE(c3 == 0);
    CHECK(e3.find("offset 5 of partition 0 is no longer retained") != std::string::npos);
    CHECK(read_lines(dir.file("after.txt")) ==
          std::vector<std::string>{generated(counters.at("partition.0.first_offset") - 10, 100)});
    CHECK(counter(stream.endpoints.stats, "position_resets") == 1);
  }
  SECTION("by age") {
    auto stream = start_stream(log_dir, {"--segment-size", "8KiB", "--retain-age", "1s"});
    const auto [code, err] =
        run_mqkit({"send", "--stream", stream.endpoints.in, "--count", "1000", "--size", "100"});
    REQUIRE(code == 0);
    // A second batch, so the first fills at least one whole segment of its own.
    REQUIRE(run_mqkit({"send", "--stream", stream.endpoints.in, "--count", "10", "--size", "100"})
                .first == 0);
    REQUIRE(wait_for(
        [&] {
          const auto c = all_counters(stream.endpoints.stats);
          return c.at("partition.0.first_offset") > 0 && c.at("partition.0.segments") == 1;
        },
        10s));
    const auto counters = all_counters(stream.endpoints.stats);
    // Only the active segment is left: never deleted, however old.
    CHECK(counters.at("partition.0.segments") == 1);
    CHECK(counters.at("partition.0.next_offset") == 1010);
    CHECK(counters.at("partition.0.records") > 0);
    const auto [c2, e2] = run_mqkit({"consume", "--stream", stream.endpoints.out, "--count", "1"},
                                    Stdio{.stdout_file = dir.file("oldest.txt")});
    REQUIRE(c2 == 0);
    // Offsets 0-999 hold the first send's records, 1000-1009 the second's
    // (the active segment may start inside the first send's).
    const auto first = counters.at("partition.0.first_offset");
    CHECK(read_lines(dir.file("oldest.txt")) ==
          std::vector<std::string>{generated(first < 1000 ? first : first - 1000, 100)});
  }
}

TEST_CASE(
    "a topology feeds a stream from a proxy group and a forwarder and replays the stream "
    "into another proxy's work queue with ids unchanged",
    "[integration][stream][cli][run]") {
  TempDir dir;
  std::map<std::string, std::string> ep;
  const auto addresses = mqkit::test::free_endpoints(8);
  std::size_t next = 0;
  for (const auto* name : {"orders", "order-work", "events-in", "events-out", "log-in", "log-out",
                           "replay-in", "replay-work"})
    ep[name] = addresses[next++];
  std::string yaml = "endpoints:\n";
  for (const auto& [name, address] : ep) yaml += "  " + name + ": " + address + "\n";
  yaml += R"(devices:
  orders:
    kind: proxy
    front: orders
    back: order-work
    spool: spool
    groups:
      audit: order.#
  events:
    kind: forwarder
    in: events-in
    out: events-out
  log:
    kind: stream
    front: log-in
    back: log-out
    dir: log
    partitions: 2
  orders-to-log:
    kind: bridge
    source: proxy
    from: order-work
    name: audit
    to: log-in
  events-to-log:
    kind: bridge
    source: forwarder
    from: events-out
    topics: [event.]
    to: log-in
  replay:
    kind: proxy
    front: replay-in
    back: replay-work
    spool: replay-spool
    groups:
      rebuild: "#"
  log-to-replay:
    kind: bridge
    source: stream
    from: log-out
    name: rebuild-feed
    start: earliest
    to: replay-in
)";
  const std::string file = dir.file("topology.yaml");
  mqkit::test::write_file(file, yaml);
  const auto [check, check_err] = run_mqkit({"run", "--check", file});
  INFO(check_err);
  REQUIRE(check == 0);
  ChildProcess run({mqkit::test::mqkit_binary(), "run", file, "--quiet"});
  for (int i = 0; i < 7; ++i) {
    const auto up = run.read_line(15s);
    INFO(run.stderr_text());
    REQUIRE(up);
  }
  const auto [sent, sent_err] = run_mqkit({"send", "--proxy", ep["orders"], "--topic",
                                           "order.created", "--count", "300", "--size", "20"});
  INFO(sent_err);
  REQUIRE(sent == 0);
  const auto [published, pub_err] =
      run_mqkit({"send", "--to", ep["events-in"], "--pub", "--topic", "event.shipped", "--count",
                 "100", "--size", "20", "--wait", "10s"});
  INFO(pub_err);
  REQUIRE(published == 0);

  auto ids = [](const std::string& path) {
    std::set<std::string> out;
    for (const auto& line : read_lines(path)) {
      const auto at = line.find("\"id\":\"");
      if (at != std::string::npos) out.insert(line.substr(at + 6, 36));
    }
    return out;
  };
  const auto [read, read_err] =
      run_mqkit({"consume", "--stream", ep["log-out"], "--count", "400", "--json"},
                Stdio{.stdout_file = dir.file("log.json")}, 60s);
  INFO(read_err);
  REQUIRE(read == 0);
  const auto [replayed, replay_err] = run_mqkit(
      {"consume", "--proxy", ep["replay-work"], "--group", "rebuild", "--count", "400", "--json"},
      Stdio{.stdout_file = dir.file("replay.json")}, 60s);
  INFO(replay_err);
  REQUIRE(replayed == 0);
  const auto in_log = ids(dir.file("log.json"));
  CHECK(in_log.size() == 400);
  CHECK(ids(dir.file("replay.json")) == in_log);
  run.signal(SIGTERM);
  CHECK(run.wait(20s) == 0);
}

TEST_CASE("a stream directory has one owner and a fixed partition count",
          "[integration][stream][cli]") {
  TempDir dir;
  const std::string log_dir = dir.file("log");
  {
    auto stream = start_stream(log_dir, {"--partitions", "2"});
    const auto [code, err] =
        run_mqkit({"stream", "--front", kAnyPort, "--back", kAnyPort, "--dir", log_dir});
    CHECK(code == 1);
    CHECK_THAT(err, Catch::Contains(log_dir + " is in use by another process (pid " +
                                    std::to_string(stream.process.pid()) + ")"));
    REQUIRE(run_mqkit({"send", "--stream", stream.endpoints.in, "--count", "4", "--size", "10"})
                .first == 0);
    stream.process.signal(SIGTERM);
    REQUIRE(stream.process.wait(10s) == 0);
  }
  const auto [code, err] = run_mqkit(
      {"stream", "--front", kAnyPort, "--back", kAnyPort, "--dir", log_dir, "--partitions", "3"});
  CHECK(code == 2);  // the flag does not fit the directory: a usage error
  CHECK_THAT(err, Catch::Contains("holds a stream of 2 partitions") &&
                      Catch::Contains("use --partitions 2 or another --dir"));
  // Without --partitions the stream opens with the count it has.
  auto stream = start_stream(log_dir);
  CHECK(all_counters(stream.endpoints.stats).at("partitions") == 2);
}

TEST_CASE(
    "a stream under --fsync interval=50ms stores and confirms, keeps what it confirmed across a "
    "kill -9, and a bad --fsync is a one-line error",
    "[integration][stream][cli]") {
  TempDir dir;
  const std::string log_dir = dir.file("log");
  {
    auto stream = start_stream(log_dir, {"--fsync", "interval=50ms"});
    const auto [code, err] =
        run_mqkit({"send", "--stream", stream.endpoints.in, "--count", "200", "--size", "50"});
    INFO(err);
    REQUIRE(code == 0);
    CHECK_THAT(err, Catch::Contains("200 of 200 messages confirmed"));
    stream.process.signal(SIGKILL);
    (void)stream.process.wait(10s);
  }
  auto stream = start_stream(log_dir, {"--fsync", "interval=50ms"});
  const std::string out = dir.file("out.txt");
  const auto [code, err] = run_mqkit(
      {"consume", "--stream", stream.endpoints.out, "--from", "earliest", "--count", "200"},
      Stdio{.stdout_file = out});
  INFO(err);
  REQUIRE(code == 0);
  const auto lines = read_lines(out);
  REQUIRE(lines.size() == 200);
  for (std::size_t i = 0; i < lines.size(); ++i) CHECK(lines[i] == generated(i, 50));
  for (const std::string bad : {"sometimes", "interval=0ms", "interval=soon"}) {
    const auto [bad_code, bad_err] = run_mqkit({"stream", "--front", kAnyPort, "--back", kAnyPort,
                                                "--dir", dir.file("other"), "--fsync", bad});
    INFO(bad_err);
    CHECK(bad_code == 2);
    CHECK_THAT(bad_err, Catch::Contains("--fsync"));
    CHECK(std::count(bad_err.begin(), bad_err.end(), '\n') == 1);
  }
}
