// An order as the order service publishes it: one readable line, so that
// `mqkit dlq show` and `mqkit consume` print it as it is.
//   order=ORD-000042 customer=carol items=SKU-3:2,SKU-7:1 total=57.80 card=4111111111111111
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ecommerce {

struct Order {
  std::string id;  // ORD-000042
  std::string customer;
  std::vector<std::pair<std::string, int>> items;  // SKU, quantity
  std::string total;                               // 57.80
  std::string card;
  int number = 0;  // 42: what the demo's deliberate failures key on
};

std::string format(const Order& order);
// Empty when the line is not an order.
std::optional<Order> parse(std::string_view line);
// The demo's order number `n`: a fixed mix of customers and items; every
// 40th order carries a malformed card number (billing dead-letters it).
Order generate(int n);

inline const std::vector<std::string> kSkus{"SKU-1", "SKU-2", "SKU-3", "SKU-4",
                                            "SKU-5", "SKU-6", "SKU-7", "SKU-8"};

}  // namespace ecommerce
