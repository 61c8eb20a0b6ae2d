// Sends one message through an installed mqkit's streamer and receives it.
#include <mqkit/devices/streamer.hpp>
#include <mqkit/mqkit.hpp>

#include <cstdio>

int main() {
  mqkit::devices::Streamer streamer({"tcp://127.0.0.1:*", "tcp://127.0.0.1:*", "", {}});
  streamer.start();
  mqkit::Worker worker(mqkit::connect(streamer.out_endpoint()));
  mqkit::Producer producer(mqkit::connect(streamer.in_endpoint()));
  (void)producer.send("package.test", "hello from an installed mqkit");
  const auto message = worker.receive(std::chrono::seconds(10));
  if (!message) return 1;
  const std::string_view payload = message->payload();
  std::printf("%.*s\n", static_cast<int>(payload.size()), payload.data());
  return message->payload() == "hello from an installed mqkit" ? 0 : 1;
}
