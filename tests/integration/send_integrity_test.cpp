// `mqkit send` as a client that users trust: a stop signal never invents a
// message, a slow input is not held back, and one key's messages keep their
// order in a stream or a proxy spool across a device that is paused, killed
// -9 and restarted while the producer runs.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "child_process.hpp"
#include "cli_support.hpp"
#include "helpers.hpp"

using namespace std::chrono_literals;
using mqkit::test::all_counters;
using mqkit::test::ChildProcess;
using mqkit::test::free_endpoints;
using mqkit::test::kAnyPort;
using mqkit::test::mqkit_binary;
using mqkit::test::read_lines;
using mqkit::test::run_mqkit;
using mqkit::test::RunningDevice;
using mqkit::test::start_device;
using mqkit::test::Stdio;
using mqkit::test::TempDir;
using mqkit::test::wait_for;

namespace {

std::uint64_t counter(const std::string& stats, const std::string& name) {
  const auto all = all_counters(stats);
  auto it = all.find(name);
  return it == all.end() ? 0 : it->second;
}

RunningDevice start_stream(const std::string& dir, const std::string& front = kAnyPort,
                           const std::string& back = kAnyPort,
                           const std::string& stats = kAnyPort) {
  return start_device({"stream", "--front", front, "--back", back, "--stats", stats, "--dir", dir});
}

// Every payload of a one-partition stream, read from the beginning.
std::vector<std::string> stream_payloads(const std::string& back, std::size_t count,
                                         const TempDir& dir) {
  const std::string out = dir.file("read.txt");
  const auto [code, err] = run_mqkit(
      {"consume", "--stream", back, "--from", "earliest", "--count", std::to_string(count)},
      Stdio{.stdout_file = out});
  INFO(err);
  REQUIRE(code == 0);
  return read_lines(out);
}

// The payloads are the decimal indexes `--count` generates. Returns the first
// index seen out of order ("3520 then 1473"), or empty: repeats of an index
// already seen are at-least-once re-sends and allowed, but a first
// appearance must follow every smaller index.
std::string first_reordering(const std::vector<std::string>& payloads) {
  std::set<long> seen;
  long highest = -1;
  for (const auto& p : payloads) {
    const long index = std::stol(p);
    if (!seen.insert(index).second) continue;
    if (index != highest + 1) return std::to_string(highest) + " then " + std::to_string(index);
    highest = index;
  }
  return {};
}

// Pauses the device (SIGSTOP) long enough for the producer's re-send timer
// (2 s) to fire, kills it with SIGKILL and lets `restart` bring it back.
template <typename Restart>
auto pause_kill_restart(RunningDevice& device, Restart restart) {
  device.process.signal(SIGSTOP);
  std::this_thread::sleep_for(2500ms);  // the scenario: a stall past the re-send time
  device.process.signal(SIGKILL);
  REQUIRE(device.process.wait(10s));
  return restart();
}

}  // namespace

TEST_CASE("SIGTERM while send waits for input sends nothing more and reports the truth",
          "[integration][cli][send]") {
  TempDir dir;
  auto stream = start_stream(dir.file("log"));
  ChildProcess send({mqkit_binary(), "send", "--stream", stream.endpoints.in},
                    Stdio{.pipe_stdin = true});
  // 64 lines fill one batch, so they leave at once; then send waits in a read.
  std::string lines;
  for (int i = 0; i < 64; ++i) lines += "line " + std::to_string(i) + "\n";
  send.write_stdin(lines);
  REQUIRE(wait_for([&] { return counter(stream.endpoints.stats, "appended") == 64; }));
  send.signal(SIGTERM);
  const auto code = send.wait(20s);
  INFO(send.stderr_text());
  REQUIRE(code);
  CHECK(*code == 1);  // stopped before the end of its input
  CHECK_THAT(send.stderr_text(), Catch::Contains("64 of 64 messages confirmed"));
  CHECK_THAT(send.stderr_text(), Catch::Contains("stopped"));
  CHECK(counter(stream.endpoints.stats, "appended") == 64);
  const auto payloads = stream_payloads(stream.endpoints.out, 64, dir);
  REQUIRE(payloads.size() == 64);
  CHECK(payloads.back() == "line 63");
}

TEST_CASE("send --stream sends a line as soon as it arrives, not after 64 of them",
          "[integration][cli][send]") {
  TempDir dir;
  auto stream = start_stream(dir.file("log"));
  ChildProcess send({mqkit_binary(), "send", "--stream", stream.endpoints.in},
                    Stdio{.pipe_stdin = true});
  send.write_stdin("first\n");  // and the input stays open, as with `tail -f`
  CHECK(wait_for([&] { return counter(stream.endpoints.stats, "appended") == 1; }));
  send.write_stdin("second\n");
  CHECK(wait_for([&] { return counter(stream.endpoints.stats, "appended") == 2; }));
  send.close_stdin();
  const auto code = send.wait(20s);
  INFO(send.stderr_text());
  CHECK(code == 0);
  CHECK_THAT(send.stderr_text(), Catch::Contains("2 of 2 messages confirmed"));
}

