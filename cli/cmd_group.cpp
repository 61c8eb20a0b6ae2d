// `mqkit group ls EP`, `mqkit group rm EP NAME --yes` and `mqkit group
// pause|resume EP NAME`: a running proxy's consumer groups, through its
// admin (stats) endpoint.
#include <cstdio>
#include <memory>

#include "commands.hpp"
#include "curve_flags.hpp"
#include "mqkit/devices/stats.hpp"
#include "mqkit/duration.hpp"
#include "table.hpp"

namespace mqkit::cli {
namespace {

struct GroupOptions {
  CurveFlags curve;
  std::string endpoint;
  std::string name;
  bool json = false;
  bool yes = false;
  std::string timeout = "5s";
};

Security security_of(const GroupOptions& o) {
  Security security;
  apply_curve_client_flags(o.curve, security);
  return security;
}

int run_group_ls(const GroupOptions& o) {
  const auto rows = devices::admin_request(o.endpoint, {"group", "ls"}, parse_duration(o.timeout),
                                           security_of(o));
  std::string out =
      o.json ? format_json_rows(rows) : (rows.empty() ? "no groups\n" : format_table(rows));
  std::fputs(out.c_str(), stdout);
  return 0;
}

int run_group_rm(const GroupOptions& o) {
  if (!o.yes)
    throw UsageError("group rm deletes group '" + o.name +
                     "' and acks away its pending messages: add --yes to do it");
  const auto rows = devices::admin_request(o.endpoint, {"group", "rm", o.name},
                                           parse_duration(o.timeout), security_of(o));
  std::string removed = "0";
  if (!rows.empty())
    for (const auto& [column, value] : rows.front())
      if (column == "removed_pending") removed = value;
  std::printf("deleted group %s and %s pending messages\n", o.name.c_str(), removed.c_str());
  return 0;
}

// The proxy answers once the GROUPS file says so: a restart keeps it.
int run_group_pause(const GroupOptions& o, bool pause) {
  (void)devices::admin_request(o.endpoint, {"group", pause ? "pause" : "resume", o.name},
                               parse_duration(o.timeout), security_of(o));
  std::printf("%s group %s\n", pause ? "paused" : "resumed", o.name.c_str());
  return 0;
}

void add_common(CLI::App& sub, GroupOptions& o) {
  sub.add_option("endpoint", o.endpoint, "The proxy's --stats endpoint")->required();
  sub.add_option("--timeout", o.timeout, "How long to wait for the reply (default 5s)")
      ->check(duration_validator());
  add_curve_client_flags(sub, o.curve);
}

}  // namespace

void setup_group(CLI::App& app, Runner& runner) {
  auto* group = app.add_subcommand(
      "group", "List, delete, pause or resume a running proxy's consumer groups");
  group->require_subcommand(1);
  auto o = std::make_shared<GroupOptions>();

  auto* ls = group->add_subcommand(
      "ls",
      "One row per group: filters, workers, pending, in flight, delivered, acked, ..., state "
      "(active or paused) and its effective max_attempts, ack_timeout and backoff "
      "(own_settings names those the group sets itself; the others are the proxy's)");
  add_common(*ls, *o);
  ls->add_flag("--json", o->json, "Print a JSON array of objects");
  ls->callback([&runner, o] { runner = [o] { return run_group_ls(*o); }; });

  auto* rm = group->add_subcommand(
      "rm", "Delete a group: its pending messages are acked away and its spool share freed");
  add_common(*rm, *o);
  rm->add_option("name", o->name, "The group to delete")->required();
  rm->add_flag("--yes", o->yes, "Really delete it (required)");
  rm->callback([&runner, o] { runner = [o] { return run_group_rm(*o); }; });

  for (const bool pause : {true, false}) {
    auto* sub = group->add_subcommand(
        pause ? "pause" : "resume",
        pause ? "Pause a group: its messages are still stored, nothing new is delivered, "
                "deliveries in flight finish; kept across restarts"
              : "Resume a paused group: delivery starts again");
    add_common(*sub, *o);
    sub->add_option("name", o->name, pause ? "The group to pause" : "The group to resume")
        ->required();
    sub->callback(
        [&runner, o, pause] { runner = [o, pause] { return run_group_pause(*o, pause); }; });
  }
}

}  // namespace mqkit::cli
