// `mqkit stream`: the durable, ordered, replayable log device.
#include <memory>

#include "commands.hpp"
#include "curve_flags.hpp"
#include "device_command.hpp"
#include "mqkit/devices/stream.hpp"
#include "mqkit/stop.hpp"
#include "setting_flags.hpp"

namespace mqkit::cli {
namespace {

struct StreamCliOptions {
  CurveFlags curve;
  devices::StreamOptions stream;
};

int run_stream(StreamCliOptions o, const SettingFlags<StreamSettings>& settings) {
  stop_on_signals();
  apply_curve_server_flags(o.curve, o.stream.socket.security);
  settings.apply(o.stream);
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
  // --dir, --partitions, --fsync, ...: the stream's settings, as in topology files.
  auto settings = std::make_shared<SettingFlags<StreamSettings>>(*sub, stream_settings());
  o->stream.stats = "tcp://127.0.0.1:*";
  sub->add_option("--stats", o->stream.stats,
                  "Endpoint to bind for `mqkit stat` (default tcp://127.0.0.1:*)");
  add_curve_server_flags(*sub, o->curve);
  sub->footer(
      "Producers: mqkit send --stream FRONT [--key K]. Readers: mqkit consume --stream BACK "
      "[--from earliest|latest|N|P:N|TIME] [--name NAME]. Protocol: docs/stream-protocol.md.");
  sub->callback(
      [&runner, o, settings] { runner = [o, settings] { return run_stream(*o, *settings); }; });
}

}  // namespace mqkit::cli
