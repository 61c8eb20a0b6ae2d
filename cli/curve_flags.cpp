// Loading --curve-key / --allow / --server-key.
#include "curve_flags.hpp"

#include "common.hpp"

namespace mqkit::cli {

void add_curve_server_flags(CLI::App& app, CurveFlags& flags) {
  app.add_option("--curve-key", flags.key,
                 "CURVE: this device's key pair (NAME.key from `mqkit keygen`); needs --allow");
  app.add_option("--allow", flags.allow,
                 "CURVE: the clients allowed in: a file of public keys, one per line, one "
                 "NAME.pub from `mqkit keygen`, or a directory of .pub files");
}

void add_curve_client_flags(CLI::App& app, CurveFlags& flags) {
  app.add_option("--curve-key", flags.key,
                 "CURVE: this client's key pair (NAME.key from `mqkit keygen`); needs "
                 "--server-key");
  app.add_option("--server-key", flags.server_key, "CURVE: the device's public key (SERVER.pub)");
}

void apply_curve_server_flags(const CurveFlags& flags, Security& security) {
  if (flags.key.empty() && flags.allow.empty()) return;
  if (flags.key.empty() || flags.allow.empty())
    throw UsageError(
        "--curve-key and --allow go together: the device's key pair and the "
        "clients it lets in");
  require_curve();
  security.server = load_key_pair(flags.key);
  security.allowed_clients = load_allow_list(flags.allow);
}

void apply_curve_client_flags(const CurveFlags& flags, Security& security) {
  if (flags.key.empty() && flags.server_key.empty()) return;
  if (flags.key.empty() || flags.server_key.empty())
    throw UsageError(
        "--curve-key and --server-key go together: this client's key pair and the "
        "device's public key");
  require_curve();
  security.client = load_key_pair(flags.key);
  security.server_public_key = load_public_key(flags.server_key);
}

}  // namespace mqkit::cli
