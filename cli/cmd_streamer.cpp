// `mqkit streamer`: the PULL→PUSH queue device.
#include "commands.hpp"
#include "device_command.hpp"
#include "mqkit/devices/streamer.hpp"

namespace mqkit::cli {

void setup_streamer(CLI::App& app, Runner& runner) {
  add_device_command(
      app, "streamer",
      "Queue device: producers connect to --in (PUSH), workers to --out (PULL); each message "
      "goes to one worker",
      [](const devices::DeviceOptions& o) { return std::make_unique<devices::Streamer>(o); },
      runner);
}

}  // namespace mqkit::cli
