// Email: writes a confirmation for every order into DATA/outbox/ (one file
// per order). An order already in its applied.log is not mailed twice.
#include <filesystem>

#include "service.hpp"

int main(int argc, char** argv) {
  const std::string outbox = argc == 3 ? std::string(argv[2]) + "/outbox" : "";
  ecommerce::ServiceLogic logic;
  logic.apply = [&](const ecommerce::Order& o, const mqkit::Message&) {
    std::filesystem::create_directories(outbox);
    std::string body = "To: " + o.customer + "@example.com\nSubject: Your order " + o.id +
                       "\n\nThank you, " + o.customer + "! We received your order:\n";
    for (const auto& [sku, qty] : o.items) body += "  " + std::to_string(qty) + " x " + sku + "\n";
    body += "Total: " + o.total + " EUR\n";
    ecommerce::write_file_atomically(outbox + "/" + o.id + ".eml", body);
    return std::string();
  };
  return ecommerce::run_service(argc, argv, "email", logic);
}
