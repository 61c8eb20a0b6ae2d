#include "protocol_peer.hpp"

#include <catch2/catch.hpp>

#include <map>

#include "mqkit/envelope.hpp"

namespace mqkit::test {

using detail::protocol::Command;

ProtocolPeer::ProtocolPeer(const std::string& endpoint)
    : socket_(context_, zmq::socket_type::dealer) {
  socket_.set(zmq::sockopt::linger, 0);
  socket_.connect(endpoint);
}

void ProtocolPeer::send(const CommandFrame& command, const std::vector<std::string>& frames) {
  std::vector<std::string> all{detail::protocol::encode_command(command)};
  all.insert(all.end(), frames.begin(), frames.end());
  send_frames(all);
}

void ProtocolPeer::send_frames(const std::vector<std::string>& frames) {
  for (std::size_t i = 0; i < frames.size(); ++i)
    (void)socket_.send(zmq::buffer(frames[i]),
                       i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
}

std::optional<ProtocolPeer::Received> ProtocolPeer::receive(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
    if (left.count() <= 0 || zmq::poll(&item, 1, left) == 0) return std::nullopt;
    zmq::message_t first;
    (void)socket_.recv(first);
    Received out;
    for (bool more = first.more(); more;) {
      zmq::message_t frame;
      (void)socket_.recv(frame);
      more = frame.more();
      out.frames.emplace_back(frame.to_string());
    }
    REQUIRE(detail::protocol::decode_command(first.to_string_view(), out.cmd));
    if (out.cmd.command != Command::heartbeat) return out;
  }
}

std::vector<ProtocolPeer::Confirmation> ProtocolPeer::publish_frames(
    const std::vector<std::string>& frames, std::size_t expected) {
  send({.command = Command::publish}, frames);
  std::vector<Confirmation> all;
  while (all.size() < expected) {
    const auto reply = receive();
    REQUIRE(reply);
    REQUIRE(reply->cmd.command == Command::confirm);
    all.insert(all.end(), reply->cmd.confirmations.begin(), reply->cmd.confirmations.end());
  }
  return all;
}

std::vector<ProtocolPeer::Confirmation> ProtocolPeer::publish_in_order(
    const std::vector<std::string>& frames) {
  std::map<MessageId, Confirmation> by_id;
  for (const auto& c : publish_frames(frames, frames.size())) by_id.emplace(c.id, c);
  std::vector<Confirmation> in_order;
  for (const auto& frame : frames) in_order.push_back(by_id.at(mqkit::decode(frame).id()));
  return in_order;
}

zmq::socket_t slow_reader(zmq::context_t& context, const std::string& endpoint) {
  zmq::socket_t socket(context, zmq::socket_type::dealer);
  socket.set(zmq::sockopt::linger, 0);
  socket.set(zmq::sockopt::rcvhwm, 1);
  socket.set(zmq::sockopt::rcvbuf, 4096);
  socket.connect(endpoint);
  return socket;
}

}  // namespace mqkit::test
