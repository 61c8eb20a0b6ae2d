// ReliableConsumer against a fake proxy (a ROUTER on a free port) that
// sends DELIVER commands by hand: the attempt a handler sees is the one the
// proxy gave in DELIVER, and a DELIVER whose attempts do not match its
// frames is not handled at all (the proxy redelivers after its ack timeout).
#include <catch2/catch.hpp>
#include <zmq.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "helpers.hpp"
#include "mqkit/envelope.hpp"
#include "mqkit/reliable_consumer.hpp"
#include "protocol/commands.hpp"
#include "wire/socket.hpp"

namespace {

using namespace std::chrono_literals;
namespace protocol = mqkit::detail::protocol;
using protocol::Command;

struct FakeProxy {
  zmq::socket_t router{mqkit::detail::default_context(), zmq::socket_type::router};
  std::string endpoint;
  std::string worker;  // its routing id, once it spoke

  FakeProxy() {
    router.set(zmq::sockopt::linger, 0);
    router.bind("tcp://127.0.0.1:*");
    endpoint = router.get(zmq::sockopt::last_endpoint);
  }

  // The worker's next command within `wait`.
  std::optional<protocol::CommandFrame> next(std::chrono::milliseconds wait) {
    for (const auto until = std::chrono::steady_clock::now() + wait;
         std::chrono::steady_clock::now() < until;) {
      zmq::pollitem_t item{router.handle(), 0, ZMQ_POLLIN, 0};
      if (zmq::poll(&item, 1, 50ms) != 1) continue;
      std::vector<zmq::message_t> parts;
      zmq::message_t part;
      do {
        if (!router.recv(part)) return std::nullopt;
        parts.push_back(std::move(part));
      } while (parts.back().more());
      protocol::CommandFrame c;
      if (parts.size() < 2 || !protocol::decode_command(mqkit::detail::view(parts[1]), c)) continue;
      worker = parts[0].to_string();
      return c;
    }
    return std::nullopt;
  }

  // Waits for the worker's ATTACH (other commands are skipped) and answers
  // it, with an ack timeout when one is given (the worker then keeps leases).
  bool accept_attach(std::chrono::milliseconds wait, std::uint64_t ack_timeout_ms = 0) {
    for (const auto until = std::chrono::steady_clock::now() + wait;
         std::chrono::steady_clock::now() < until;) {
      const auto c = next(50ms);
      if (!c || c->command != Command::attach) continue;
      send({.command = Command::attached,
            .group = c->group,
            .ack_timeout_ms = ack_timeout_ms,
            .heartbeat_ms = ack_timeout_ms > 0 ? 100u : 0u},
           {});
      return true;
    }
    return false;
  }

  void send(const protocol::CommandFrame& c, const std::vector<std::string>& frames) {
    (void)router.send(zmq::buffer(worker), zmq::send_flags::sndmore);
    const auto encoded = protocol::encode_command(c);
    (void)router.send(zmq::buffer(encoded),
                      frames.empty() ? zmq::send_flags::none : zmq::send_flags::sndmore);
    for (std::size_t i = 0; i < frames.size(); ++i)
      (void)router.send(zmq::buffer(frames[i]),
                        i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
  }
};

std::string message(const std::string& payload) {
  return mqkit::encode(mqkit::Envelope::make("orders.created"), payload);
}

}  // namespace

TEST_CASE(
    "a worker takes each message's attempt from DELIVER and refuses a DELIVER whose "
    "attempts do not match its frames",
    "[reliable][protocol]") {
  FakeProxy proxy;
  std::thread answer([&] { (void)proxy.accept_attach(10s); });
  mqkit::ReliableConsumerOptions options;
  options.group = "g";
  mqkit::ReliableConsumer consumer(proxy.endpoint, options);
  answer.join();
  REQUIRE(!proxy.worker.empty());

  std::mutex mutex;
  std::vector<std::pair<std::string, std::uint32_t>> handled;  // payload, attempt
  std::thread run([&] {
    consumer.run([&](const mqkit::Message& m) {
      std::lock_guard lock(mutex);
      handled.emplace_back(std::string(m.payload()), m.envelope.attempt);
      return mqkit::Outcome::ack;
    });
  });
  // Two frames, one attempt: which attempt is the second's? Not handled.
  proxy.send({.command = Command::deliver, .group = "g", .attempts = {3}},
             {message("short 1"), message("short 2")});
  // Two frames, three attempts: not handled either.
  proxy.send({.command = Command::deliver, .group = "g", .attempts = {3, 4, 5}},
             {message("long 1"), message("long 2")});
  // As a proxy sends them: one attempt per frame.
  proxy.send({.command = Command::deliver, .group = "g", .attempts = {4, 6}},
             {message("good 1"), message("good 2")});
  const bool both = mqkit::test::wait_for(
      [&] {
        std::lock_guard lock(mutex);
        return handled.size() >= 2;
      },
      10s);
  // The refused DELIVERs came first on the one connection: they were taken
  // (or not) before these.
  consumer.stop();
  run.join();
  REQUIRE(both);
  const std::vector<std::pair<std::string, std::uint32_t>> expected{{"good 1", 4}, {"good 2", 6}};
  CHECK(handled == expected);
}

TEST_CASE("a worker keeps no lease on a DELIVER it refused for its attempts",
          "[reliable][protocol]") {
  // While a handler runs, the worker's heartbeat thread reads ahead and
  // leases (IN_PROGRESS) what arrived meanwhile: a refused DELIVER must not
  // be among it, or the proxy would never hand its messages out again.
  FakeProxy proxy;
  std::thread answer([&] { (void)proxy.accept_attach(10s, 300); });
  mqkit::ReliableConsumerOptions options;
  options.group = "g";
  mqkit::ReliableConsumer consumer(proxy.endpoint, options);
  answer.join();
  REQUIRE(!proxy.worker.empty());

  std::atomic<bool> handling{false}, finish{false};
  std::thread run([&] {
    consumer.run([&](const mqkit::Message&) {
      handling = true;
      for (int i = 0; i < 1000 && !finish; ++i) std::this_thread::sleep_for(10ms);
      return mqkit::Outcome::ack;
    });
  });
  proxy.send({.command = Command::deliver, .group = "g", .attempts = {1}}, {message("slow")});
  REQUIRE(mqkit::test::wait_for([&] { return handling.load(); }, 10s));
  auto a = mqkit::Envelope::make("t"), b = mqkit::Envelope::make("t");
  proxy.send({.command = Command::deliver, .group = "g", .attempts = {3}},
             {mqkit::encode(a, "a"), mqkit::encode(b, "b")});
  // Three leases (one per 100 ms) while the handler still runs: the refused
  // DELIVER was read ahead by then.
  std::set<std::string> leased;
  int leases = 0;
  for (const auto until = std::chrono::steady_clock::now() + 10s;
       leases < 3 && std::chrono::steady_clock::now() < until;)
    if (const auto c = proxy.next(100ms); c && c->command == Command::in_progress) {
      ++leases;
      for (const auto& id : c->ids) leased.insert(id.to_string());
    }
  finish = true;
  consumer.stop();
  run.join();
  REQUIRE(leases == 3);
  CHECK_FALSE(leased.contains(a.id.to_string()));
  CHECK_FALSE(leased.contains(b.id.to_string()));
}
