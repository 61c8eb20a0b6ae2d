// ClientSession against a fake device (a ROUTER over tcp on a free port):
// heartbeats when idle, joins again after silence, hands each command to its
// handler with the frames after it, and settles before it says DETACH.
#include "wire/client_session.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "helpers.hpp"
#include "wire/socket.hpp"

namespace {

using namespace std::chrono_literals;
using mqkit::detail::ClientSession;
using mqkit::detail::Incoming;
namespace protocol = mqkit::detail::protocol;
using protocol::Command;

// The device's side: a ROUTER bound to a free port.
struct FakeDevice {
  zmq::socket_t router{mqkit::detail::default_context(), zmq::socket_type::router};
  std::string endpoint;
  std::string peer;  // the client's routing id, once it spoke

  FakeDevice() {
    router.set(zmq::sockopt::linger, 0);
    router.bind("tcp://127.0.0.1:*");
    endpoint = router.get(zmq::sockopt::last_endpoint);
  }

  // The next command a client sent within `wait` (nullopt: none).
  std::optional<Command> next(std::chrono::milliseconds wait) {
    zmq::pollitem_t item{router.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, wait) != 1) return std::nullopt;
    zmq::message_t id, command;
    (void)router.recv(id);
    (void)router.recv(command);
    peer = id.to_string();
    protocol::CommandFrame c;
    if (!protocol::decode_command(mqkit::detail::view(command), c)) return std::nullopt;
    return c.command;
  }

  void send(const protocol::CommandFrame& c, const std::vector<std::string>& frames) {
    (void)router.send(zmq::buffer(peer), zmq::send_flags::sndmore);
    const auto encoded = protocol::encode_command(c);
    (void)router.send(zmq::buffer(encoded),
                      frames.empty() ? zmq::send_flags::none : zmq::send_flags::sndmore);
    for (std::size_t i = 0; i < frames.size(); ++i)
      (void)router.send(zmq::buffer(frames[i]),
                        i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
  }
};

// Joins with ATTACH and records what it is given.
struct Recorder final : mqkit::detail::SessionHandler {
  ClientSession& session;
  std::atomic<int> joins{0}, settles{0}, taken{0};
  std::vector<std::string> frames;  // of the last command taken

  explicit Recorder(ClientSession& s) : session(s) {}
  void join() override {
    ++joins;
    session.send({.command = Command::attach, .group = "g"});
  }
  void take(Incoming& in, std::unique_lock<std::mutex>&) override {
    frames.clear();
    for (std::size_t i = 0; i < in.frame_count(); ++i) frames.emplace_back(in.frame(i));
    ++taken;
  }
  void settle(std::unique_lock<std::mutex>&) override { ++settles; }
};

// Counts the commands the device gets within `wait`.
int count(FakeDevice& device, Command command, std::chrono::milliseconds wait) {
  int n = 0;
  for (const auto until = std::chrono::steady_clock::now() + wait;
       std::chrono::steady_clock::now() < until;)
    if (device.next(10ms) == command) ++n;
  return n;
}

// A session to a fake device that has sent its ATTACH.
struct Joined {
  FakeDevice device;
  ClientSession session{device.endpoint, {}, /*watch=*/false};
  Recorder recorder{session};

  Joined() {
    recorder.join();
    REQUIRE(device.next(5s) == Command::attach);
  }
  // Runs `body` while run() runs on another thread.
  template <typename Body>
  void running(Body&& body) {
    std::thread run([&] { session.run(recorder); });
    body();
    session.stop();
    run.join();
  }
};

}  // namespace

TEST_CASE("a session heartbeats when idle and joins again after the device is silent",
          "[session]") {
  Joined j;
  j.session.set_heartbeat(20ms);
  j.session.joined(j.recorder);
  j.running([&] {
    // Silent for 5 intervals (100 ms): ATTACH again, heartbeats meanwhile.
    CHECK(count(j.device, Command::heartbeat, 300ms) >= 5);
  });
  CHECK(j.recorder.joins >= 2);
}

TEST_CASE("a session gives its handler each command with the frames after it", "[session]") {
  Joined j;
  j.running([&] {
    j.device.send({.command = Command::deliver, .group = "g"}, {"one", "two"});
    CHECK(mqkit::test::wait_for([&] { return j.recorder.taken >= 1; }, 5s));
  });
  CHECK(j.recorder.frames == std::vector<std::string>{"one", "two"});
  CHECK(j.recorder.settles >= 1);
}

TEST_CASE("a session settles before it says detach", "[session]") {
  Joined j;
  j.session.detach(j.recorder);
  CHECK(j.recorder.settles == 1);
  CHECK(j.device.next(5s) == Command::detach);
}

TEST_CASE("a session awaiting an answer that never comes times out with the hint", "[session]") {
  FakeDevice device;
  ClientSession session(device.endpoint, {}, /*watch=*/true);
  const auto until = std::chrono::steady_clock::now() + 150ms;
  CHECK_THROWS_WITH(session.await_answer(until, "no answer", "(is it there?)"),
                    "no answer (is it there?)");
}

TEST_CASE("a session whose device is gone for long still stops and detaches", "[session]") {
  // Nothing listens: the socket queues every heartbeat and join, and with a
  // send queue of 2 it is full after a few intervals. A blocking send then
  // waited for ever, and stop() could not end run().
  std::string gone;
  {
    FakeDevice device;
    gone = device.endpoint;
  }
  mqkit::SocketOptions options;
  options.send_hwm = 2;
  // Shared with the thread: if it is stuck, it keeps them when let go.
  auto session = std::make_shared<ClientSession>(gone, options, /*watch=*/false);
  auto recorder = std::make_shared<Recorder>(*session);
  auto returned = std::make_shared<std::atomic<bool>>(false);
  recorder->join();
  session->set_heartbeat(5ms);
  std::thread run([session, recorder, returned] {
    session->run(*recorder);  // joins again every 5 silent intervals
    session->close(*recorder);
    *returned = true;
  });
  std::this_thread::sleep_for(300ms);  // 60 intervals: the queue is long full
  CHECK(recorder->joins >= 3);
  session->stop();
  const bool ended = mqkit::test::wait_for([&] { return returned->load(); }, 5s);
  CHECK(ended);
  if (ended)
    run.join();
  else
    run.detach();  // stuck in a send: the other tests still run
}
