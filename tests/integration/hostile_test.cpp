// Hostile peers against every port of every device: connection floods of
// random bytes (not even ZMTP), garbage ZeroMQ frames, frames over the size
// limit. Each device must keep serving its well-behaved clients.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <catch2/catch.hpp>
#include <zmq.hpp>

#include <csignal>
#include <random>
#include <set>

#include "child_process.hpp"
#include "cli_support.hpp"
#include "helpers.hpp"

using namespace std::chrono_literals;
using mqkit::test::ChildProcess;
using mqkit::test::kAnyPort;
using mqkit::test::run_mqkit;
using mqkit::test::TempDir;

namespace {

int port_of(const std::string& endpoint) {
  return std::stoi(endpoint.substr(endpoint.rfind(':') + 1));
}

// `connections` raw TCP connections, each writing random bytes and closing.
void flood(const std::string& endpoint, int connections, std::mt19937& rng) {
  for (int i = 0; i < connections; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<std::uint16_t>(port_of(endpoint)));
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
      std::string junk(rng() % 4096 + 1, '\0');
      for (auto& c : junk) c = static_cast<char>(rng());
      (void)::write(fd, junk.data(), junk.size());
    }
    ::close(fd);
  }
}

// ZeroMQ peers of every kind sending garbage frames and one oversized frame.
void garbage_frames(const std::string& endpoint, std::size_t oversized, std::mt19937& rng) {
  zmq::context_t ctx;
  for (auto type : {zmq::socket_type::dealer, zmq::socket_type::push, zmq::socket_type::pub,
                    zmq::socket_type::req}) {
    zmq::socket_t s(ctx, type);
    s.set(zmq::sockopt::linger, 200);
    s.set(zmq::sockopt::sndtimeo, 200);
    s.connect(endpoint);
    for (int i = 0; i < 20; ++i) {
      std::string junk(rng() % 512, '\0');
      for (auto& c : junk) c = static_cast<char>(rng());
      (void)s.send(zmq::buffer(junk), zmq::send_flags::dontwait);
      if (type == zmq::socket_type::req) break;  // REQ waits for a reply
    }
    if (type == zmq::socket_type::dealer)
      (void)s.send(zmq::buffer(std::string(oversized, 'x')), zmq::send_flags::dontwait);
  }
}

void attack(const std::vector<std::string>& endpoints, std::size_t oversized) {
  std::mt19937 rng(42);
  for (const auto& ep : endpoints) {
    flood(ep, 30, rng);
    garbage_frames(ep, oversized, rng);
  }
}

}  // namespace

TEST_CASE("floods, random bytes and oversized frames on every port leave every device serving",
          "[integration][hostile]") {
  TempDir dir;
  auto streamer_device = mqkit::test::start_device(
      {"streamer", "--in", kAnyPort, "--out", kAnyPort, "--max-size", "64KiB"});
  auto forwarder_device = mqkit::test::start_device(
      {"forwarder", "--in", kAnyPort, "--out", kAnyPort, "--max-size", "64KiB"});
  auto proxy_device = mqkit::test::start_proxy(dir, {"--group", "g=#"});
  auto stream_device =
      mqkit::test::start_device({"stream", "--front", kAnyPort, "--back", kAnyPort, "--stats",
                                 kAnyPort, "--dir", dir.file("stream")});
  auto& streamer = streamer_device.process;
  auto& forwarder = forwarder_device.process;
  auto& proxy = proxy_device.process;
  auto& stream = stream_device.process;
  const auto s = streamer_device.endpoints, f = forwarder_device.endpoints,
             p = proxy_device.endpoints, l = stream_device.endpoints;
  attack({s.in, s.out, s.stats, f.in, f.out, f.stats}, 200 * 1024);
  attack({p.in, p.out, p.stats}, 17 * 1024 * 1024);
  attack({l.in, l.out, l.stats}, 17 * 1024 * 1024);

  // Well-behaved clients, after all that. A streamer passes raw frames on by
  // design (plain ZeroMQ peers are welcome), so the garbage a PUSH sent to
  // its input comes out too: the good lines must come out among it.
  mqkit::test::write_file(dir.file("lines"), "one\ntwo\nthree\n");
  ChildProcess work_consumer({mqkit::test::mqkit_binary(), "consume", "--from", s.out});
  auto [code, err] = run_mqkit({"send", "--to", s.in, "--file", dir.file("lines")});
  CHECK(code == 0);
  std::vector<std::string> got;
  for (int i = 0; i < 1000 && got.size() < 3; ++i) {
    const auto line = work_consumer.read_line(10s);
    if (!line) break;
    if (*line == "one" || *line == "two" || *line == "three") got.push_back(*line);
  }
  CHECK(got == std::vector<std::string>{"one", "two", "three"});
  work_consumer.signal(SIGTERM);

  // A subscriber may join while a hostile peer's pipe is still being torn
  // down: publish again (bounded) until it has seen every line.
  ChildProcess subscriber({mqkit::test::mqkit_binary(), "consume", "--sub", "--from", f.out});
  std::set<std::string> seen;
  for (int round = 0; round < 20 && seen.size() < 3; ++round) {
    std::tie(code, err) = run_mqkit({"send", "--pub", "--to", f.in, "--topic", "t", "--file",
                                     dir.file("lines"), "--wait", "1s"});
    CHECK(code == 0);
    while (auto line = subscriber.read_line(300ms))
      if (*line == "one" || *line == "two" || *line == "three") seen.insert(*line);
  }
  CHECK(seen.size() == 3);
  subscriber.signal(SIGTERM);

  std::tie(code, err) =
      run_mqkit({"send", "--proxy", p.in, "--topic", "t", "--file", dir.file("lines")});
  CHECK(code == 0);
  ChildProcess worker(
      {mqkit::test::mqkit_binary(), "consume", "--proxy", p.out, "--group", "g", "--count", "3"});
  got.clear();
  while (auto line = worker.read_line(10s)) got.push_back(*line);
  CHECK(got == std::vector<std::string>{"one", "two", "three"});
  // What reached the proxy's own code as garbage was counted, not stored.
  const auto stats = mqkit::test::stat_json(p.stats);
  CHECK(stats.at("malformed") > 0);
  CHECK(stats.at("stored") == 3);
  CHECK(mqkit::test::stat_json(s.stats).at("in") >= 3);
  // The connections that never became peers were refused and counted.
  for (const auto* ep : {&s, &f, &p, &l})
    CHECK(mqkit::test::stat_json(ep->stats).at("refused_connections") > 0);

  // The stream, likewise: garbage counted, the good records appended and read.
  std::tie(code, err) = run_mqkit({"send", "--stream", l.in, "--file", dir.file("lines")});
  CHECK(code == 0);
  ChildProcess reader({mqkit::test::mqkit_binary(), "consume", "--stream", l.out, "--count", "3"});
  got.clear();
  while (auto line = reader.read_line(10s)) got.push_back(*line);
  CHECK(got == std::vector<std::string>{"one", "two", "three"});
  const auto stream_stats = mqkit::test::stat_json(l.stats);
  CHECK(stream_stats.at("malformed") > 0);
  CHECK(stream_stats.at("appended") == 3);

  for (auto* d : {&streamer, &forwarder, &proxy, &stream}) {
    d->signal(SIGTERM);
    CHECK(d->wait(15s) == 0);  // still alive to stop cleanly
  }
}
