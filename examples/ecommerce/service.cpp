// The consumer services' common main.
#include "service.hpp"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "mqkit/error.hpp"
#include "mqkit/stop.hpp"
#include "mqkit/topology.hpp"

namespace ecommerce {

void write_file_atomically(const std::string& path, const std::string& text) {
  const std::string temp = path + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream out(temp, std::ios::trunc);
    out << text;
    if (!out.flush()) throw std::runtime_error("cannot write " + temp);
  }
  std::filesystem::rename(temp, path);
}

int run_service(int argc, char** argv, const std::string& group, const ServiceLogic& logic) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s TOPOLOGY_FILE DATA_DIR\n", argv[0]);
    return 2;
  }
  try {
    mqkit::stop_on_signals();
    const auto topology = mqkit::Topology::load(argv[1]);
    std::filesystem::create_directories(argv[2]);
    AppliedLog log(std::string(argv[2]) + "/applied.log", logic.on_applied);
    mqkit::ReliableConsumer consumer(topology.endpoint("order-work"),
                                     {.group = group, .prefetch = 20});
    // One fdatasync per batch of acks: an order is acked only once its line
    // is on disk; if the sync fails, the batch is retried instead.
    consumer.on_before_ack([&](std::vector<mqkit::MessageId>& ids,
                               std::vector<std::pair<mqkit::MessageId, std::string>>& retries) {
      try {
        log.sync();
      } catch (const std::exception& e) {
        for (const auto& id : ids) retries.emplace_back(id, e.what());
        ids.clear();
      }
    });
    std::uint64_t handled = 0, repeated = 0, refused = 0;
    consumer.run([&](const mqkit::Message& m) {
      const auto order = parse(m.payload());
      if (!order) {
        ++refused;
        return mqkit::Outcome::dead;  // not an order: retrying will not help
      }
      if (log.apply(order->id, m.envelope.attempt, [&] { return logic.apply(*order, m); }))
        ++handled;
      else
        ++repeated;  // applied before (a redelivery): ack again, do nothing twice
      return mqkit::Outcome::ack;
    });
    std::fprintf(
        stderr,
        "%s service (pid %d): handled %llu orders, %llu redelivered ones again, "
        "refused %llu\n",
        group.c_str(), static_cast<int>(::getpid()), static_cast<unsigned long long>(handled),
        static_cast<unsigned long long>(repeated), static_cast<unsigned long long>(refused));
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s service: %s\n", group.c_str(), e.what());
    return 1;
  }
}

}  // namespace ecommerce
