// Running a device from the CLI.
#include "device_command.hpp"

#include <cstdio>

#include "curve_flags.hpp"
#include "mqkit/stop.hpp"

namespace mqkit::cli {
namespace {

int run_device(const std::string& name, devices::DeviceOptions options, const CurveFlags& curve,
               const DeviceFactory& factory) {
  stop_on_signals();
  apply_curve_server_flags(curve, options.socket.security);
  const auto device = factory(options);
  return serve_device(name, *device);
}

}  // namespace

int serve_device(const std::string& name, devices::Device& device) {
  std::string up =
      "mqkit " + name + ": up, in " + device.in_endpoint() + " out " + device.out_endpoint();
  if (!device.stats_endpoint().empty()) up += " stats " + device.stats_endpoint();
  std::printf("%s\n", up.c_str());
  std::fflush(stdout);
  device.run();
  std::string line;
  for (const auto& [counter, value] : device.stats().counters)
    if (!counter.starts_with("group.") && !counter.starts_with("partition.") &&
        !counter.starts_with("consumer."))
      line += " " + counter + "=" + std::to_string(value);
  report(name, "stopped;" + line);
  return 0;
}

CLI::App* add_device_command(CLI::App& app, const std::string& name, const std::string& help,
                             DeviceFactory factory, Runner& runner) {
  auto* sub = app.add_subcommand(name, help);
  auto options = std::make_shared<devices::DeviceOptions>();
  auto curve = std::make_shared<CurveFlags>();
  options->stats = "tcp://127.0.0.1:*";  // the admin surface stays on this host by default
  sub->add_option("--in", options->in, "Endpoint to bind for senders, e.g. tcp://*:5557")
      ->required();
  sub->add_option("--out", options->out, "Endpoint to bind for receivers, e.g. tcp://*:5558")
      ->required();
  sub->add_option("--stats", options->stats,
                  "Endpoint to bind for stats requests (`mqkit stat EP`); default "
                  "tcp://127.0.0.1:*, a free loopback port");
  add_socket_options(*sub, options->socket);
  add_curve_server_flags(*sub, *curve);
  sub->footer(
      "Binds every endpoint (a port of * picks a free one), prints one line with the "
      "bound endpoints, and runs until SIGINT or SIGTERM.");
  sub->callback([&runner, name, options, curve, factory] {
    runner = [name, options, curve, factory] {
      return run_device(name, *options, *curve, factory);
    };
  });
  return sub;
}

}  // namespace mqkit::cli
