// Email: writes a confirmation for every order into DATA/outbox/ (one file
// per order), and a reminder for each order.reminder (the order service
// schedules one a day later). An order already in its applied.log is not
// mailed twice.
#include <filesystem>

#include "service.hpp"

int main(int argc, char** argv) {
  const std::string outbox = argc == 3 ? std::string(argv[2]) + "/outbox" : "";
  ecommerce::ServiceLogic logic;
  logic.apply = [&](const ecommerce::Order& o, const mqkit::Message& m) {
    std::filesystem::create_directories(outbox);
    if (m.topic() == "order.reminder") {
      ecommerce::write_file_atomically(outbox + "/" + o.id + ".eml",
                                       "To: " + o.customer +
                                           "@example.com\nSubject: How was your order?\n\n" +
                                           "Hello " + o.customer + ", tell us how it went.\n");
      return std::string();
    }
    std::string body = "To: " + o.customer + "@example.com\nSubject: Your order " + o.id +
                       "\n\nThank you, " + o.customer + "! We received your order:\n";
    for (const auto& [sku, qty] : o.items) body += "  " + std::to_string(qty) + " x " + sku + "\n";
    body += "Total: " + o.total + " EUR\n";
    ecommerce::write_file_atomically(outbox + "/" + o.id + ".eml", body);
    return std::string();
  };
  return ecommerce::run_service(argc, argv, "email", logic);
}
