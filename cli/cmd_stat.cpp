// `mqkit stat EP`: ask a device for its counters.
#include <cstdio>
#include <memory>

#include "commands.hpp"
#include "curve_flags.hpp"
#include "mqkit/devices/stats.hpp"
#include "mqkit/duration.hpp"
#include "table.hpp"
#include "text_output.hpp"

namespace mqkit::cli {
namespace {

struct StatOptions {
  CurveFlags curve;
  std::string endpoint;
  bool json = false;
  std::string timeout = "2s";
};

// Counters named "group.NAME.FIELD" (the proxy's per-group figures) become
// one row per group; the others stay device-wide.
struct SplitCounters {
  std::vector<std::pair<std::string, std::uint64_t>> device;
  std::vector<TableRow> groups;
};

SplitCounters split(const devices::DeviceStats& stats) {
  SplitCounters out;
  for (const auto& [name, value] : stats.counters) {
    const auto last_dot = name.rfind('.');
    if (!name.starts_with("group.") || last_dot <= 6) {
      out.device.emplace_back(name, value);
      continue;
    }
    const std::string group = name.substr(6, last_dot - 6);
    if (out.groups.empty() || out.groups.back().front().second != group)
      out.groups.push_back({{"group", group}});
    out.groups.back().emplace_back(name.substr(last_dot + 1), std::to_string(value));
  }
  return out;
}

int run_stat(const StatOptions& o) {
  Security security;
  apply_curve_client_flags(o.curve, security);
  const auto stats = devices::query_stats(o.endpoint, parse_duration(o.timeout), security);
  const auto counters = split(stats);
  std::string out;
  if (o.json) {
    out = "{\"device\":";
    append_json_string(out, stats.device);
    for (const auto& [name, value] : counters.device) {
      out += ",";
      append_json_string(out, name);
      out += ":" + std::to_string(value);
    }
    if (!counters.groups.empty()) {
      out += ",\"groups\":" + format_json_rows(counters.groups);
      out.pop_back();  // the rows' newline
    }
    out += "}\n";
  } else {
    out = stats.device + " at " + o.endpoint + "\n";
    for (const auto& [name, value] : counters.device)
      out += "  " + name + ": " + std::to_string(value) + "\n";
    if (!counters.groups.empty()) out += "\n" + format_table(counters.groups);
  }
  std::fputs(out.c_str(), stdout);
  return 0;
}

}  // namespace

void setup_stat(CLI::App& app, Runner& runner) {
  auto* sub = app.add_subcommand("stat", "Show a device's counters (messages in, out, ...)");
  auto o = std::make_shared<StatOptions>();
  sub->add_option("endpoint", o->endpoint, "The device's --stats endpoint")->required();
  sub->add_flag("--json", o->json, "Print one JSON object");
  add_curve_client_flags(*sub, o->curve);
  sub->add_option("--timeout", o->timeout, "How long to wait for the reply (default 2s)")
      ->check(duration_validator());
  sub->callback([&runner, o] { runner = [o] { return run_stat(*o); }; });
}

}  // namespace mqkit::cli
