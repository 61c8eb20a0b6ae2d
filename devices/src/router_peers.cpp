// Replies and confirmations on a device's ROUTER sockets.
#include "router_peers.hpp"

namespace mqkit::devices::detail {

using namespace mqkit::detail::protocol;

Sent send_command(zmq::socket_t& router, const std::string& identity, std::string_view command) {
  try {
    if (!router.send(zmq::buffer(identity), zmq::send_flags::sndmore | zmq::send_flags::dontwait))
      return Sent::busy;
    (void)router.send(zmq::buffer(command), zmq::send_flags::none);
    return Sent::ok;
  } catch (const zmq::error_t&) {
    return Sent::gone;
  }
}

void reply_error(zmq::socket_t& router, const std::string& identity, std::string_view why) {
  if (identity.empty()) return;
  const auto encoded = encode_command({.command = Command::error, .reason = std::string(why)});
  try {
    (void)router.send(zmq::buffer(identity), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
    (void)router.send(zmq::buffer(encoded), zmq::send_flags::dontwait);
  } catch (const zmq::error_t&) {
  }
}

Sent RouterPeers::send_with_frames(const std::string& identity, std::string_view command,
                                   zmq::message_t* frames, std::size_t count) {
  try {
    if (!router_->send(zmq::buffer(identity), zmq::send_flags::sndmore | zmq::send_flags::dontwait))
      return Sent::busy;
    // The rest of an accepted message is always accepted.
    (void)router_->send(zmq::buffer(command),
                        count > 0 ? zmq::send_flags::sndmore : zmq::send_flags::none);
    for (std::size_t i = 0; i < count; ++i)
      (void)router_->send(frames[i],
                          i + 1 < count ? zmq::send_flags::sndmore : zmq::send_flags::none);
    return Sent::ok;
  } catch (const zmq::error_t&) {
    return Sent::gone;
  }
}

void ConfirmBatches::flush(zmq::socket_t& front) {
  for (auto& [producer, list] : pending_) {
    if (list.empty()) continue;
    CommandFrame c{.command = Command::confirm, .confirmations = std::move(list)};
    list.clear();
    const auto encoded = encode_command(c);
    try {
      (void)front.send(zmq::buffer(producer), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
      (void)front.send(zmq::buffer(encoded), zmq::send_flags::dontwait);
    } catch (const zmq::error_t&) {
      // The producer is gone: it re-sends unconfirmed messages when it returns.
    }
  }
  if (pending_.size() > 64) pending_.clear();  // forget producers that come and go
}

}  // namespace mqkit::devices::detail
