// ProtocolPeer: a DEALER speaking the devices' protocol by hand, as a pyzmq
// client does: any command, any frames, and the replies as they come.
#pragma once

#include <zmq.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "protocol/commands.hpp"

namespace mqkit::test {

class ProtocolPeer {
 public:
  using CommandFrame = detail::protocol::CommandFrame;
  using Confirmation = detail::protocol::Confirmation;

  explicit ProtocolPeer(const std::string& endpoint);

  void send(const CommandFrame& command, const std::vector<std::string>& frames = {});
  // Frames as given, one multipart message: for what no client would send.
  void send_frames(const std::vector<std::string>& frames);
  void send_raw(const std::string& bytes) { send_frames({bytes}); }

  struct Received {
    CommandFrame cmd;
    std::vector<std::string> frames;  // the frames after the command
  };
  // The next command other than a heartbeat; nullopt after `timeout`.
  std::optional<Received> receive(std::chrono::milliseconds timeout = std::chrono::seconds(10));

  // One PUBLISH of `frames`; the `expected` confirmations, in arrival order.
  std::vector<Confirmation> publish_frames(const std::vector<std::string>& frames,
                                           std::size_t expected);
  // One PUBLISH of `frames` (messages with ids of their own); their
  // confirmations in the frames' order (a refusal can come before an
  // earlier message's store).
  std::vector<Confirmation> publish_in_order(const std::vector<std::string>& frames);

 private:
  zmq::context_t context_;
  zmq::socket_t socket_;
};

// A DEALER connected to `endpoint` that holds one message in its queue and a
// tiny socket buffer, as a client that never reads: what a device sends it
// stays with the device.
zmq::socket_t slow_reader(zmq::context_t& context, const std::string& endpoint);

}  // namespace mqkit::test
