// `mqkit forwarder`: the XSUB→XPUB fan-out device.
#include "commands.hpp"
#include "device_command.hpp"
#include "mqkit/devices/forwarder.hpp"

namespace mqkit::cli {

void setup_forwarder(CLI::App& app, Runner& runner) {
  add_device_command(
      app, "forwarder",
      "Fan-out device: publishers connect to --in, subscribers to --out; every subscriber "
      "gets every message matching its prefix, losslessly",
      [](const devices::DeviceOptions& o) { return std::make_unique<devices::Forwarder>(o); },
      runner);
}

}  // namespace mqkit::cli