TEST_CASE("send --stream sends a line at once while the next line is still coming",
          "[integration][cli][send]") {
  TempDir dir;
  auto stream = start_stream(dir.file("log"));
  // A fifo as stdin, with room for all of it, so `send` finds the whole
  // input there at once: a line, then more than one read's worth of a line
  // whose end has not come yet.
  const std::string fifo = dir.file("in");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  const int writer = ::open(fifo.c_str(), O_RDWR | O_CLOEXEC);
  REQUIRE(writer >= 0);
  REQUIRE(::fcntl(writer, F_SETPIPE_SZ, 1 << 20) >= (1 << 20));
  const std::string input = "first\n" + std::string(100 * 1024, 'x');
  REQUIRE(::write(writer, input.data(), input.size()) == ssize_t(input.size()));
  ChildProcess send({mqkit_binary(), "send", "--stream", stream.endpoints.in},
                    Stdio{.stdin_file = fifo});
  CHECK(wait_for([&] { return counter(stream.endpoints.stats, "appended") == 1; }));
  REQUIRE(::write(writer, "\n", 1) == 1);
  ::close(writer);
  const auto code = send.wait(20s);
  INFO(send.stderr_text());
  CHECK(code == 0);
  CHECK_THAT(send.stderr_text(), Catch::Contains("2 of 2 messages confirmed"));
}

TEST_CASE("send --rate sends each message when due and a SIGTERM while it waits sends nothing more",
          "[integration][cli][send]") {
  TempDir dir;
  auto stream = start_stream(dir.file("log"));
  // The first message leaves at once (not with the 63 after it), the second
  // is due 10s later.
  ChildProcess send({mqkit_binary(), "send", "--stream", stream.endpoints.in, "--count", "3",
                     "--size", "8", "--rate", "0.1"});
  REQUIRE(wait_for([&] { return counter(stream.endpoints.stats, "appended") == 1; }));
  send.signal(SIGTERM);
  const auto code = send.wait(30s);
  INFO(send.stderr_text());
  REQUIRE(code);
  CHECK(*code == 1);
  CHECK_THAT(send.stderr_text(), Catch::Contains("1 of 1 messages confirmed"));
  CHECK(counter(stream.endpoints.stats, "appended") == 1);
}

TEST_CASE("one key's records stay in order in a stream paused, killed -9 and restarted under send",
          "[integration][cli][send][stream]") {
  TempDir dir;
  const auto ports = free_endpoints(3);
  const std::string log = dir.file("log");
  auto stream = start_stream(log, ports[0], ports[1], ports[2]);
  constexpr int kCount = 6000;
  ChildProcess send({mqkit_binary(), "send", "--stream", ports[0], "--key", "K", "--count",
                     std::to_string(kCount), "--size", "8", "--rate", "1000"});
  REQUIRE(wait_for([&] { return counter(ports[2], "appended") >= 500; }));
  auto restarted =
      pause_kill_restart(stream, [&] { return start_stream(log, ports[0], ports[1], ports[2]); });
  const auto code = send.wait(60s);
  INFO(send.stderr_text());
  REQUIRE(code == 0);
  const auto stored = counter(ports[2], "partition.0.next_offset");
  REQUIRE(stored >= kCount);
  const auto payloads = stream_payloads(ports[1], stored, dir);
  REQUIRE(payloads.size() == stored);
  CHECK(first_reordering(payloads) == "");
  CHECK(std::set<std::string>(payloads.begin(), payloads.end()).size() == kCount);
}

TEST_CASE("one key's messages stay in order in a proxy spool paused, killed -9 and restarted",
          "[integration][cli][send][proxy]") {
  TempDir dir;
  const auto ports = free_endpoints(3);
  auto start = [&] {
    return mqkit::test::start_proxy(dir, {"--group", "all=#"}, ports[0], ports[1], ports[2]);
  };
  auto proxy = start();
  constexpr int kCount = 6000;
  ChildProcess send({mqkit_binary(), "send", "--proxy", ports[0], "--key", "K", "--count",
                     std::to_string(kCount), "--size", "8", "--rate", "1000"});
  REQUIRE(wait_for([&] { return mqkit::test::stat_json(ports[2])["stored"] >= 500; }));
  auto restarted = pause_kill_restart(proxy, start);
  const auto code = send.wait(60s);
  INFO(send.stderr_text());
  REQUIRE(code == 0);
  // The group's worker takes them in spool order, one at a time.
  const std::string out = dir.file("read.txt");
  const auto [consumed, err] = run_mqkit({"consume", "--proxy", ports[1], "--group", "all",
                                          "--prefetch", "1", "--count", std::to_string(kCount)},
                                         Stdio{.stdout_file = out});
  INFO(err);
  REQUIRE(consumed == 0);
  const auto payloads = read_lines(out);
  CHECK(first_reordering(payloads) == "");
  CHECK(std::set<std::string>(payloads.begin(), payloads.end()).size() == kCount);
}
