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

int run_service(int argc, char** argv, const std::string& group, const OrderHandler& handler) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s TOPOLOGY_FILE DATA_DIR\n", argv[0]);
    return 2;
  }
  try {
    mqkit::stop_on_signals();
    const auto topology = mqkit::Topology::load(argv[1]);
    std::filesystem::create_directories(argv[2]);
    mqkit::ReliableConsumer consumer(topology.endpoint("order-work"),
                                     {.group = group, .prefetch = 20});
    std::uint64_t handled = 0, refused = 0;
    consumer.run([&](const mqkit::Message& m) {
      const auto order = parse(m.payload());
      if (!order) {
        ++refused;
        return mqkit::Outcome::dead;  // not an order: retrying will not help
      }
      const auto outcome = handler(*order, m);
      if (outcome == mqkit::Outcome::ack) {
        ++handled;
        // Every handled delivery, for anyone who wants to check the counts.
        std::ofstream(std::string(argv[2]) + "/handled.log", std::ios::app)
            << order->id << " attempt " << m.envelope.attempt << "\n";
      }
      return outcome;
    });
    std::fprintf(stderr, "%s service (pid %d): handled %llu orders, refused %llu\n", group.c_str(),
                 static_cast<int>(::getpid()), static_cast<unsigned long long>(handled),
                 static_cast<unsigned long long>(refused));
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s service: %s\n", group.c_str(), e.what());
    return 1;
  }
}

}  // namespace ecommerce
