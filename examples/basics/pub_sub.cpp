// A minimal fan-out: one publisher, two subscribers with different topic
// prefixes. Run it: build/examples/mqkit_example_pub_sub
#include <mqkit/mqkit.hpp>

#include <cstdio>

int main() {
  using namespace std::chrono_literals;
  mqkit::Publisher publisher(mqkit::bind("tcp://127.0.0.1:*"));
  const std::string endpoint = publisher.last_endpoint();

  // Wait until each subscription has reached the publisher (slow joiners);
  // one at a time, since "" would also satisfy a wait for "order.created".
  mqkit::Subscriber orders(mqkit::connect(endpoint), {"order."});
  if (!publisher.wait_for_subscriber("order.created", 5s)) return 1;
  mqkit::Subscriber everything(mqkit::connect(endpoint), {""});
  if (!publisher.wait_for_subscriber("user.signup", 5s)) return 1;

  (void)publisher.send("order.created", "order 1001");
  (void)publisher.send("user.signup", "alice");

  int received = 0;
  while (auto m = orders.receive(500ms)) {
    std::printf("orders got     %s: %.*s\n", m->topic().c_str(), int(m->payload().size()),
                m->payload().data());
    ++received;
  }
  while (auto m = everything.receive(500ms)) {
    std::printf("everything got %s: %.*s\n", m->topic().c_str(), int(m->payload().size()),
                m->payload().data());
    ++received;
  }
  return received == 3 ? 0 : 1;  // 1 for "order.", 2 for ""
}
