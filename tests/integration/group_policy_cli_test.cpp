// Per-group settings and pause/resume as users drive them: `mqkit proxy
// --group-setting`, `mqkit group ls|pause|resume`, `mqkit consume --exec`
// workers and restarts of the proxy process over the same spool.
#include <catch2/catch.hpp>

#include <set>
#include <thread>

#include "child_process.hpp"
#include "cli_support.hpp"
#include "helpers.hpp"
#include "mqkit/devices/stats.hpp"

using namespace std::chrono_literals;
using mqkit::test::ChildProcess;
using mqkit::test::DeviceEndpoints;
using mqkit::test::run_mqkit;
using mqkit::test::start_proxy;
using mqkit::test::TempDir;
using mqkit::test::wait_for;

namespace {

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
    return 0;
  }
}

// Runs `mqkit ARGS...`: its exit code and stdout.
std::pair<int, std::string> run_for_output(const std::vector<std::string>& args) {
  std::vector<std::string> argv{mqkit::test::mqkit_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  ChildProcess p(argv);
  std::string out;
  while (auto line = p.read_line(10s)) out += *line + "\n";
  const auto code = p.wait(10s);
  INFO(p.stderr_text());
  REQUIRE(code);
  return {*code, out};
}

// `mqkit group ls EP --json`, the object of group `name` ({"group":"name",...}).
std::string group_json(const DeviceEndpoints& proxy, const std::string& name) {
  const auto [code, out] = run_for_output({"group", "ls", proxy.stats, "--json"});
  REQUIRE(code == 0);
  const auto start = out.find("{\"group\":\"" + name + "\"");
  REQUIRE(start != std::string::npos);
  return out.substr(start, out.find('}', start) - start + 1);
}

std::vector<std::string> with(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace

TEST_CASE("a group's own max_attempts and backoff win, and a restart without its flags keeps them",
          "[integration][proxy][groups]") {
  TempDir dir;
  const std::vector<std::string> defaults{"--max-attempts", "4", "--backoff", "fixed:20ms"};
  auto poison_until_dead = [&](const DeviceEndpoints& proxy) {
    auto strict = start_worker(proxy, "strict", dir.file("strict.out"), {"--exec", "false"});
    auto lenient = start_worker(proxy, "lenient", dir.file("lenient.out"), {"--exec", "false"});
    mqkit::test::write_file(dir.file("poison"), "poison\n");
    const auto [code, err] =
        run_mqkit({"send", "--proxy", proxy.in, "--topic", "t", "--file", dir.file("poison")});
    REQUIRE(code == 0);
    REQUIRE(wait_for([&] { return counter(proxy, "dead") == 2; }, 30s));
    CHECK(counter(proxy, "group.strict.delivered") == 2);
    CHECK(counter(proxy, "group.lenient.delivered") == 4);
  };
  {
    auto proxy = start_proxy(dir, with(defaults, {"--group", "strict=#", "--group", "lenient=#",
                                                  "--group-setting", "strict.max_attempts=2",
                                                  "--group-setting", "strict.backoff=fixed:10ms",
                                                  "--group-setting", "strict.ack_timeout=7s"}));
    poison_until_dead(proxy.endpoints);
    const auto strict = group_json(proxy.endpoints, "strict");
    CHECK_THAT(strict, Catch::Contains("\"max_attempts\":2"));
    CHECK_THAT(strict, Catch::Contains("\"ack_timeout\":\"7s\""));
    CHECK_THAT(strict, Catch::Contains("\"backoff\":\"fixed:10ms\""));
    CHECK_THAT(strict, Catch::Contains("\"own_settings\":\"max_attempts,ack_timeout,backoff\""));
  }  // killed -9: the settings were on disk before the proxy said "up"
  auto proxy = start_proxy(dir, defaults);
  const auto strict = group_json(proxy.endpoints, "strict");
  CHECK_THAT(strict, Catch::Contains("\"max_attempts\":2"));
  CHECK_THAT(strict, Catch::Contains("\"backoff\":\"fixed:10ms\""));
  const auto lenient = group_json(proxy.endpoints, "lenient");
  CHECK_THAT(lenient, Catch::Contains("\"max_attempts\":4"));
  CHECK_THAT(lenient, Catch::Contains("\"own_settings\":\"-\""));
  poison_until_dead(proxy.endpoints);
}

TEST_CASE("group settings on the command line are checked before the proxy starts",
          "[integration][proxy][groups]") {
  TempDir dir;
  auto [code, err] =
      run_mqkit({"proxy", "--spool", dir.file("spool"), "--front", mqkit::test::kAnyPort, "--back",
                 mqkit::test::kAnyPort, "--group-setting", "billing.max_attempts=2"});
  CHECK(code != 0);
  CHECK_THAT(err, Catch::Contains("group 'billing' has settings of its own but is not declared"));
  std::tie(code, err) = run_mqkit({"proxy", "--spool", dir.file("spool"), "--group", "billing=#",
                                   "--group-setting", "billing.ordered=yes"});
  CHECK(code == 2);
  CHECK_THAT(err, Catch::Contains("'ordered' is not a group setting"));
}

TEST_CASE("a paused group stores but delivers nothing, stays paused across kill -9, and resumes",
          "[integration][proxy][groups]") {
  TempDir dir;
  const std::vector<std::string> groups{"--group", "work=#", "--group", "other=#"};
  {
    auto proxy = start_proxy(dir, groups);
    auto [code, out] = run_for_output({"group", "pause", proxy.endpoints.stats, "work"});
    REQUIRE(code == 0);
    CHECK(out == "paused group work\n");
    std::tie(code, out) = run_mqkit(
        {"send", "--proxy", proxy.endpoints.in, "--topic", "t", "--count", "20", "--size", "10"});
    REQUIRE(code == 0);
    auto work = start_worker(proxy.endpoints, "work", dir.file("work.out"), {"--count", "20"});
    auto other = start_worker(proxy.endpoints, "other", dir.file("other.out"), {"--count", "20"});
    CHECK(other.wait(30s) == 0);  // the other group is not held back
    std::this_thread::sleep_for(500ms);
    CHECK(mqkit::test::count_newlines(dir.file("work.out")) == 0);
    const auto row = group_json(proxy.endpoints, "work");
    CHECK_THAT(row, Catch::Contains("\"state\":\"paused\""));
    CHECK_THAT(row, Catch::Contains("\"pending\":20"));
  }
  auto proxy = start_proxy(dir, groups);
  CHECK_THAT(group_json(proxy.endpoints, "work"), Catch::Contains("\"state\":\"paused\""));
  auto work = start_worker(proxy.endpoints, "work", dir.file("work.out"), {"--count", "20"});
  std::this_thread::sleep_for(500ms);
  CHECK(mqkit::test::count_newlines(dir.file("work.out")) == 0);
  auto [code, out] = run_for_output({"group", "resume", proxy.endpoints.stats, "work"});
  CHECK(code == 0);
  CHECK(out == "resumed group work\n");
  CHECK(work.wait(30s) == 0);
  const auto lines = mqkit::test::read_lines(dir.file("work.out"));
  CHECK(std::set<std::string>(lines.begin(), lines.end()).size() == 20);
  std::tie(code, out) = run_mqkit({"group", "pause", proxy.endpoints.stats, "nope"});
  CHECK(code != 0);
  CHECK_THAT(out, Catch::Contains("no group named 'nope'"));
}
