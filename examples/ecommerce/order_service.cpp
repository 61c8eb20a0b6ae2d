// The order service: publishes COUNT order.created messages through the
// reliable proxy (each confirmed once stored), then, with --wait, watches the
// proxy until every service has settled every order and prints a summary:
// processed, retried and dead-lettered per service, and why orders died.
//
// usage: mqkit_ecommerce_orders TOPOLOGY_FILE COUNT [--wait SECONDS]
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>

#include "mqkit/devices/stats.hpp"
#include "mqkit/envelope.hpp"
#include "mqkit/reliable_producer.hpp"
#include "mqkit/spool.hpp"
#include "mqkit/stop.hpp"
#include "mqkit/topology.hpp"
#include "order.hpp"

namespace {

using Clock = std::chrono::steady_clock;

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

// Waits until each group has acked or dead-lettered all `count` orders.
bool wait_until_settled(const std::string& admin, const std::vector<std::string>& groups, int count,
                        int seconds, mqkit::devices::DeviceStats& stats) {
  const auto deadline = Clock::now() + std::chrono::seconds(seconds);
  while (Clock::now() < deadline && !mqkit::stop_requested()) {
    stats = mqkit::devices::query_stats(admin);
    bool settled = true;
    for (const auto& g : groups) {
      const std::string p = "group." + g + ".";
      settled = settled && stats.get(p + "pending") == 0 &&
                stats.get(p + "acked") + stats.get(p + "dead") >= std::uint64_t(count);
    }
    if (settled) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return false;
}

void print_summary(const mqkit::DeviceSpec& proxy, const mqkit::devices::DeviceStats& stats) {
  std::printf("\n%-10s  %9s  %7s  %13s\n", "SERVICE", "PROCESSED", "RETRIED", "DEAD-LETTERED");
  for (const auto& [group, filters] : proxy.groups) {
    const std::string p = "group." + group + ".";
    std::printf("%-10s  %9llu  %7llu  %13llu\n", group.c_str(),
                static_cast<unsigned long long>(stats.get(p + "acked")),
                static_cast<unsigned long long>(stats.get(p + "retried")),
                static_cast<unsigned long long>(stats.get(p + "dead")));
  }
  // Why orders died, read from the dead-letter spool's files.
  const std::string dlq = proxy.dlq.empty() ? proxy.spool + ".dlq" : proxy.dlq;
  std::map<std::pair<std::string, std::string>, int> reasons;
  for (const auto& d : mqkit::read_spool(dlq).dead_letters) {
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
    if (publish(topology, count) != count) return 1;
    if (argc != 5) return 0;
    const mqkit::DeviceSpec* proxy = nullptr;
    for (const auto& d : topology.devices())
      if (d.kind == "proxy") proxy = &d;
    std::vector<std::string> groups;
    for (const auto& [g, filters] : proxy->groups) groups.push_back(g);
    mqkit::devices::DeviceStats stats;
    const bool settled = wait_until_settled(topology.endpoint("order-admin"), groups, count,
                                            std::atoi(argv[4]), stats);
    print_summary(*proxy, stats);
    if (!settled) {
      std::printf("\nnot every order was settled within %s seconds\n", argv[4]);
      return 1;
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "order service: %s\n", e.what());
    return 1;
  }
}
