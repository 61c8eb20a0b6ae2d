// Inventory: reserves each order's items from the stock counts, never going
// below zero (an order it cannot fill is rejected into the dead-letter
// spool). Its state is its applied.log: each line carries the quantities the
// order reserved ("ORD-000042 attempt 1 SKU-3:2,SKU-7:1"), so the stock is
// the initial stock minus the log, rebuilt by replaying the log at start and
// kept up to date by folding in what the other worker appended. Workers of
// the group share the log under flock, so a redelivered order is not
// reserved twice (effectively-once on top of at-least-once).
#include <map>
#include <sstream>

#include "service.hpp"

namespace {

constexpr int kInitialStock = 100000;  // the demo's orders never run it out

std::string format_items(const ecommerce::Order& o) {
  std::string text;
  for (const auto& [sku, qty] : o.items)
    text += (text.empty() ? "" : ",") + sku + ":" + std::to_string(qty);
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, long> stock;
  for (const auto& sku : ecommerce::kSkus) stock[sku] = kInitialStock;

  ecommerce::ServiceLogic logic;
  logic.on_applied = [&](const std::string&, const std::string& items) {
    std::istringstream list(items);
    for (std::string item; std::getline(list, item, ',');) {
      const auto colon = item.find(':');
      if (colon != std::string::npos)
        stock[item.substr(0, colon)] -= std::stol(item.substr(colon + 1));
    }
  };
  logic.apply = [&](const ecommerce::Order& o, const mqkit::Message&) {
    for (const auto& [sku, qty] : o.items)
      if (stock[sku] < qty)
        throw mqkit::Reject("out of stock: " + sku + " has " + std::to_string(stock[sku]) +
                            ", the order needs " + std::to_string(qty));
    return format_items(o);  // reserved when the line is appended (on_applied)
  };
  return ecommerce::run_service(argc, argv, "inventory", logic);
}
