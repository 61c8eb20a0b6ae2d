// `mqkit stat EP`: ask a device for its counters.
#include <algorithm>
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

// Counters named "KIND.NAME.FIELD" (the proxy's per-group figures, a
// stream's per-partition and per-consumer-name ones) become one table per
// kind, one row per NAME; the others stay device-wide.
struct Table {
  std::string kind;  // group, partition, consumer
  std::vector<TableRow> rows;
};
struct SplitCounters {
  std::vector<std::pair<std::string, std::uint64_t>> device;
  std::vector<Table> tables;
};

SplitCounters split(const devices::DeviceStats& stats) {
  static const std::vector<std::string> kinds{"group", "partition", "consumer"};
  SplitCounters out;
  for (const auto& kind : kinds) out.tables.push_back({kind, {}});
  for (const auto& [name, value] : stats.counters) {
    const auto first_dot = name.find('.');
    const auto last_dot = name.rfind('.');
    const auto kind = std::find(kinds.begin(), kinds.end(), name.substr(0, first_dot));
    if (first_dot == std::string::npos || kind == kinds.end() || last_dot <= first_dot + 1) {
      out.device.emplace_back(name, value);
      continue;
    }
    auto& rows = out.tables[static_cast<std::size_t>(kind - kinds.begin())].rows;
    const std::string row = name.substr(first_dot + 1, last_dot - first_dot - 1);
    if (rows.empty() || rows.back().front().second != row) rows.push_back({{*kind, row}});
    rows.back().emplace_back(name.substr(last_dot + 1), std::to_string(value));
  }
  std::erase_if(out.tables, [](const Table& t) { return t.rows.empty(); });
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
    for (const auto& table : counters.tables) {
      out += ",\"" + table.kind + "s\":" + format_json_rows(table.rows);
      out.pop_back();  // the rows' newline
    }
    out += "}\n";
  } else {
    out = stats.device + " at " + o.endpoint + "\n";
    for (const auto& [name, value] : counters.device)
      out += "  " + name + ": " + std::to_string(value) + "\n";
    for (const auto& table : counters.tables) out += "\n" + format_table(table.rows);
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
