// Across hosts: network namespaces joined by veth pairs stand in for four
// machines (producer, proxy, two worker hosts). The link to one worker host
// is cut mid-stream and restored: every confirmed message still reaches
// every group, and the cut-off worker's in-flight messages are redelivered
// to the other worker. Needs root and `ip netns`; skipped with a printed
// reason where the environment refuses them.
#include <unistd.h>
#include <catch2/catch.hpp>

#include <csignal>
#include <map>
#include <regex>
#include <set>
#include <thread>

#include "child_process.hpp"
#include "cli_support.hpp"
#include "helpers.hpp"

using namespace std::chrono_literals;
using mqkit::test::ChildProcess;
using mqkit::test::TempDir;

namespace {

const std::string kIp = "/bin/ip";

int ip(const std::vector<std::string>& args) {
  std::vector<std::string> argv{kIp};
  argv.insert(argv.end(), args.begin(), args.end());
  ChildProcess p(argv);
  const auto code = p.wait(10s);
  return code ? *code : -1;
}

// Four namespaces in a star around the proxy's; removed on destruction.
class Hosts {
 public:
  Hosts() : prefix_("mq" + std::to_string(::getpid() % 100000)) {
    for (const char* host : {"proxy", "prod", "w1", "w2"}) {
      if (ip({"netns", "add", name(host)}) != 0) return;
      made_.push_back(name(host));
      ip({"-n", name(host), "link", "set", "lo", "up"});
    }
    int subnet = 1;
    for (const char* host : {"prod", "w1", "w2"}) {
      const std::string a = prefix_ + host + "a", b = prefix_ + host + "b";  // <= 15 chars
      const std::string net = "10.98." + std::to_string(subnet++) + ".";
      if (ip({"link", "add", a, "netns", name("proxy"), "type", "veth", "peer", "name", b, "netns",
              name(host)}) != 0)
        return;
      ip({"-n", name("proxy"), "addr", "add", net + "1/24", "dev", a});
      ip({"-n", name(host), "addr", "add", net + "2/24", "dev", b});
      ip({"-n", name("proxy"), "link", "set", a, "up"});
      ip({"-n", name(host), "link", "set", b, "up"});
      links_[host] = b;
    }
    ok_ = true;
  }
  ~Hosts() {
    for (const auto& ns : made_) ip({"netns", "del", ns});
  }
  bool ok() const { return ok_; }
  std::string name(const std::string& host) const { return prefix_ + host; }
  std::string proxy_address(const std::string& from) const {
    return from == "prod" ? "10.98.1.1" : from == "w1" ? "10.98.2.1" : "10.98.3.1";
  }
  void set_link(const std::string& host, bool up) {
    REQUIRE(ip({"-n", name(host), "link", "set", links_.at(host), up ? "up" : "down"}) == 0);
  }
  // argv to run the mqkit binary on `host`.
  std::vector<std::string> mqkit(const std::string& host, std::vector<std::string> args) const {
    std::vector<std::string> argv{kIp, "netns", "exec", name(host), mqkit::test::mqkit_binary()};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }

