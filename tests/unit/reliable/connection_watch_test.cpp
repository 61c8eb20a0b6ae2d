// ConnectionWatch: libzmq sends a socket's monitor events from its I/O
// thread with a blocking send, so a watch that goes away, or is not read,
// must never leave that thread waiting: every socket of the process shares it.
#include "wire/connection_watch.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <thread>

#include "wire/socket.hpp"

namespace {

using namespace std::chrono_literals;

std::string bound_endpoint(zmq::socket_t& socket) {
  socket.bind("tcp://127.0.0.1:*");
  return socket.get(zmq::sockopt::last_endpoint);
}

// A DEALER to a ROUTER in the process's context: true when one message
// makes the round trip within `wait` (the I/O thread is alive).
bool round_trip(std::chrono::milliseconds wait) {
  auto& context = mqkit::detail::default_context();
  zmq::socket_t router(context, zmq::socket_type::router);
  zmq::socket_t dealer(context, zmq::socket_type::dealer);
  router.set(zmq::sockopt::linger, 0);
  dealer.set(zmq::sockopt::linger, 0);
  dealer.connect(bound_endpoint(router));
  (void)dealer.send(zmq::str_buffer("ping"), zmq::send_flags::none);
  zmq::pollitem_t item{router.handle(), 0, ZMQ_POLLIN, 0};
  return zmq::poll(&item, 1, wait) == 1;
}

// `dealer` connected to `router`, its handshake done.
void connect_and_greet(zmq::socket_t& dealer, zmq::socket_t& router) {
  dealer.connect(bound_endpoint(router));
  (void)dealer.send(zmq::str_buffer("hello"), zmq::send_flags::none);
  zmq::pollitem_t item{router.handle(), 0, ZMQ_POLLIN, 0};
  REQUIRE(zmq::poll(&item, 1, 5s) == 1);
  zmq::message_t identity, body;
  REQUIRE(router.recv(identity));
  REQUIRE(router.recv(body));
}

}  // namespace

TEST_CASE("a watch that is gone never blocks the I/O thread when its socket's peer goes away",
          "[security][watch]") {
  auto& context = mqkit::detail::default_context();
  zmq::socket_t dealer(context, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::linger, 0);
  std::optional<zmq::socket_t> router(std::in_place, context, zmq::socket_type::router);
  router->set(zmq::sockopt::linger, 0);
  {
    mqkit::detail::ConnectionWatch watch(dealer, false);
    connect_and_greet(dealer, *router);
    std::this_thread::sleep_for(100ms);  // its HANDSHAKE_SUCCEEDED event is queued
  }
  std::this_thread::sleep_for(100ms);
  // The peer goes (a device killed): the DEALER's DISCONNECTED event has
  // no reader now.
  router.reset();
  std::this_thread::sleep_for(300ms);
  CHECK(round_trip(5s));
}

TEST_CASE("a watch that is never read never blocks the I/O thread however often its peer drops",
          "[security][watch]") {
  auto& context = mqkit::detail::default_context();
  zmq::socket_t dealer(context, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::linger, 0);
  dealer.set(zmq::sockopt::reconnect_ivl, 1);
  mqkit::detail::ConnectionWatch watch(dealer, false);
  // Each connection queues a HANDSHAKE_SUCCEEDED event (and each drop seen
  // in time a DISCONNECTED): more than the 2,000 libzmq's default pipe holds.
  constexpr int kConnections = 2100;
  int made = 0;
  for (; made < kConnections; ++made) {
    zmq::socket_t router(context, zmq::socket_type::router);
    router.set(zmq::sockopt::linger, 0);
    const std::string endpoint = bound_endpoint(router);
    dealer.connect(endpoint);
    (void)dealer.send(zmq::str_buffer("hello"), zmq::send_flags::dontwait);
    zmq::pollitem_t item{router.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, 2s) != 1) break;  // the I/O thread stopped: checked below
    router.close();
    std::this_thread::sleep_for(2ms);  // the DEALER sees the drop
    dealer.disconnect(endpoint);
  }
  CHECK(made == kConnections);
  CHECK(round_trip(5s));
  CHECK(watch.dropped());
}
