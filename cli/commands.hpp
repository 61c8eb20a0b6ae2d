// One setup function per subcommand; each registers its options on `app` and,
// when parsed, leaves the function that runs it in `runner`.
#pragma once

#include "common.hpp"

namespace mqkit::cli {

void setup_streamer(CLI::App& app, Runner& runner);
void setup_forwarder(CLI::App& app, Runner& runner);
void setup_send(CLI::App& app, Runner& runner);
void setup_consume(CLI::App& app, Runner& runner);
void setup_stat(CLI::App& app, Runner& runner);
void setup_spool(CLI::App& app, Runner& runner);
void setup_proxy(CLI::App& app, Runner& runner);
void setup_stream(CLI::App& app, Runner& runner);
void setup_group(CLI::App& app, Runner& runner);
void setup_run(CLI::App& app, Runner& runner);
void setup_dlq(CLI::App& app, Runner& runner);
void setup_keygen(CLI::App& app, Runner& runner);

}  // namespace mqkit::cli
