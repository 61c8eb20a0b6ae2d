// The measurement behind mqkit's one-frame layout (docs/protocol.md): plain
// cppzmq PUSH->PULL over tcp loopback, the same payload sent as
//   raw:        [payload]
//   one frame:  [topic + envelope-sized head + payload]   (mqkit's choice)
//   two frames: [topic][envelope-sized head + payload]
//
// usage: mqkit_bench_frames [count=2000000]
#include <zmq.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

namespace {

enum class Layout { raw, one_frame, two_frames };

double run(Layout layout, std::size_t size, int count) {
  zmq::context_t ctx;
  zmq::socket_t pull(ctx, zmq::socket_type::pull);
  pull.bind("tcp://127.0.0.1:*");
  const std::string endpoint = pull.get(zmq::sockopt::last_endpoint);
  constexpr std::size_t kHead = 40;  // about an envelope
  std::thread producer([&] {
    zmq::socket_t push(ctx, zmq::socket_type::push);
    push.connect(endpoint);
    const std::string topic = "order.created";
    const std::string payload(size, 'x');
    for (int i = 0; i < count; ++i) {
      if (layout == Layout::raw) {
        (void)push.send(zmq::buffer(payload), zmq::send_flags::none);
      } else if (layout == Layout::one_frame) {
        zmq::message_t m(topic.size() + 1 + kHead + size);
        std::memcpy(m.data(), topic.data(), topic.size());
        (void)push.send(m, zmq::send_flags::none);
      } else {
        (void)push.send(zmq::buffer(topic), zmq::send_flags::sndmore);
        zmq::message_t m(kHead + size);
        (void)push.send(m, zmq::send_flags::none);
      }
    }
  });
  zmq::message_t m;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < count; ++i) {
    (void)pull.recv(m);
    if (layout == Layout::two_frames) (void)pull.recv(m);
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  producer.join();
  return count / s;
}

}  // namespace

int main(int argc, char** argv) {
  const int count = argc > 1 ? std::atoi(argv[1]) : 2'000'000;
  for (const std::size_t size : {std::size_t(100), std::size_t(1024)}) {
    const double raw = run(Layout::raw, size, count);
    const double one = run(Layout::one_frame, size, count);
    const double two = run(Layout::two_frames, size, count);
    std::printf("%5zu B  raw %9.0f msg/s  one frame %9.0f (%.2f)  two frames %9.0f (%.2f)\n", size,
                raw, one, one / raw, two, two / raw);
  }
  return 0;
}
