// What every subcommand shares: the runner a subcommand leaves for main to
// call, the usage-error type (exit code 2), and option validators.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <stdexcept>
#include <string>

#include "mqkit/socket_options.hpp"

namespace mqkit::cli {

// Set by the parsed subcommand's callback; main calls it after parsing.
using Runner = std::function<int()>;

// A usage error found after parsing: main prints it and exits 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Accepts "500ms", "2s", ... (mqkit::parse_duration).
const CLI::Validator& duration_validator();
// Accepts "4096", "16MiB", ... (mqkit::parse_size).
const CLI::Validator& size_validator();

// Adds --hwm, --linger, --reconnect, --heartbeat, --max-size to a subcommand.
void add_socket_options(CLI::App& app, SocketOptions& options);

// Prints "mqkit <command>: <message>" on stderr.
void report(const std::string& command, const std::string& message);

}  // namespace mqkit::cli
