// What the proxy and the stream device do alike with the peers of their
// ROUTER sockets (docs/proxy-protocol.md): take one command with the frames
// that follow it, answer with a command or an error, and confirm publishes
// in one CONFIRM per producer per loop turn.
#pragma once

#include <zmq.hpp>

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "protocol/commands.hpp"
#include "wire/socket.hpp"

namespace mqkit::devices::detail {

using mqkit::detail::view;

// Takes [identity][command][frames...] without blocking, appending the
// frames to `rest` (anything with emplace_back); false when nothing waits.
template <typename Frames>
bool receive_command(zmq::socket_t& router, zmq::message_t& identity, zmq::message_t& command,
                     Frames& rest) {
  if (!router.recv(identity, zmq::recv_flags::dontwait)) return false;
  if (!identity.more()) return true;  // an empty command: decoding it says so
  (void)router.recv(command, zmq::recv_flags::dontwait);
  for (bool more = command.more(); more;) {
    rest.emplace_back();
    (void)router.recv(rest.back(), zmq::recv_flags::dontwait);
    more = rest.back().more();
  }
  return true;
}

// `busy`: the peer's queue is full for now; `gone`: ROUTER_MANDATORY says
// the peer has disconnected.
enum class Sent { ok, busy, gone };
Sent send_command(zmq::socket_t& router, const std::string& identity, std::string_view command);

// An `error` command with what was wrong; nothing when the peer is gone.
void reply_error(zmq::socket_t& router, const std::string& identity, std::string_view why);

// Confirmations collected during a loop turn, sent as one CONFIRM per producer.
class ConfirmBatches {
 public:
  void add(const std::string& producer, const MessageId& id,
           mqkit::detail::protocol::ConfirmStatus status, std::string reason) {
    pending_[producer].push_back({id, status, std::move(reason)});
  }
  void flush(zmq::socket_t& front);

 private:
  std::unordered_map<std::string, std::vector<mqkit::detail::protocol::Confirmation>> pending_;
};

}  // namespace mqkit::devices::detail
