// Warehouse: writes a packing slip per order into DATA/slips/.
#include <filesystem>

#include "service.hpp"

int main(int argc, char** argv) {
  const std::string slips = argc == 3 ? std::string(argv[2]) + "/slips" : "";
  ecommerce::ServiceLogic logic;
  logic.apply = [&](const ecommerce::Order& o, const mqkit::Message&) {
    std::filesystem::create_directories(slips);
    std::string slip = "PACKING SLIP " + o.id + "\nship to: " + o.customer + "\n";
    for (const auto& [sku, qty] : o.items) slip += "[ ] " + sku + " x" + std::to_string(qty) + "\n";
    ecommerce::write_file_atomically(slips + "/" + o.id + ".txt", slip);
    return std::string();
  };
  return ecommerce::run_service(argc, argv, "warehouse", logic);
}