 private:
  std::string prefix_;
  std::vector<std::string> made_;
  std::map<std::string, std::string> links_;
  bool ok_ = false;
};

// payload -> attempts it was delivered with, from `consume --json` lines.
std::map<std::string, std::vector<int>> deliveries(const std::vector<std::string>& files) {
  std::map<std::string, std::vector<int>> out;
  const std::regex fields(R"re("attempt":(\d+).*"payload":"([^"]*)")re");
  for (const auto& f : files)
    for (const auto& line : mqkit::test::read_lines(f)) {
      std::smatch m;
      if (std::regex_search(line, m, fields)) out[m[2]].push_back(std::stoi(m[1]));
    }
  return out;
}

std::uint64_t stat_of(const Hosts& hosts, const std::string& counter) {
  ChildProcess p(hosts.mqkit("proxy", {"stat", "tcp://127.0.0.1:7003", "--json"}));
  const auto line = p.read_line(10s);
  (void)p.wait(5s);
  if (!line) return 0;
  const std::regex field("\"" + counter + "\":(\\d+)");
  std::smatch m;
  return std::regex_search(*line, m, field) ? std::stoull(m[1]) : 0;
}

}  // namespace

TEST_CASE("a worker host cut off mid-stream: nothing confirmed is lost, its messages move",
          "[integration][netns]") {
  if (::geteuid() != 0) {
    WARN("skipped: network namespaces need root");
    return;
  }
  Hosts hosts;
  if (!hosts.ok()) {
    WARN("skipped: this environment refuses `ip netns add` or veth pairs");
    return;
  }
  TempDir dir;
  ChildProcess proxy(hosts.mqkit(
      "proxy",
      {"proxy", "--front", "tcp://*:7001", "--back", "tcp://*:7002", "--stats",
       "tcp://127.0.0.1:7003", "--spool", dir.file("spool"), "--group", "g1=#", "--group", "g2=#",
       "--heartbeat", "200ms", "--ack-timeout", "30s", "--backoff", "fixed:50ms"}));
  REQUIRE(proxy.read_line(15s));
  auto worker = [&](const std::string& host, const std::string& group) {
    return ChildProcess(
        hosts.mqkit(host, {"consume", "--proxy", "tcp://" + hosts.proxy_address(host) + ":7002",
                           "--group", group, "--json", "--prefetch", "50"}),
        mqkit::test::Stdio{false, "", dir.file(host + "-" + group)});
  };
  auto w1 = worker("w1", "g1");
  auto w2 = worker("w2", "g1");
  auto w2b = worker("w2", "g2");
  REQUIRE(mqkit::test::wait_for([&] { return stat_of(hosts, "workers") == 3; }, 15s));

  constexpr int kMessages = 3000;
  ChildProcess producer(
      hosts.mqkit("prod", {"send", "--proxy", "tcp://" + hosts.proxy_address("prod") + ":7001",
                           "--topic", "orders", "--count", std::to_string(kMessages), "--size",
                           "40", "--rate", "1000", "--timeout", "60s"}));
  std::this_thread::sleep_for(1s);
  hosts.set_link("w1", false);  // w1's host drops off the network mid-stream
  std::this_thread::sleep_for(2s);
  hosts.set_link("w1", true);

  const auto code = producer.wait(90s);
  INFO(producer.stderr_text());
  REQUIRE(code == 0);  // every message was confirmed
  REQUIRE(mqkit::test::wait_for(
      [&] { return stat_of(hosts, "pending") == 0 && stat_of(hosts, "acked") >= 2 * kMessages; },
      60s));
  for (auto* w : {&w1, &w2, &w2b}) w->signal(SIGTERM);
  for (auto* w : {&w1, &w2, &w2b}) (void)w->wait(10s);

  const auto g1 = deliveries({dir.file("w1-g1"), dir.file("w2-g1")});
  const auto g2 = deliveries({dir.file("w2-g2")});
  CHECK(g1.size() == kMessages);  // every confirmed message reached both groups
  CHECK(g2.size() == kMessages);
  const auto moved = deliveries({dir.file("w2-g1")});
  std::size_t redelivered = 0, lines = 0;
  for (const auto& [payload, attempts] : g1) lines += attempts.size();
  for (const auto& [payload, attempts] : moved)
    for (int a : attempts) redelivered += a >= 2;
  CHECK(redelivered > 0);  // w1's in-flight messages went to w2
  CHECK(stat_of(hosts, "lost_workers") >= 1);
  WARN("partition: " << kMessages << " sent and confirmed; group g1 " << lines << " deliveries ("
                     << lines - g1.size() << " duplicates), " << redelivered
                     << " redelivered to w2 after w1 was cut off; group g2 " << g2.size()
                     << " messages; lost workers " << stat_of(hosts, "lost_workers"));
  proxy.signal(SIGTERM);
  CHECK(proxy.wait(15s) == 0);
}
