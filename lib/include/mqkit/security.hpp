// CURVE encryption and authentication (libzmq's own mechanism), with
// allow-lists of client keys enforced by a ZAP handler inside the process.
//
// Keys are Z85 text (40 characters), in the certificate files czmq and pyzmq
// write (`zmq.auth.create_certificates`): NAME.pub holds the public key,
// NAME.key both keys and is readable by its owner only.
//
//   server (device):  options.security.server = load_key_pair("proxy.key");
//                     options.security.allowed_clients = load_allow_list("clients/");
//   client:           options.security.client = load_key_pair("orders.key");
//                     options.security.server_public_key = load_public_key("proxy.pub");
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mqkit {

struct CurveKeyPair {
  std::string public_key;  // Z85, 40 characters
  std::string secret_key;
};

struct Security {
  // As a server (sockets that bind): its key pair, and the client keys that
  // may connect. A server with keys admits only CURVE clients on its list.
  std::optional<CurveKeyPair> server;
  std::vector<std::string> allowed_clients;
  // As a client (sockets that connect): its key pair and the server's key.
  std::optional<CurveKeyPair> client;
  std::string server_public_key;

  bool enabled() const noexcept { return server.has_value() || client.has_value(); }
};

// Throws Error(unsupported) when this libzmq was built without CURVE.
void require_curve();
CurveKeyPair generate_key_pair();
// Writes NAME.pub and NAME.key (mode 0600). Throws Error on I/O failure.
void write_key_pair(const std::string& name, const CurveKeyPair& keys);
// Reads NAME.key. Throws Error(bad_argument) when the file is readable by
// group or others, has no secret key, or holds a malformed key.
CurveKeyPair load_key_pair(const std::string& path);
// Reads a public key: a certificate file (.pub or .key) or one Z85 line.
std::string load_public_key(const std::string& path);
// A file of public keys (one per line, # comments) or a directory of .pub files.
std::vector<std::string> load_allow_list(const std::string& path);

// Handshakes refused by the allow-lists of this process so far.
std::uint64_t curve_clients_refused() noexcept;

}  // namespace mqkit
