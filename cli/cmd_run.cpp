// `mqkit run FILE`: every device a topology file describes, as threads of
// this one process (one thing to start, supervise and stop; one signal
// handler; spools flushed by each device's destructor). `--check` only
// validates the file.
#include <unistd.h>

#include <cstdio>
#include <memory>

#include "commands.hpp"
#include "mqkit/devices/from_topology.hpp"
#include "mqkit/duration.hpp"
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
    for (const auto& [group, filters] : spec.groups) {
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

int run_topology(const RunOptions& o) {
  const Topology topo = Topology::load(o.file);
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
