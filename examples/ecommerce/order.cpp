// Orders as text lines, and the demo's deterministic order generator.
#include "order.hpp"

#include <cstdio>
#include <sstream>

namespace ecommerce {

std::string format(const Order& o) {
  std::string items;
  for (const auto& [sku, qty] : o.items)
    items += (items.empty() ? "" : ",") + sku + ":" + std::to_string(qty);
  return "order=" + o.id + " customer=" + o.customer + " items=" + items + " total=" + o.total +
         " card=" + o.card;
}

std::optional<Order> parse(std::string_view line) {
  Order o;
  std::istringstream words{std::string(line)};
  for (std::string word; words >> word;) {
    const auto eq = word.find('=');
    if (eq == std::string::npos) return std::nullopt;
    const std::string key = word.substr(0, eq), value = word.substr(eq + 1);
    if (key == "order") {
      o.id = value;
      if (value.size() > 4) o.number = std::atoi(value.c_str() + 4);
    } else if (key == "customer") {
      o.customer = value;
    } else if (key == "total") {
      o.total = value;
    } else if (key == "card") {
      o.card = value;
    } else if (key == "items") {
      std::istringstream list(value);
      for (std::string item; std::getline(list, item, ',');) {
        const auto colon = item.find(':');
        if (colon == std::string::npos) return std::nullopt;
        o.items.emplace_back(item.substr(0, colon), std::atoi(item.c_str() + colon + 1));
      }
    }
  }
  if (o.id.empty() || o.customer.empty() || o.items.empty()) return std::nullopt;
  return o;
}

Order generate(int n) {
  static const char* customers[] = {"alice", "bob", "carol", "dave", "erin", "frank", "grace"};
  Order o;
  char id[16];
  std::snprintf(id, sizeof id, "ORD-%06d", n);
  o.id = id;
  o.number = n;
  o.customer = customers[n % 7];
  int cents = 0;
  for (int i = 0; i < 1 + n % 3; ++i) {
    const int sku = (n * 7 + i * 3) % static_cast<int>(kSkus.size());
    const int qty = 1 + (n + i) % 3;
    o.items.emplace_back(kSkus[static_cast<std::size_t>(sku)], qty);
    cents += qty * (499 + sku * 250);
  }
  char total[32];
  std::snprintf(total, sizeof total, "%d.%02d", cents / 100, cents % 100);
  o.total = total;
  o.card = n % 40 == 13 ? "4111-XXXX-BAD" : "4111111111111111";
  return o;
}

}  // namespace ecommerce
