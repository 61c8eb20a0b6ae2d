// The CURVE flags of the CLI: devices take their key pair and an allow-list,
// clients their key pair and the server's public key.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "mqkit/security.hpp"

namespace mqkit::cli {

struct CurveFlags {
  std::string key;         // NAME.key
  std::string allow;       // FILE or DIR (devices)
  std::string server_key;  // SERVER.pub (clients)
};

void add_curve_server_flags(CLI::App& app, CurveFlags& flags);
void add_curve_client_flags(CLI::App& app, CurveFlags& flags);
// Load the files into `security`; throw UsageError for a half-given pair.
void apply_curve_server_flags(const CurveFlags& flags, Security& security);
void apply_curve_client_flags(const CurveFlags& flags, Security& security);

}  // namespace mqkit::cli
