// The order service: publishes COUNT order.created messages through the
// reliable proxy (each confirmed once stored), then, with --wait, waits until
// every service has settled every order and prints a summary: processed,
// retried and dead-lettered per service, and why orders died. "Settled" and
// the totals come from what survives a crash of the proxy: its spool (what
// it still holds), the services' applied.log files (next to the topology
// file, DIR/SERVICE/applied.log) and the dead-letter spool.
//
// usage: mqkit_ecommerce_orders TOPOLOGY_FILE COUNT [--wait SECONDS]
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <thread>

#include "applied_log.hpp"
#include "mqkit/devices/stats.hpp"
#include "mqkit/envelope.hpp"
#include "mqkit/reliable_producer.hpp"
#include "mqkit/spool.hpp"
#include "mqkit/stop.hpp"
#include "mqkit/topology.hpp"
#include "order.hpp"

namespace {

using Clock = std::chrono::steady_clock;

std::string dlq_dir(const mqkit::DeviceSpec& proxy) {
  return proxy.proxy.dlq_dir.empty() ? proxy.proxy.spool_dir + ".dlq" : proxy.proxy.dlq_dir;
}

int publish(const mqkit::Topology& topology, int count) {
  mqkit::ReliableProducer producer(topology.endpoint("orders"));
  int stored = 0, failed = 0;
  for (int n = 1; n <= count && !mqkit::stop_requested(); ++n) {
    auto envelope = mqkit::Envelope::make("order.created");
    const auto order = ecommerce::generate(n);
    envelope.key = order.customer;  // one customer's orders stay in order
    producer.send_async(envelope, ecommerce::format(order), [&](const mqkit::PublishResult& r) {
      if (r.ok())
        ++stored;
      else
        ++failed;
    });
  }
  const auto left = producer.flush(std::chrono::seconds(60));
  std::printf("order service: published %d orders, %d confirmed stored by the proxy\n", count,
              stored);
  if (failed > 0 || left > 0)
    std::printf("order service: %d refused, %zu unconfirmed\n", failed, left);
  return stored;
}

// A reminder e-mail about the first order, a day later: the proxy confirms
// it now and keeps it scheduled (across restarts) until then; only the
// email group gets it. Returns how many messages the email group holds
// scheduled, as the proxy's stats say.
std::uint64_t schedule_reminder(const mqkit::Topology& topology) {
  mqkit::ReliableProducerOptions options;
  options.delay = std::chrono::hours(24);
  options.target_group = "email";
  mqkit::ReliableProducer producer(topology.endpoint("orders"), options);
  auto order = ecommerce::generate(1);
  order.id += "-reminder";  // its own line in the email service's applied.log
  const auto result = producer.send("order.reminder", ecommerce::format(order));
  if (!result.ok()) throw std::runtime_error("the reminder was not stored: " + result.reason);
  // The stats are a snapshot taken every 200 ms: ask until it shows.
  std::uint64_t scheduled = 0;
  for (int i = 0; i < 50 && scheduled == 0; ++i) {
    scheduled =
        mqkit::devices::query_stats(topology.endpoint("order-admin")).get("group.email.scheduled");
    if (scheduled == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return scheduled;
}

// What a group's summary row says, from records that survive a restart of
// the proxy: the service's own applied.log (orders, and how many needed a
// retry) and the dead-letter spool's files (dead letters of that group).
struct GroupTotals {
  bool has_records = false;  // a service with an applied.log (audit has none)
  std::size_t processed = 0, retried = 0, dead = 0;
  std::filesystem::file_time_type last_applied{};  // when its log last grew
};

std::map<std::string, GroupTotals> read_totals(const mqkit::DeviceSpec& proxy,
                                               const std::filesystem::path& records) {
  std::map<std::string, GroupTotals> totals;
  for (const auto& [group, filters] : proxy.proxy.groups) {
    const auto log = ecommerce::summarize_applied_log((records / group / "applied.log").string());
    std::error_code e;
    const auto changed = std::filesystem::last_write_time(records / group / "applied.log", e);
    totals[group] = {log.exists, log.orders, log.retried, 0, e ? decltype(changed){} : changed};
  }
  for (const auto& d : mqkit::read_spool(dlq_dir(proxy)).dead_letters)
    if (auto it = totals.find(d.dead_letter->group); it != totals.end()) ++it->second.dead;
  return totals;
}

bool has_counter(const mqkit::devices::DeviceStats& stats, const std::string& name) {
  for (const auto& [n, v] : stats.counters)
    if (n == name) return true;
  return false;
}

// Waits until every order is settled in every group: the proxy holds
// nothing for it any more (pending, which includes in flight and retrying,
// is 0: what its spool knows, also right after a restart) and each service's
// records account for every order (applied, or dead-lettered). The proxy may
// be down or restarting meanwhile: its stats then do not answer, and the
// wait goes on. Returns the totals it saw last.
bool wait_until_settled(const std::string& admin, const mqkit::DeviceSpec& proxy,
                        const std::filesystem::path& records, std::size_t count, int seconds,
                        std::map<std::string, GroupTotals>& totals) {
  const auto deadline = Clock::now() + std::chrono::seconds(seconds);
  while (Clock::now() < deadline && !mqkit::stop_requested()) {
    bool quiet = true;
    try {
      const auto stats = mqkit::devices::query_stats(admin, std::chrono::seconds(1));
      for (const auto& [g, filters] : proxy.proxy.groups) {
        const std::string p = "group." + g + ".";
        quiet = quiet && has_counter(stats, p + "pending") && stats.get(p + "pending") == 0 &&
                stats.get(p + "in_flight") == 0;
      }
    } catch (const std::exception&) {
      quiet = false;  // the proxy is not answering (restarting?): ask again
    }
    if (quiet) {
      totals = read_totals(proxy, records);
      bool settled = true;
      for (const auto& [g, t] : totals)
        settled = settled && (!t.has_records || t.processed + t.dead == count);
      if (settled) return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  totals = read_totals(proxy, records);
  return false;
}

// `started`: when publishing began; a service's rate is its orders over the
// time until its log last grew.
void print_summary(const mqkit::DeviceSpec& proxy, const std::map<std::string, GroupTotals>& totals,
                   std::filesystem::file_time_type started) {
  std::printf("\n%-10s  %9s  %7s  %13s  %8s\n", "SERVICE", "PROCESSED", "RETRIED", "DEAD-LETTERED",
              "ORDERS/S");
  for (const auto& [group, t] : totals) {
    if (!t.has_records) continue;
    const double seconds = std::chrono::duration<double>(t.last_applied - started).count();
    std::printf("%-10s  %9zu  %7zu  %13zu  %8.0f\n", group.c_str(), t.processed, t.retried, t.dead,
                seconds > 0 ? double(t.processed) / seconds : 0.0);
  }
  std::printf(
      "(from each service's applied.log and the dead-letter spool: totals that survive "
      "a restart)\n");
  // Why orders died, read from the dead-letter spool's files.
  std::map<std::pair<std::string, std::string>, int> reasons;
  for (const auto& d : mqkit::read_spool(dlq_dir(proxy)).dead_letters) {
    std::string why = d.dead_letter->last_error;
    why = why.substr(0, why.find(':'));  // "out of stock: SKU-3 has 1..." -> "out of stock"
    ++reasons[{d.dead_letter->group, why}];
  }
  if (!reasons.empty()) std::printf("\ndead letters by reason:\n");
  for (const auto& [key, n] : reasons)
    std::printf("  %-10s %4d  %s\n", key.first.c_str(), n, key.second.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 && !(argc == 5 && std::string(argv[3]) == "--wait")) {
    std::fprintf(stderr, "usage: %s TOPOLOGY_FILE COUNT [--wait SECONDS]\n", argv[0]);
    return 2;
  }
  try {
    mqkit::stop_on_signals();
    const auto topology = mqkit::Topology::load(argv[1]);
    const int count = std::atoi(argv[2]);
    const auto started = std::filesystem::file_time_type::clock::now();
    if (publish(topology, count) != count) return 1;
    if (argc != 5) return 0;
    const mqkit::DeviceSpec* proxy = nullptr;
    for (const auto& d : topology.devices())
      if (d.kind == "proxy") proxy = &d;
    if (proxy == nullptr) throw std::runtime_error(std::string(argv[1]) + " has no proxy");
    // The services keep their records next to the topology file (run.sh:
    // WORK/topology.yaml, WORK/email/applied.log, ...).
    const auto records = std::filesystem::absolute(argv[1]).parent_path();
    std::map<std::string, GroupTotals> totals;
    const bool settled =
        wait_until_settled(topology.endpoint("order-admin"), *proxy, records,
                           static_cast<std::size_t>(count), std::atoi(argv[4]), totals);
    print_summary(*proxy, totals, started);
    if (!settled) {
      std::printf("\nnot every order was settled within %s seconds\n", argv[4]);
      return 1;
    }
    const auto scheduled = schedule_reminder(topology);
    std::printf(
        "\norder service: a reminder e-mail about order 1 is scheduled for 24 h from now "
        "(the email group holds %llu scheduled; `mqkit group ls` shows it)\n",
        static_cast<unsigned long long>(scheduled));
    if (scheduled == 0) return 1;
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "order service: %s\n", e.what());
    return 1;
  }
}
