// Billing: checks the card and writes an invoice per order into
// DATA/invoices/. A malformed card number can never succeed: the order is
// rejected into the dead-letter spool at once. Every 7th order meets a
// "gateway timeout" on its first attempt: it is retried and then succeeds.
#include <algorithm>

#include <filesystem>

#include "service.hpp"

int main(int argc, char** argv) {
  const std::string invoices = argc == 3 ? std::string(argv[2]) + "/invoices" : "";
  return ecommerce::run_service(
      argc, argv, "billing", [&](const ecommerce::Order& o, const mqkit::Message& m) {
        const bool digits_only =
            std::all_of(o.card.begin(), o.card.end(), [](char c) { return c >= '0' && c <= '9'; });
        if (o.card.size() != 16 || !digits_only)
          throw mqkit::Reject("card number is malformed: '" + o.card + "'");
        if (o.number % 7 == 0 && m.envelope.attempt == 1)
          throw std::runtime_error("payment gateway timed out");  // transient: retried
        std::filesystem::create_directories(invoices);
        ecommerce::write_file_atomically(invoices + "/" + o.id + ".txt",
                                         "INVOICE " + o.id + "\ncustomer: " + o.customer +
                                             "\ncard: **** **** **** " + o.card.substr(12) +
                                             "\ntotal: " + o.total + " EUR\n");
        return mqkit::Outcome::ack;
      });
}
