// PublishIntake: what the proxy and the stream device do alike with their
// producers (PUBLISH and CONFIRM, docs/proxy-protocol.md). It takes a
// PUBLISH with its frames from the front ROUTER, decodes each message's
// envelope, and answers by itself a message it has seen: one stored
// recently (the dedup window, or one the device still holds) is a
// `duplicate`; one still being stored gets the original's answer once that
// is known. A message new to the device goes to the device's PublishSink,
// whose store step either starts storing it (and later calls settle()) or
// answers at once. Confirms are sent as one CONFIRM per producer per turn.
#pragma once

#include <zmq.hpp>

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dedup_window.hpp"
#include "detail/counter.hpp"
#include "detail/id_table.hpp"
#include "envelope/codec.hpp"
#include "mqkit/envelope.hpp"
#include "router_peers.hpp"

namespace mqkit::devices::detail {

using mqkit::detail::protocol::ConfirmStatus;

// A message new to the device. Valid until PublishIntake::end_turn().
struct Publish {
  const std::string& producer;
  const MessageId& id;
  const Message& message;  // the decoded envelope: topic, key, headers
  std::string_view frame;  // the whole frame, as the producer sent it
  // The frame's ZeroMQ message: a device that keeps the frame past the turn
  // may move it out (and reads it from there: a small message keeps its
  // bytes inside itself, so `frame` does not survive the move).
  zmq::message_t& held;
  const std::optional<std::string>& target_group;
};

class PublishSink {
 public:
  virtual ~PublishSink() = default;
  // Every message with an id, before the intake answers a re-send itself:
  // a device that holds a producer back until it sends a refused message
  // again lets it go here, whatever the answer will be.
  virtual void arrived(const std::string& producer, const MessageId& id) {
    (void)producer;
    (void)id;
  }
  // The device holds a message with this id (however long ago it came).
  virtual bool holds(const MessageId& id) const { return (void)id, false; }
  // Starts storing the message and returns true (the device calls settle()
  // once it knows how that ended), or answers it through answer() and
  // returns false.
  virtual bool store(Publish& publish) = 0;
};

class PublishIntake {
 public:
  PublishIntake(std::size_t dedup_window, const Limits& limits)
      : recent_(dedup_window), limits_(limits) {}

  // Takes one command from `front` and handles its messages; false when
  // nothing was waiting.
  bool read(zmq::socket_t& front, PublishSink& sink);

  // The device's answer to a message it did not store (unroutable, rejected...).
  void answer(const std::string& producer, const MessageId& id, ConfirmStatus status,
              std::string reason);
  // How storing a message the sink took ended: its producer hears `status`,
  // and so does every producer that sent it again meanwhile, except that
  // after `stored` those hear `duplicate`. A stored id joins the dedup window.
  void settle(const MessageId& id, ConfirmStatus status, const std::string& reason);

  bool in_progress(const MessageId& id) const { return in_progress_.contains(id); }
  // Ids stored before a restart, oldest first: their re-sends are duplicates.
  void remember(const MessageId& id) { recent_.remember(id); }

  // Sends this turn's confirms and lets go of this turn's frames.
  void end_turn(zmq::socket_t& front);

  // Statistics: published counts every message with an id; the others
  // count answers (and, malformed, frames without a valid envelope).
  const mqkit::detail::Counter& published() const noexcept { return published_; }
  const mqkit::detail::Counter& duplicates() const noexcept { return duplicates_; }
  const mqkit::detail::Counter& rejected() const noexcept { return rejected_; }
  const mqkit::detail::Counter& full() const noexcept { return full_; }
  const mqkit::detail::Counter& unroutable() const noexcept { return unroutable_; }
  const mqkit::detail::Counter& malformed() const noexcept { return malformed_; }

 private:
  struct InProgress {
    std::string producer;
    std::vector<std::string> resent_by;  // producers that sent it again meanwhile
  };

  void take(const std::string& producer, zmq::message_t& held,
            const std::optional<std::string>& target_group, PublishSink& sink);

  DedupWindow recent_;
  Limits limits_;
  mqkit::detail::EnvelopeCodec codec_;
  Message decoded_;
  mqkit::detail::IdTable<InProgress> in_progress_;
  std::deque<zmq::message_t> held_;  // this turn's frames (a deque: references stay valid)
  ConfirmBatches confirms_;
  mqkit::detail::Counter published_, duplicates_, rejected_, full_, unroutable_, malformed_;
};

}  // namespace mqkit::devices::detail
