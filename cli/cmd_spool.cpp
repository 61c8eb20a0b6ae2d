// `mqkit spool dump DIR` and `mqkit spool check DIR`: read a spool's files
// directly (also while a proxy owns them) and print or verify them.
#include <cstdio>
#include <memory>

#include "commands.hpp"
#include "mqkit/envelope.hpp"
#include "mqkit/spool.hpp"
#include "text_output.hpp"

namespace mqkit::cli {
namespace {

struct SpoolOptionsCli {
  std::string dir;
  bool json = false;
};

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ",") + s;
  return out.empty() ? "-" : out;
}

// Topic, attempt and payload of a stored frame, for display.
struct FrameView {
  std::string topic = "-";
  std::uint32_t attempt = 0;
  std::string payload;
};

FrameView view_frame(const std::string& frame) {
  FrameView v;
  Message m;
  if (!frame.empty() && !decode(frame, m)) {
    v.topic = m.topic().empty() ? "-" : m.topic();
    v.attempt = m.envelope.attempt;
    v.payload = std::string(m.payload());
  }
  return v;
}

void print_record_text(const SpoolRecord& r) {
  std::string line = r.type + " " + r.id.to_string() + " group=" + join(r.groups);
  if (r.type == "PUBLISH" || r.type == "DEAD_LETTER") {
    const auto f = view_frame(r.frame);
    line += " topic=" + escape_line(f.topic) + " attempt=" + std::to_string(f.attempt);
    if (r.dead_letter)
      line += " reason=" + escape_line(r.dead_letter->reason) +
              " attempts=" + std::to_string(r.dead_letter->attempts);
    line += " payload=" + escape_line(f.payload);
  } else if (r.type == "DEAD") {
    line += " reason=" + escape_line(r.reason) + " attempts=" + std::to_string(r.attempts) +
            " error=" + escape_line(r.last_error);
  }
  std::printf("%s\n", line.c_str());
}

void print_record_json(const SpoolRecord& r) {
  std::string out = "{\"type\":\"" + r.type + "\",\"segment\":\"" + r.segment +
                    "\",\"offset\":" + std::to_string(r.offset) + ",\"id\":\"" + r.id.to_string() +
                    "\",\"groups\":[";
  for (std::size_t i = 0; i < r.groups.size(); ++i) {
    if (i) out += ",";
    append_json_string(out, escape_line(r.groups[i]));
  }
  out += "]";
  if (r.type == "PUBLISH" || r.type == "DEAD_LETTER") {
    const auto f = view_frame(r.frame);
    out += ",\"seq\":" + std::to_string(r.seq) + ",\"topic\":";
    append_json_string(out, escape_line(f.topic));
    out += ",\"attempt\":" + std::to_string(f.attempt) + ",\"payload\":";
    append_json_string(out, escape_line(f.payload));
  }
  const bool dead = r.type == "DEAD" || r.dead_letter;
  if (dead) {
    out += ",\"reason\":";
    append_json_string(out, escape_line(r.dead_letter ? r.dead_letter->reason : r.reason));
    out += ",\"attempts\":" + std::to_string(r.dead_letter ? r.dead_letter->attempts : r.attempts) +
           ",\"last_error\":";
    append_json_string(out, escape_line(r.dead_letter ? r.dead_letter->last_error : r.last_error));
  }
  std::printf("%s}\n", out.c_str());
}

void print_summary(const SpoolContents& c, bool json) {
  const auto& r = c.report;
  if (json) {
    std::string out =
        "{\"summary\":{\"segments\":" + std::to_string(r.segments) +
        ",\"records\":" + std::to_string(r.records) + ",\"bytes\":" + std::to_string(c.bytes) +
        ",\"corrupt_records\":" + std::to_string(r.corrupt_records) +
        ",\"corrupt_bytes\":" + std::to_string(r.corrupt_bytes) +
        ",\"torn_tail_bytes\":" + std::to_string(r.torn_tail_bytes) + ",\"pending\":{";
    bool first = true;
    for (const auto& [group, n] : c.pending) {
      if (!first) out += ",";
      first = false;
      append_json_string(out, escape_line(group));
      out += ":" + std::to_string(n);
    }
    std::printf("%s}}}\n", out.c_str());
    return;
  }
  std::printf(
      "-- %llu segments, %llu records, %llu bytes, %llu corrupt records skipped "
      "(%llu bytes), %llu bytes of unfinished tail\n",
      static_cast<unsigned long long>(r.segments), static_cast<unsigned long long>(r.records),
      static_cast<unsigned long long>(c.bytes), static_cast<unsigned long long>(r.corrupt_records),
      static_cast<unsigned long long>(r.corrupt_bytes),
      static_cast<unsigned long long>(r.torn_tail_bytes));
  for (const auto& [group, n] : c.pending)
    std::printf("-- pending for %s: %llu\n", escape_line(group).c_str(),
                static_cast<unsigned long long>(n));
}

int run_dump(const SpoolOptionsCli& o) {
  const auto contents = read_spool(o.dir);
  for (const auto& r : contents.records) o.json ? print_record_json(r) : print_record_text(r);
  print_summary(contents, o.json);
  for (const auto& problem : contents.report.problems) report("spool dump", "note: " + problem);
  return 0;
}

int run_check(const SpoolOptionsCli& o) {
  const auto contents = read_spool(o.dir);
  print_summary(contents, o.json);
  for (const auto& problem : contents.report.problems) report("spool check", problem);
  if (contents.report.corrupt_records > 0) {
    report("spool check", o.dir +
                              " is corrupt: " + std::to_string(contents.report.corrupt_records) +
                              " records were skipped; every intact record is still readable");
    return 1;
  }
  return 0;
}

}  // namespace

void setup_spool(CLI::App& app, Runner& runner) {
  auto* spool = app.add_subcommand("spool", "Inspect spool directories (read-only, no lock)");
  spool->require_subcommand(1);
  auto o = std::make_shared<SpoolOptionsCli>();
  auto* dump = spool->add_subcommand(
      "dump", "Print every record (type, id, group, topic, attempt, payload) and a summary");
  dump->add_option("dir", o->dir, "The spool directory")->required()->check(CLI::ExistingDirectory);
  dump->add_flag("--json", o->json, "One JSON object per record, then a summary object");
  dump->callback([&runner, o] { runner = [o] { return run_dump(*o); }; });
  auto* check =
      spool->add_subcommand("check", "Verify every record's CRC; exit 1 when a record is corrupt");
  check->add_option("dir", o->dir, "The spool directory")
      ->required()
      ->check(CLI::ExistingDirectory);
  check->add_flag("--json", o->json, "Print the summary as JSON");
  check->footer(
      "An unfinished last record (a writer still writing, or a crash mid-write) is "
      "reported but is not corruption.");
  check->callback([&runner, o] { runner = [o] { return run_check(*o); }; });
}

}  // namespace mqkit::cli
