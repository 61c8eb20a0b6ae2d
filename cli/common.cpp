// Shared CLI helpers.
#include "common.hpp"

#include <cstdio>

#include "mqkit/duration.hpp"
#include "mqkit/error.hpp"

namespace mqkit::cli {
namespace {

CLI::Validator make_validator(const char* name, std::function<void(const std::string&)> parse) {
  return CLI::Validator(
      [parse](std::string& value) -> std::string {
        try {
          parse(value);
          return {};
        } catch (const Error& e) {
          return e.what();
        }
      },
      name);
}

}  // namespace

const CLI::Validator& duration_validator() {
  static const CLI::Validator v =
      make_validator("DURATION", [](const std::string& s) { (void)parse_duration(s); });
  return v;
}

const CLI::Validator& size_validator() {
  static const CLI::Validator v =
      make_validator("SIZE", [](const std::string& s) { (void)parse_size(s); });
  return v;
}

void add_socket_options(CLI::App& app, SocketOptions& options) {
  auto* group = &app;
  group
      ->add_option("--hwm", options.send_hwm,
                   "High-water mark: messages queued per peer before sends block (default 1000)")
      ->each([&options](const std::string&) { options.receive_hwm = options.send_hwm; })
      ->check(CLI::NonNegativeNumber);
  group
      ->add_option_function<std::string>(
          "--heartbeat",
          [&options](const std::string& s) { options.heartbeat_interval = parse_duration(s); },
          "ZMTP heartbeat interval (e.g. 1s); a peer silent for this long is dropped")
      ->check(duration_validator());
  group
      ->add_option_function<std::string>(
          "--reconnect",
          [&options](const std::string& s) { options.reconnect_interval = parse_duration(s); },
          "Reconnect interval after a lost connection (default 100ms)")
      ->check(duration_validator());
  group
      ->add_option_function<std::string>(
          "--max-size",
          [&options](const std::string& s) { options.limits.max_message_size = parse_size(s); },
          "Largest message accepted, payload plus headers (default 16MiB)")
      ->check(size_validator());
}

void report(const std::string& command, const std::string& message) {
  std::fprintf(stderr, "mqkit %s: %s\n", command.c_str(), message.c_str());
}

}  // namespace mqkit::cli
