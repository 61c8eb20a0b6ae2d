// `mqkit proxy`: the ack-and-retry device with its spool and dead-letter spool.
#include <algorithm>
#include <cstdio>
#include <memory>

#include "commands.hpp"
#include "curve_flags.hpp"
#include "device_command.hpp"
#include "mqkit/devices/proxy.hpp"
#include "mqkit/duration.hpp"
#include "mqkit/stop.hpp"

namespace mqkit::cli {
namespace {

struct ProxyCliOptions {
  CurveFlags curve;
  devices::ProxyOptions proxy;
  std::string fsync = "always";
  std::string ack_timeout = "30s";
  std::string backoff = "exponential:1s..60s";
  std::uint32_t max_attempts = 5;
  std::string max_spool;
  std::string max_dlq;
  std::string heartbeat = "1s";
  std::string segment_size;
  std::vector<std::string> groups;  // NAME=FILTER[,FILTER]
};

int run_proxy(ProxyCliOptions o) {
  stop_on_signals();
  apply_curve_server_flags(o.curve, o.proxy.socket.security);
  parse_durability(o.fsync, o.proxy.spool);
  o.proxy.ack_timeout = parse_duration(o.ack_timeout);
  o.proxy.heartbeat = parse_duration(o.heartbeat);
  if (o.proxy.heartbeat.count() <= 0) throw UsageError("--heartbeat must be positive, e.g. 1s");
  if (o.proxy.ack_timeout.count() <= 0)
    throw UsageError("--ack-timeout must be positive, e.g. 30s");
  o.proxy.retry = RetryPolicy::parse(o.backoff, o.max_attempts);
  if (!o.max_spool.empty()) o.proxy.spool.max_size = parse_size(o.max_spool);
  if (!o.max_dlq.empty()) o.proxy.dlq_max_size = parse_size(o.max_dlq);
  if (!o.segment_size.empty()) {
    o.proxy.spool.segment_size = parse_size(o.segment_size);
  } else if (o.proxy.spool.max_size > 0) {
    // Space comes back a whole segment at a time: keep segments well below
    // the limit so that acks can free it.
    o.proxy.spool.segment_size = std::clamp<std::uint64_t>(o.proxy.spool.max_size / 8, 64 * 1024,
                                                           o.proxy.spool.segment_size);
  }
  if (o.proxy.spool.segment_size < 4096) throw UsageError("--segment-size must be at least 4KiB");
  for (const auto& g : o.groups) {
    const auto eq = g.find('=');
    if (eq == std::string::npos || eq == 0)
      throw UsageError("--group '" + g + "' must be NAME=FILTER[,FILTER], e.g. email=order.#");
    std::vector<std::string> filters;
    for (std::size_t start = eq + 1; start <= g.size();) {
      const auto comma = g.find(',', start);
      filters.push_back(g.substr(start, comma == std::string::npos ? comma : comma - start));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    o.proxy.groups[g.substr(0, eq)] = filters;
  }
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
  sub->add_option("--spool", o->proxy.spool_dir, "Spool directory (created if missing)")
      ->required();
  sub->add_option("--dlq", o->proxy.dlq_dir, "Dead-letter spool directory (default: SPOOL.dlq)");
  sub->add_option("--fsync", o->fsync, "always | interval=DUR | never (default always)");
  sub->add_option("--max-attempts", o->max_attempts,
                  "Deliveries before a message is dead-lettered (default 5)")
      ->check(CLI::PositiveNumber);
  sub->add_option("--ack-timeout", o->ack_timeout,
                  "Redeliver when no ack comes in this time (default 30s)")
      ->check(duration_validator());
  sub->add_option("--backoff", o->backoff,
                  "fixed:DUR or exponential:DUR..DUR (default exponential:1s..60s)");
  sub->add_option("--max-spool", o->max_spool, "Spool size limit; past it publishes get 'full'")
      ->check(size_validator());
  sub->add_option("--max-dlq", o->max_dlq,
                  "Dead-letter spool size limit (default none, not --max-spool's); past it a "
                  "message that used its attempts stays pending and is tried again after the "
                  "retry delay")
      ->check(size_validator());
  sub->add_option("--segment-size", o->segment_size,
                  "Spool segment file size (default 64MiB, or --max-spool/8); space is freed "
                  "a segment at a time")
      ->check(size_validator());
  sub->add_option("--group", o->groups, "Declare a group: NAME=FILTER[,FILTER] (repeatable)");
  sub->add_option("--heartbeat", o->heartbeat,
                  "Heartbeat interval with workers; a worker silent for 5 is lost and its "
                  "messages redelivered (default 1s)")
      ->check(duration_validator());
  o->proxy.stats = "tcp://127.0.0.1:*";  // the admin surface stays on this host by default
  sub->add_option("--stats", o->proxy.stats,
                  "Endpoint to bind for `mqkit stat`, `mqkit group` and `mqkit dlq` (default "
                  "tcp://127.0.0.1:*, a free loopback port; guarded by --allow too)");
  add_curve_server_flags(*sub, o->curve);
  sub->add_option("--dedup-window", o->proxy.dedup_window,
                  "Recent message ids remembered to answer re-sends 'duplicate' (default 100000)");
  sub->footer(
      "Producers: mqkit send --proxy FRONT. Workers: mqkit consume --proxy BACK --group NAME. "
      "Both speak docs/proxy-protocol.md; groups and attempt counts survive restarts.");
  sub->callback([&runner, o] { runner = [o] { return run_proxy(*o); }; });
}

}  // namespace mqkit::cli
