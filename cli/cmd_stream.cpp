// `mqkit stream`: the durable, ordered, replayable log device.
#include <cstdio>
#include <memory>

#include "commands.hpp"
#include "curve_flags.hpp"
#include "device_command.hpp"
#include "mqkit/devices/stream.hpp"
#include "mqkit/duration.hpp"
#include "mqkit/error.hpp"
#include "mqkit/spool.hpp"
#include "mqkit/stop.hpp"

namespace mqkit::cli {
namespace {

struct StreamCliOptions {
  CurveFlags curve;
  devices::StreamOptions stream;
  std::string fsync = "always";
  std::string retain_bytes;
  std::string retain_age;
  std::string segment_size;
  std::string heartbeat = "1s";
};

int run_stream(StreamCliOptions o) {
  stop_on_signals();
  apply_curve_server_flags(o.curve, o.stream.socket.security);
  try {
    SpoolOptions durability;  // the spool's parser: always, never or interval=DUR
    parse_durability(o.fsync, durability);
    o.stream.log.durability = durability.durability;
    o.stream.log.sync_interval = durability.sync_interval;
  } catch (const mqkit::Error& e) {
    throw UsageError(std::string("--fsync: ") + e.what());
  }
  if (!o.retain_bytes.empty()) o.stream.log.retain_bytes = parse_size(o.retain_bytes);
  if (!o.retain_age.empty()) o.stream.log.retain_age = parse_duration(o.retain_age);
  if (!o.segment_size.empty()) o.stream.log.segment_size = parse_size(o.segment_size);
  if (o.stream.log.segment_size < 4096) throw UsageError("--segment-size must be at least 4KiB");
  o.stream.heartbeat = parse_duration(o.heartbeat);
  if (o.stream.heartbeat.count() <= 0) throw UsageError("--heartbeat must be positive, e.g. 1s");
  devices::Stream stream(o.stream);
  return serve_device("stream", stream);
}

}  // namespace

void setup_stream(CLI::App& app, Runner& runner) {
  auto* sub = app.add_subcommand(
      "stream",
      "Log device: appends every record to a partition's log before confirming it; readers "
      "read from any position, alone or sharing partitions under a name");
  auto o = std::make_shared<StreamCliOptions>();
  sub->add_option("--front", o->stream.front, "Endpoint to bind for producers")->required();
  sub->add_option("--back", o->stream.back, "Endpoint to bind for readers")->required();
  sub->add_option("--dir", o->stream.dir, "Directory of the stream's logs (created if missing)")
      ->required();
  sub->add_option("--partitions", o->stream.partitions,
                  "Partitions (default: as DIR has, 1 for a new stream); a record's key picks "
                  "its partition")
      ->check(CLI::Range(1u, 1024u));
  sub->add_option("--retain-bytes", o->retain_bytes,
                  "Delete the oldest whole segments past this size per partition, e.g. 10GiB")
      ->check(size_validator());
  sub->add_option("--retain-age", o->retain_age,
                  "Delete whole segments whose records are all older than this, e.g. 7d")
      ->check(duration_validator());
  sub->add_option("--segment-size", o->segment_size,
                  "Log segment file size (default 64MiB); retention deletes whole segments")
      ->check(size_validator());
  sub->add_option("--fsync", o->fsync,
                  "always (one fdatasync per partition per batch of appends) | "
                  "interval=DUR (confirm after the write, fdatasync at least every DUR, "
                  "e.g. interval=10ms) | never (default always)");
  sub->add_option("--heartbeat", o->heartbeat,
                  "Heartbeat interval with readers; a reader silent for 5 is lost and its "
                  "partitions go to its name's other members (default 1s)")
      ->check(duration_validator());
  o->stream.stats = "tcp://127.0.0.1:*";
  sub->add_option("--stats", o->stream.stats,
                  "Endpoint to bind for `mqkit stat` (default tcp://127.0.0.1:*)");
  add_curve_server_flags(*sub, o->curve);
  sub->add_option("--dedup-window", o->stream.dedup_window,
                  "Recent record ids remembered to answer re-sends 'duplicate' (default 100000)");
  sub->footer(
      "Producers: mqkit send --stream FRONT [--key K]. Readers: mqkit consume --stream BACK "
      "[--from earliest|latest|N|P:N|TIME] [--name NAME]. Protocol: docs/stream-protocol.md.");
  sub->callback([&runner, o] { runner = [o] { return run_stream(*o); }; });
}

}  // namespace mqkit::cli
