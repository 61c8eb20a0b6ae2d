// Inventory: keeps stock counts in DATA/stock.txt and reserves each order's
// items, never going below zero (an order it cannot fill is rejected into
// the dead-letter spool). Workers of the group share the file under flock,
// and the file remembers which orders it applied, so a redelivered order is
// not reserved twice (effectively-once on top of at-least-once).
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "service.hpp"

namespace {

constexpr int kInitialStock = 100000;  // the demo's orders never run it out

// The flock'ed lock file next to the stock file, held while in scope.
class StockLock {
 public:
  explicit StockLock(const std::string& path)
      : fd_(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644)) {
    if (fd_ < 0 || ::flock(fd_, LOCK_EX) != 0) throw std::runtime_error("cannot lock " + path);
  }
  ~StockLock() { ::close(fd_); }
  StockLock(const StockLock&) = delete;
  StockLock& operator=(const StockLock&) = delete;

 private:
  int fd_;
};

}  // namespace

int main(int argc, char** argv) {
  const std::string dir = argc == 3 ? argv[2] : "";
  return ecommerce::run_service(
      argc, argv, "inventory", [&](const ecommerce::Order& o, const mqkit::Message&) {
        StockLock lock(dir + "/stock.lock");
        std::map<std::string, int> stock;
        std::set<std::string> applied;
        std::ifstream in(dir + "/stock.txt");
        for (std::string word, value; in >> word >> value;) {
          if (word == "applied")
            applied.insert(value);
          else
            stock[word] = std::stoi(value);
        }
        if (stock.empty())
          for (const auto& sku : ecommerce::kSkus) stock[sku] = kInitialStock;
        if (applied.contains(o.id)) return mqkit::Outcome::ack;  // a redelivery: done before
        for (const auto& [sku, qty] : o.items)
          if (stock[sku] < qty)
            throw mqkit::Reject("out of stock: " + sku + " has " + std::to_string(stock[sku]) +
                                ", the order needs " + std::to_string(qty));
        for (const auto& [sku, qty] : o.items) stock[sku] -= qty;
        applied.insert(o.id);
        std::ostringstream out;
        for (const auto& [sku, count] : stock) out << sku << ' ' << count << '\n';
        for (const auto& id : applied) out << "applied " << id << '\n';
        ecommerce::write_file_atomically(dir + "/stock.txt", out.str());
        return mqkit::Outcome::ack;
      });
}
