// The process's ZAP handler (ZeroMQ's authentication protocol, RFC 27): one
// REP socket on inproc://zeromq.zap.01 in mqkit's context, served by a small
// thread, that admits a CURVE client when its public key is on the
// allow-list registered for the server socket's ZAP domain.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mqkit::detail {

// Registers `allowed` (Z85 public keys) and returns the ZAP domain that a
// CURVE server socket must set to be checked against it. Starts the handler.
std::string register_allow_list(const std::vector<std::string>& allowed);

std::uint64_t zap_refused() noexcept;

}  // namespace mqkit::detail
