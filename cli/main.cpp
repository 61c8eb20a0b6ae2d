// The `mqkit` binary: wires up the subcommands and maps outcomes to exit
// codes: 0 ok, 1 runtime error, 2 usage error. Every error is one line.
#include <csignal>
#include <cstdio>

#include "commands.hpp"
#include "mqkit/error.hpp"
#include "mqkit/version.hpp"

int main(int argc, char** argv) {
  using namespace mqkit::cli;
  std::signal(SIGPIPE, SIG_IGN);  // a closed pipe is an error to handle, not a reason to die

  CLI::App app("mqkit: brokerless messaging on ZeroMQ — work queues, fan-out and devices", "mqkit");
  app.set_version_flag("--version", std::to_string(mqkit::kVersionMajor) + "." +
                                        std::to_string(mqkit::kVersionMinor) + "." +
                                        std::to_string(mqkit::kVersionPatch));
  app.require_subcommand(1);
  Runner runner;
  setup_run(app, runner);
  setup_proxy(app, runner);
  setup_stream(app, runner);
  setup_streamer(app, runner);
  setup_forwarder(app, runner);
  setup_send(app, runner);
  setup_consume(app, runner);
  setup_stat(app, runner);
  setup_group(app, runner);
  setup_dlq(app, runner);
  setup_keygen(app, runner);
  setup_spool(app, runner);

  std::string command = "mqkit";
  try {
    app.parse(argc, argv);
    command = app.get_subcommands().front()->get_name();
    for (auto* sub = app.get_subcommands().front(); !sub->get_subcommands().empty();) {
      sub = sub->get_subcommands().front();
      command += " " + sub->get_name();
    }
    return runner();
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    const auto subs = app.get_subcommands();
    const std::string where = subs.empty() ? "mqkit" : "mqkit " + subs.front()->get_name();
    std::fprintf(stderr, "%s: %s (see '%s --help')\n", where.c_str(), e.what(), where.c_str());
    return 2;
  } catch (const UsageError& e) {
    report(command, std::string(e.what()) + " (see 'mqkit " + command + " --help')");
    return 2;
  } catch (const mqkit::Error& e) {
    report(command, e.what());
    return e.code() == mqkit::errc::bad_argument ? 2 : 1;
  } catch (const std::exception& e) {
    report(command, e.what());
    return 1;
  }
}
