// `mqkit proxy`: the ack-and-retry device with its spool and dead-letter spool.
#include <memory>

#include "commands.hpp"
#include "curve_flags.hpp"
#include "device_command.hpp"
#include "mqkit/devices/proxy.hpp"
#include "mqkit/stop.hpp"
#include "setting_flags.hpp"

namespace mqkit::cli {
namespace {

struct ProxyCliOptions {
  CurveFlags curve;
  devices::ProxyOptions proxy;
};

int run_proxy(ProxyCliOptions o, const SettingFlags<ProxySettings>& settings) {
  stop_on_signals();
  apply_curve_server_flags(o.curve, o.proxy.socket.security);
  settings.apply(o.proxy);
  devices::Proxy proxy(o.proxy);
  return serve_device("proxy", proxy);
}

}  // namespace

void setup_proxy(CLI::App& app, Runner& runner) {
  auto* sub = app.add_subcommand(
      "proxy",
      "Ack-and-retry device: stores every message in a spool before confirming it, "
      "delivers it to every matching group, retries, dead-letters");
  auto o = std::make_shared<ProxyCliOptions>();
  sub->add_option("--front", o->proxy.front, "Endpoint to bind for producers")->required();
  sub->add_option("--back", o->proxy.back, "Endpoint to bind for workers")->required();
  // --spool, --fsync, --group, ...: the proxy's settings, as in topology files.
  auto settings = std::make_shared<SettingFlags<ProxySettings>>(*sub, proxy_settings());
  o->proxy.stats = "tcp://127.0.0.1:*";  // the admin surface stays on this host by default
  sub->add_option("--stats", o->proxy.stats,
                  "Endpoint to bind for `mqkit stat`, `mqkit group` and `mqkit dlq` (default "
                  "tcp://127.0.0.1:*, a free loopback port; guarded by --allow too)");
  add_curve_server_flags(*sub, o->curve);
  sub->footer(
      "Producers: mqkit send --proxy FRONT. Workers: mqkit consume --proxy BACK --group NAME. "
      "Both speak docs/proxy-protocol.md; groups and attempt counts survive restarts.");
  sub->callback(
      [&runner, o, settings] { runner = [o, settings] { return run_proxy(*o, *settings); }; });
}

}  // namespace mqkit::cli
