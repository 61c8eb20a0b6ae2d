// `mqkit run FILE`: a topology file started, used and stopped as a process.
#include <catch2/catch.hpp>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>

#include "child_process.hpp"
#include "cli_support.hpp"
#include "helpers.hpp"

using namespace std::chrono_literals;
using mqkit::test::ChildProcess;
using mqkit::test::run_mqkit;
using mqkit::test::TempDir;

namespace {

// A topology on free ports: a proxy with two groups and a streamer.
std::string topology(const TempDir& dir, std::string* front, std::string* back,
                     std::string* stats) {
  const auto ports = mqkit::test::free_endpoints(3);
  *front = ports[0];
  *back = ports[1];
  *stats = ports[2];
  const std::string yaml = "endpoints:\n  orders: " + *front + "\n  work: " + *back +
                           "\ndevices:\n  order-proxy:\n    kind: proxy\n    front: orders\n"
                           "    back: work\n    stats: " +
                           *stats +
                           "\n    spool: spool\n    groups:\n      email: order.#\n"
                           "      billing: order.created\n";
  mqkit::test::write_file(dir.file("topology.yaml"), yaml);
  return dir.file("topology.yaml");
}

}  // namespace

TEST_CASE("mqkit run starts a topology, serves it and stops cleanly on SIGTERM",
          "[integration][run]") {
  TempDir dir;
  std::string front, back, stats;
  const auto file = topology(dir, &front, &back, &stats);
  ChildProcess run({mqkit::test::mqkit_binary(), "run", file, "--quiet"});
  const auto up = run.read_line(15s);
  INFO(run.stderr_text());
  REQUIRE(up);
  CHECK_THAT(*up, Catch::StartsWith("mqkit run: order-proxy (proxy) up,"));
  CHECK_THAT(*up, Catch::Contains("front " + front));
  mqkit::test::write_file(dir.file("orders"), "order 1\norder 2\norder 3\n");
  auto [code, err] = run_mqkit(
      {"send", "--proxy", front, "--topic", "order.created", "--file", dir.file("orders")});
  CHECK(code == 0);
  ChildProcess email({mqkit::test::mqkit_binary(), "consume", "--proxy", back, "--group", "email",
                      "--count", "3"});
  std::vector<std::string> got;
  while (auto line = email.read_line(10s)) got.push_back(*line);
  CHECK(got == std::vector<std::string>{"order 1", "order 2", "order 3"});
  CHECK(email.wait(10s) == 0);
  CHECK(mqkit::test::stat_json(stats).at("stored") == 3);
  run.signal(SIGTERM);
  CHECK(run.wait(15s) == 0);
  CHECK_THAT(run.stderr_text(), Catch::Contains("stopped order-proxy: in 3"));
  CHECK_THAT(run.stderr_text(), Catch::Contains("billing pending 3"));
  // The spool was closed cleanly: a second run finds billing's three messages.
  ChildProcess again({mqkit::test::mqkit_binary(), "run", file, "--quiet"});
  REQUIRE(again.read_line(15s));
  ChildProcess billing({mqkit::test::mqkit_binary(), "consume", "--proxy", back, "--group",
                        "billing", "--count", "3"});
  got.clear();
  while (auto line = billing.read_line(10s)) got.push_back(*line);
  CHECK(got.size() == 3);
  again.signal(SIGINT);
  CHECK(again.wait(15s) == 0);
}

TEST_CASE("mqkit run --check validates without starting, and bad files say where",
          "[integration][run]") {
  TempDir dir;
  std::string front, back, stats;
  const auto file = topology(dir, &front, &back, &stats);
  ChildProcess check({mqkit::test::mqkit_binary(), "run", "--check", file});
  const auto ok = check.read_line(10s);
  REQUIRE(ok);
  CHECK(*ok == file + ": ok, 1 devices, 3 endpoints");
  CHECK(check.wait(10s) == 0);

  mqkit::test::write_file(dir.file("bad.yaml"),
                          "devices:\n  p:\n    kind: proxy\n    front: tcp://*:7001\n"
                          "    back: tcp://*:7002\n    spool: s\n    max_attempts: lots\n");
  auto [code, err] = run_mqkit({"run", dir.file("bad.yaml")});
  CHECK(code == 2);
  CHECK(err == "mqkit run: " + dir.file("bad.yaml") +
                   ":7:19: devices.p.max_attempts must be a positive integer\n");
  std::tie(code, err) = run_mqkit({"run", dir.file("missing.yaml")});
  CHECK(code == 1);
  CHECK_THAT(err, Catch::Contains("cannot read topology file"));
}

TEST_CASE("mqkit run refuses a topology whose port is taken and names the device",
          "[integration][run]") {
  TempDir dir;
  std::string front, back, stats;
  const auto file = topology(dir, &front, &back, &stats);
  ChildProcess first({mqkit::test::mqkit_binary(), "run", file, "--quiet"});
  REQUIRE(first.read_line(15s));
  TempDir other;
  mqkit::test::write_file(other.file("t.yaml"),
                          "devices:\n  jobs:\n    kind: streamer\n    in: " + front +
                              "\n    out: " + mqkit::test::free_endpoint() + "\n");
  auto [code, err] = run_mqkit({"run", other.file("t.yaml")});
  CHECK(code == 1);
  CHECK_THAT(err, Catch::StartsWith("mqkit run: device 'jobs': cannot bind"));
  first.signal(SIGTERM);
  CHECK(first.wait(15s) == 0);
}

TEST_CASE("mqkit run --check accepts the example and names line and problem for each broken file",
          "[integration][run]") {
  const std::filesystem::path source_dir(MQKIT_SOURCE_DIR);
  auto [code, err] =
      run_mqkit({"run", "--check", (source_dir / "examples/ecommerce/topology.yaml").string()});
  CHECK(code == 0);
  // tests/data/topology/*.yaml: one file per error class, its first line
  // "# expect: LINE:COLUMN: message".
  int files = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(source_dir / "tests/data/topology")) {
    const std::string path = entry.path().string();
    std::ifstream in(path);
    std::string first;
    std::getline(in, first);
    REQUIRE(first.starts_with("# expect: "));
    const std::string expected = "mqkit run: " + path + ":" + first.substr(10);
    std::tie(code, err) = run_mqkit({"run", "--check", path});
    INFO(path);
    CHECK(code == 2);
    CHECK_THAT(err, Catch::StartsWith(expected));
    CHECK(std::count(err.begin(), err.end(), '\n') == 1);  // one line
    ++files;
  }
  CHECK(files >= 12);
}
