// What the CLI tests share: running the mqkit binary to completion, reading
// `mqkit stat --json`, and free loopback endpoints.
#pragma once

#include <catch2/catch.hpp>
#include <zmq.hpp>

#include <cctype>
#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "child_process.hpp"
#include "helpers.hpp"
#include "mqkit/devices/stats.hpp"

namespace mqkit::test {

inline const std::string kAnyPort = "tcp://127.0.0.1:*";

// A loopback endpoint whose port was free a moment ago, for commands that
// bind a fixed endpoint (peer to peer, or a device restarted on its ports).
inline std::string free_endpoint() {
  zmq::context_t ctx;
  zmq::socket_t probe(ctx, zmq::socket_type::pull);
  probe.bind(kAnyPort);
  return probe.get(zmq::sockopt::last_endpoint);
}

// `n` such endpoints, all different: each probe stays bound until all are
// picked (one at a time, the kernel may hand out a just-closed port again).
inline std::vector<std::string> free_endpoints(std::size_t n) {
  zmq::context_t ctx;
  std::vector<zmq::socket_t> probes;
  std::vector<std::string> out;
  for (std::size_t i = 0; i < n; ++i) {
    probes.emplace_back(ctx, zmq::socket_type::pull);
    probes.back().set(zmq::sockopt::linger, 0);
    probes.back().bind(kAnyPort);
    out.push_back(probes.back().get(zmq::sockopt::last_endpoint));
  }
  return out;
}

inline std::size_t count_newlines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::size_t n = 0;
  for (char c; in.get(c);) n += c == '\n';
  return n;
}

// Runs the mqkit binary to completion; returns {exit code, stderr}.
inline std::pair<int, std::string> run_mqkit(
    const std::vector<std::string>& args, const Stdio& stdio = {},
    std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  std::vector<std::string> argv{mqkit_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  ChildProcess p(argv, stdio);
  const auto code = p.wait(timeout);
  REQUIRE(code);
  return {*code, p.stderr_text()};
}

// A device started as a process, and the endpoints its "up" line names.
struct RunningDevice {
  ChildProcess process;
  DeviceEndpoints endpoints;
};

// Runs `mqkit ARGS...` and waits for the device's "up" line.
inline RunningDevice start_device(const std::vector<std::string>& args) {
  std::vector<std::string> argv{mqkit_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  ChildProcess p(argv);
  const auto line = p.read_line(std::chrono::seconds(15));
  INFO(p.stderr_text());
  REQUIRE(line);
  return {std::move(p), parse_up_line(*line)};
}

// `mqkit proxy` with its spool in DIR/spool and dead letters in DIR/dlq,
// bound to free ports unless told otherwise, plus `extra` flags.
inline RunningDevice start_proxy(const TempDir& dir, const std::vector<std::string>& extra,
                                 const std::string& front = kAnyPort,
                                 const std::string& back = kAnyPort,
                                 const std::string& stats = kAnyPort) {
  std::vector<std::string> args{"proxy",        "--front", front,     "--back",          back,
                                "--stats",      stats,     "--spool", dir.file("spool"), "--dlq",
                                dir.file("dlq")};
  args.insert(args.end(), extra.begin(), extra.end());
  return start_device(args);
}

// The device-wide counters of `mqkit stat EP --json` (not the per-group rows).
inline std::map<std::string, std::uint64_t> stat_json(const std::string& endpoint) {
  ChildProcess p({mqkit_binary(), "stat", endpoint, "--json"});
  const auto line = p.read_line(std::chrono::seconds(10));
  REQUIRE(line);
  std::map<std::string, std::uint64_t> counters;
  // {"device":"x","in":1,...,"groups":[...]}: the device-wide part (before
  // the first table) is small enough to pick apart by hand.
  const auto table = line->find("\":[");
  std::string text =
      table == std::string::npos ? *line : line->substr(0, line->rfind(",\"", table));
  for (std::size_t at = 0; (at = text.find('"', at)) != std::string::npos;) {
    const auto end = text.find('"', at + 1);
    const std::string key = text.substr(at + 1, end - at - 1);
    at = end + 1;
    if (text[at] == ':' && std::isdigit(static_cast<unsigned char>(text[at + 1])))
      counters[key] = std::stoull(text.substr(at + 1));
  }
  return counters;
}

// Every counter of the device at `endpoint`, per-partition and per-group
// ones included ("consumer.NAME.lag"), asked in-process.
inline std::map<std::string, std::uint64_t> all_counters(const std::string& endpoint) {
  const auto stats = devices::query_stats(endpoint, std::chrono::seconds(5));
  return {stats.counters.begin(), stats.counters.end()};
}

}  // namespace mqkit::test
