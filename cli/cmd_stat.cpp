// `mqkit stat EP`: ask a device for its counters.
#include <cstdio>
#include <memory>

#include "commands.hpp"
#include "mqkit/devices/stats.hpp"
#include "mqkit/duration.hpp"
#include "text_output.hpp"

namespace mqkit::cli {
namespace {

struct StatOptions {
  std::string endpoint;
  bool json = false;
  std::string timeout = "2s";
};

int run_stat(const StatOptions& o) {
  const auto stats = devices::query_stats(o.endpoint, parse_duration(o.timeout));
  std::string out;
  if (o.json) {
    out = "{\"device\":";
    append_json_string(out, stats.device);
    for (const auto& [name, value] : stats.counters) {
      out += ",";
      append_json_string(out, name);
      out += ":" + std::to_string(value);
    }
    out += "}\n";
  } else {
    out = stats.device + " at " + o.endpoint + "\n";
    for (const auto& [name, value] : stats.counters)
      out += "  " + name + ": " + std::to_string(value) + "\n";
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
  sub->add_option("--timeout", o->timeout, "How long to wait for the reply (default 2s)")
      ->check(duration_validator());
  sub->callback([&runner, o] { runner = [o] { return run_stat(*o); }; });
}

}  // namespace mqkit::cli
