// The e-commerce example as the README runs it (examples/ecommerce/run.sh),
// checked against what it claims: every order was applied by every service
// once and the summary says so, the dead letters are exactly the orders the
// generator made bad, and replaying them with billing's fix on empties the
// DLQ. And its answer stays right when the topology's process is killed
// (kill -9) and restarted while orders flow.
#include <catch2/catch.hpp>

#include <array>
#include <csignal>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <vector>

#include "child_process.hpp"
#include "cli_support.hpp"
#include "helpers.hpp"
#include "mqkit/envelope.hpp"
#include "mqkit/spool.hpp"

using namespace std::chrono_literals;
using mqkit::test::ChildProcess;
using mqkit::test::TempDir;

namespace {

const std::string kExample = MQKIT_ECOMMERCE_DIR;
const std::string kBinaries = MQKIT_ECOMMERCE_BIN;
constexpr int kOrders = 200;

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
  return text;
}

// The example's topology on free loopback ports, so tests can run in parallel.
std::string topology_on_free_ports(const TempDir& work, std::string* front) {
  const auto ports = mqkit::test::free_endpoints(5);
  *front = ports[0];
  std::string yaml = read_text(kExample + "/topology.yaml");
  yaml = replace_all(yaml, "tcp://127.0.0.1:6555", *front);
  yaml = replace_all(yaml, "tcp://127.0.0.1:6556", ports[1]);
  yaml = replace_all(yaml, "tcp://127.0.0.1:6557", ports[2]);
  yaml = replace_all(yaml, "tcp://127.0.0.1:6558", ports[3]);
  yaml = replace_all(yaml, "tcp://127.0.0.1:6559", ports[4]);
  mqkit::test::write_file(work.file("topology.yaml"), yaml);
  return work.file("topology.yaml");
}

// Order ids in a service's applied.log, with how often each was applied.
std::map<std::string, int> handled(const TempDir& work, const std::string& service) {
  std::map<std::string, int> count;
  for (const auto& line : mqkit::test::read_lines(work.file(service + "/applied.log")))
    ++count[line.substr(0, line.find(' '))];
  return count;
}

std::string order_id(int n) {
  char id[16];
  std::snprintf(id, sizeof id, "ORD-%06d", n);
  return id;
}

// The summary table: SERVICE PROCESSED RETRIED DEAD-LETTERED.
std::map<std::string, std::array<int, 3>> parse_summary(const std::string& out) {
  std::map<std::string, std::array<int, 3>> summary;
  const std::regex row(R"((email|inventory|billing|warehouse)\s+(\d+)\s+(\d+)\s+(\d+))");
  for (std::sregex_iterator it(out.begin(), out.end(), row), end; it != end; ++it)
    summary[(*it)[1]] = {std::stoi((*it)[2]), std::stoi((*it)[3]), std::stoi((*it)[4])};
  return summary;
}

// What the generator made bad (a malformed card) among orders 1..count.
std::set<std::string> bad_orders(int count) {
  std::set<std::string> bad;
  for (int n = 1; n <= count; ++n)
    if (n % 40 == 13) bad.insert(order_id(n));
  return bad;
}

// Stops a process tree politely (its traps clean up), then the destructor's SIGKILL.
struct Polite {
  ChildProcess& p;
  ~Polite() {
    p.signal(SIGTERM);
    (void)p.wait(20s);
  }
};

}  // namespace

