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

// A device's pieces (workers, readers, deliveries, admin) reach the peers
// of a ROUTER through this view and never call cppzmq themselves: with the
// pumps, which own the sockets, this file is the devices' socket layer.
class RouterPeers {
 public:
  explicit RouterPeers(zmq::socket_t& router) noexcept : router_(&router) {}

  Sent send(const std::string& identity, std::string_view command) {
    return send_command(*router_, identity, command);
  }
  void reply_error(const std::string& identity, std::string_view why) {
    detail::reply_error(*router_, identity, why);
  }
  // [identity][command][one frame of `size` bytes, written by `fill(char*)`]
  // without blocking: busy when the peer's queue is full (nothing was sent).
  template <typename Fill>
  Sent send_with_frame(const std::string& identity, std::string_view command, std::size_t size,
                       Fill&& fill) {
    zmq::message_t frame(size);
    fill(static_cast<char*>(frame.data()));
    return send_with_frames(identity, command, &frame, 1);
  }
  // [identity][command][frames...], the same way; the frames are sent (moved out).
  Sent send_with_frames(const std::string& identity, std::string_view command,
                        zmq::message_t* frames, std::size_t count);

 private:
  zmq::socket_t* router_;
};

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
