// Billing: checks the card and writes an invoice per order into
// DATA/invoices/. A malformed card number can never succeed: the order is
// rejected into the dead-letter spool at once. Every 7th order meets a
// "gateway timeout" on its first attempt: it is retried and then succeeds.
//
// The fix: with ECOMMERCE_BILLING_FIX=1 in its environment, billing sends an
// invoice for bank transfer instead of rejecting a malformed card, so the
// dead-lettered orders can be replayed (`mqkit dlq replay`) and succeed.
#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "service.hpp"

int main(int argc, char** argv) {
  const std::string invoices = argc == 3 ? std::string(argv[2]) + "/invoices" : "";
  const bool fixed = std::getenv("ECOMMERCE_BILLING_FIX") != nullptr;
  ecommerce::ServiceLogic logic;
  logic.apply = [&](const ecommerce::Order& o, const mqkit::Message& m) {
    const bool card_ok =
        o.card.size() == 16 &&
        std::all_of(o.card.begin(), o.card.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!card_ok && !fixed) throw mqkit::Reject("card number is malformed: '" + o.card + "'");
    if (o.number % 7 == 0 && m.envelope.attempt == 1)
      throw std::runtime_error("payment gateway timed out");  // transient: retried
    std::filesystem::create_directories(invoices);
    const std::string payment =
        card_ok ? "card **** **** **** " + o.card.substr(12) : "bank transfer";
    ecommerce::write_file_atomically(invoices + "/" + o.id + ".txt",
                                     "INVOICE " + o.id + "\ncustomer: " + o.customer +
                                         "\npayment: " + payment + "\ntotal: " + o.total +
                                         " EUR\n");
    return std::string();
  };
  return ecommerce::run_service(argc, argv, "billing", logic);
}
