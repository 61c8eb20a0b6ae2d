// Sends one message through an installed mqkit's streamer, receives it, and
// stores it in a spool (so the spool's CRC32C library is linked too).
#include <mqkit/devices/streamer.hpp>
#include <mqkit/mqkit.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

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
  if (payload != "hello from an installed mqkit") return 1;

  char dir[] = "/tmp/mqkit-package-spool-XXXXXX";
  if (::mkdtemp(dir) == nullptr) return 1;
  bool stored = false;
  {
    mqkit::Spool spool(dir);
    stored = static_cast<bool>(spool.publish_sync(message->id(), {"g"}, "frame")) &&
             spool.pending("g").size() == 1;
  }
  std::filesystem::remove_all(dir);
  return stored ? 0 : 1;
}