TEST_CASE("the e-commerce demo delivers what its summary claims and its DLQ replays clean",
          "[integration][ecommerce]") {
  TempDir work;
  std::string front;
  const auto topology = topology_on_free_ports(work, &front);
  ChildProcess demo(
      {"/usr/bin/env", "WORK=" + work.path().string(), "ORDERS=" + std::to_string(kOrders),
       "/bin/sh", kExample + "/run.sh", mqkit::test::mqkit_binary()},
      mqkit::test::Stdio{false, "", work.file("demo.out")});
  Polite stop_demo{demo};
  const auto code = demo.wait(150s);
  const std::string out = read_text(work.file("demo.out"));
  INFO(out << demo.stderr_text());
  REQUIRE(code == 0);

  auto summary = parse_summary(out);
  REQUIRE(summary.size() == 4);
  const auto bad = bad_orders(kOrders);
  for (const auto& [service, figures] : summary) {
    INFO(service);
    const auto counts = handled(work, service);
    for (const auto& [id, n] : counts) CHECK(n == 1);  // applied once, whatever was redelivered
    const int expected = kOrders - (service == "billing" ? static_cast<int>(bad.size()) : 0);
    CHECK(static_cast<int>(counts.size()) == expected);
    CHECK(figures[0] == expected);
    CHECK(figures[2] == (service == "billing" ? static_cast<int>(bad.size()) : 0));
    if (service == "billing")
      for (const auto& id : bad) CHECK_FALSE(counts.contains(id));
  }
  CHECK(summary["billing"][1] > 0);  // the transient gateway timeouts were retried
  CHECK_THAT(out, Catch::Contains("card number is malformed"));
  CHECK_THAT(out, Catch::Contains("dlq replay " + work.file("data/dlq") + " --proxy " + front));

  // The order log (the audit group, bridged into a stream) holds every order once.
  CHECK_THAT(out, Catch::Contains("orders in the order log: " + std::to_string(kOrders)));
  std::set<std::string> logged;
  for (const auto& line : mqkit::test::read_lines(work.file("order-log.json"))) {
    const auto at = line.find("order=ORD-");
    if (at != std::string::npos) logged.insert(line.substr(at + 6, 10));
  }
  CHECK(logged.size() == static_cast<std::size_t>(kOrders));

  // The DLQ holds exactly the bad orders.
  std::set<std::string> dead;
  for (const auto& d : mqkit::read_spool(work.file("data/dlq")).dead_letters) {
    const auto m = mqkit::decode(d.frame);
    dead.insert(std::string(m.payload().substr(6, 10)));  // "order=ORD-000013 ..."
    CHECK(d.dead_letter->group == "billing");
  }
  CHECK(dead == bad);

  // Billing fixed: start the topology again, replay, and the DLQ empties.
  ChildProcess run({mqkit::test::mqkit_binary(), "run", topology, "--quiet"});
  Polite stop_run{run};
  REQUIRE(run.read_line(15s));
  ChildProcess billing({"/usr/bin/env", "ECOMMERCE_BILLING_FIX=1",
                        kBinaries + "/mqkit_ecommerce_billing", topology, work.file("billing")});
  Polite stop_billing{billing};
  const auto [replay_code, replay_err] =
      mqkit::test::run_mqkit({"dlq", "replay", work.file("data/dlq"), "--proxy", front});
  INFO(replay_err);
  CHECK(replay_code == 0);
  CHECK(mqkit::test::wait_for(
      [&] {
        const auto counts = handled(work, "billing");
        for (const auto& id : bad)
          if (!counts.contains(id)) return false;
        return true;
      },
      30s));
  CHECK(mqkit::read_spool(work.file("data/dlq")).dead_letters.empty());
  CHECK_THAT(read_text(work.file("billing/invoices/" + *bad.begin() + ".txt")),
             Catch::Contains("payment: bank transfer"));
}

TEST_CASE("the order service settles and counts right when the topology is killed mid-flow",
          "[integration][ecommerce][restart]") {
  // As a user would: the topology's process (mqkit run: the proxy, the order
  // log, the bridge) is killed with SIGKILL three times while orders flow,
  // and started again on the same files each time.
  constexpr int kMany = 1500;
  TempDir work;
  std::string front;
  const auto topology = topology_on_free_ports(work, &front);
  auto start_topology = [&] {
    auto run = std::make_unique<ChildProcess>(
        std::vector<std::string>{mqkit::test::mqkit_binary(), "run", topology, "--quiet"});
    REQUIRE(run->read_line(15s));
    return run;
  };
  auto run = start_topology();
  std::vector<ChildProcess> services;
  services.reserve(8);
  for (const std::string service : {"email", "inventory", "billing", "warehouse"})
    for (int worker = 0; worker < 2; ++worker)
      services.emplace_back(std::vector<std::string>{kBinaries + "/mqkit_ecommerce_" + service,
                                                     topology, work.file(service)});
  struct StopAll {  // politely, even when an assertion fails
    std::vector<ChildProcess>& processes;
    ~StopAll() {
      for (auto& p : processes) p.signal(SIGTERM);
      for (auto& p : processes) (void)p.wait(20s);
    }
  } stop_services{services};
  ChildProcess orders(
      {kBinaries + "/mqkit_ecommerce_orders", topology, std::to_string(kMany), "--wait", "150"},
      mqkit::test::Stdio{false, "", work.file("orders.out")});
  Polite stop_orders{orders};

  for (int kill = 1; kill <= 3; ++kill) {
    // Orders are flowing: the warehouse has applied some more since the last start.
    const std::size_t applied = std::size_t(kill) * kMany / 5;
    REQUIRE(mqkit::test::wait_for(
        [&] { return mqkit::test::count_newlines(work.file("warehouse/applied.log")) >= applied; },
        60s));
    run->signal(SIGKILL);
    REQUIRE(run->wait(10s) == 128 + SIGKILL);
    run = start_topology();
  }
  const auto code = orders.wait(170s);
  const std::string out = read_text(work.file("orders.out"));
  INFO(out << orders.stderr_text());
  REQUIRE(code == 0);
  const auto summary = parse_summary(out);
  REQUIRE(summary.size() == 4);
  const auto bad = bad_orders(kMany);
  for (const auto& [service, figures] : summary) {
    INFO(service);
    const auto counts = handled(work, service);
    for (const auto& [id, n] : counts) CHECK(n == 1);
    const int dead = service == "billing" ? static_cast<int>(bad.size()) : 0;
    CHECK(static_cast<int>(counts.size()) == kMany - dead);
    CHECK(figures[0] == kMany - dead);
    CHECK(figures[2] == dead);
  }
  // The services stop cleanly (they were never restarted: they re-attached).
  for (auto& s : services) s.signal(SIGTERM);
  for (auto& s : services) CHECK(s.wait(20s) == 0);
}
