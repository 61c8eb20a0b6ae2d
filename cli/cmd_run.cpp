// `mqkit run FILE`: every device a topology file describes, as threads of
// this one process (one thing to start, supervise and stop; one signal
// handler; spools flushed by each device's destructor). `--check` only
// validates the file.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <memory>

#include "commands.hpp"
#include "mqkit/devices/from_topology.hpp"
#include "mqkit/duration.hpp"
#include "mqkit/error.hpp"
#include "mqkit/security.hpp"
#include "mqkit/stop.hpp"
#include "mqkit/topology.hpp"

namespace mqkit::cli {
namespace {

struct RunOptions {
  std::string file;
  bool check = false;
  bool quiet = false;
  bool live = false;
  std::string interval = "2s";
};

std::string endpoints_of(const Topology& topo, const DeviceSpec& spec,
                         const devices::Device& device) {
  std::string out;
  for (const auto& [role, name] : spec.endpoints) {
    std::string bound = topo.endpoint_info(name).bind;
    if (role == "front" || role == "in") bound = device.in_endpoint();
    if (role == "back" || role == "out") bound = device.out_endpoint();
    if (role == "stats") bound = device.stats_endpoint();
    out += " " + role + " " + bound;
  }
  return out;
}

// One line per device: its traffic, and for a proxy one part per group.
std::string counters_line(const DeviceSpec& spec, const devices::DeviceStats& stats) {
  std::string line = spec.name + ":";
  if (spec.kind == "proxy") {
    line += " in " + std::to_string(stats.get("stored"));
    for (const auto& [group, filters] : spec.proxy.groups) {
      const std::string p = "group." + group + ".";
      line += " | " + group + " pending " + std::to_string(stats.get(p + "pending")) +
              " delivered " + std::to_string(stats.get(p + "delivered")) + " acked " +
              std::to_string(stats.get(p + "acked")) + " retried " +
              std::to_string(stats.get(p + "retried")) + " dead " +
              std::to_string(stats.get(p + "dead"));
    }
  } else {
    for (const auto& [name, value] : stats.counters)
      if (!name.starts_with("partition."))  // a stream's per-partition figures: see mqkit stat
        line += " " + name + " " + std::to_string(value);
  }
  return line;
}

// A bridge with a key pair gets into a CURVE device of the file only when
// its public key is on that device's allow list: only the key files can say,
// so this is checked here (before anything starts) and not by the parser.
void check_bridge_keys(const Topology& topo) {
  for (const auto& bridge : topo.devices()) {
    if (bridge.kind != "bridge" || bridge.curve_key.empty()) continue;
    const std::string key = load_key_pair(bridge.curve_key).public_key;
    for (const auto& device : topo.devices()) {
      if (device.kind == "bridge" || device.allow.empty()) continue;
      const bool side =
          std::any_of(device.endpoints.begin(), device.endpoints.end(), [&](const auto& e) {
            return e.first != "stats" && (e.second == bridge.endpoints.at("from") ||
                                          e.second == bridge.endpoints.at("to"));
          });
      if (!side) continue;
      const auto allowed = load_allow_list(device.allow);
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end())
        throw Error(errc::bad_argument,
                    topo.source() + ": bridge '" + bridge.name + "' cannot get into '" +
                        device.name + "': the public key of its curve_key (" + bridge.curve_key +
                        ") is not on " + device.name + "'s allow list (" + device.allow + ")");
    }
  }
}

int run_topology(const RunOptions& o) {
  const Topology topo = Topology::load(o.file);
  check_bridge_keys(topo);
  if (o.check) {
    std::printf("%s: ok, %zu devices, %zu endpoints\n", o.file.c_str(), topo.devices().size(),
                topo.endpoints().size());
    for (const auto& d : topo.devices()) std::printf("  %s (%s)\n", d.name.c_str(), d.kind.c_str());
    return 0;
  }
  stop_on_signals();
  std::vector<std::unique_ptr<devices::Device>> running;
  for (const auto& spec : topo.devices()) running.push_back(devices::make_device(topo, spec));
  for (std::size_t i = 0; i < running.size(); ++i) {
    running[i]->start();
    const auto& spec = topo.devices()[i];
    std::printf("mqkit run: %s (%s) up,%s\n", spec.name.c_str(), spec.kind.c_str(),
                endpoints_of(topo, spec, *running[i]).c_str());
  }
  std::fflush(stdout);
  // Live counters for people at a terminal; scripts get quiet output.
  const bool live = !o.quiet && (o.live || ::isatty(STDOUT_FILENO));
  const auto interval = parse_duration(o.interval);
  while (!wait_for_stop(interval)) {
    if (!live) continue;
    for (std::size_t i = 0; i < running.size(); ++i)
      std::printf("%s\n", counters_line(topo.devices()[i], running[i]->stats()).c_str());
    std::fflush(stdout);
  }
  for (std::size_t i = 0; i < running.size(); ++i) {
    const auto stats = running[i]->stats();
    running[i].reset();  // stops the device; a proxy flushes and closes its spools
    report("run", "stopped " + counters_line(topo.devices()[i], stats));
  }
  return 0;
}

}  // namespace

void setup_run(CLI::App& app, Runner& runner) {
  auto* sub = app.add_subcommand(
      "run", "Start every device a topology file describes, until SIGINT or SIGTERM");
  auto o = std::make_shared<RunOptions>();
  sub->add_option("file", o->file, "The topology file (YAML; see docs/topology.md)")->required();
  sub->add_flag("--check", o->check, "Only validate the file and list its devices");
  sub->add_flag("--quiet", o->quiet, "No live counters, even on a terminal");
  sub->add_flag("--live", o->live, "Live counters even when stdout is not a terminal");
  sub->add_option("--interval", o->interval, "How often live counters print (default 2s)")
      ->check(duration_validator());
  sub->footer(
      "Prints one 'up' line per device. Live counters (messages in; per group pending, "
      "delivered, acked, retried, dead) print every --interval when stdout is a terminal.");
  sub->callback([&runner, o] { runner = [o] { return run_topology(*o); }; });
}

}  // namespace mqkit::cli
