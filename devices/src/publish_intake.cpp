#include "publish_intake.hpp"

namespace mqkit::devices::detail {

using mqkit::detail::protocol::Command;
using mqkit::detail::protocol::CommandFrame;
namespace md = mqkit::detail;

bool PublishIntake::read(zmq::socket_t& front, PublishSink& sink) {
  zmq::message_t identity, command;
  const std::size_t first_frame = held_.size();
  if (!receive_command(front, identity, command, held_)) return false;
  const std::string producer(view(identity));
  CommandFrame cmd;
  const auto decoded = decode_command(view(command), cmd);
  if (!decoded || cmd.command != Command::publish) {
    malformed_.add();
    reply_error(front, producer, decoded ? "producers may only PUBLISH" : decoded.detail);
    return true;
  }
  for (std::size_t i = first_frame; i < held_.size(); ++i)
    take(producer, held_[i], cmd.target_group, sink);
  return true;
}

void PublishIntake::take(const std::string& producer, zmq::message_t& held,
                         const std::optional<std::string>& target_group, PublishSink& sink) {
  const std::string_view frame = view(held);
  if (!md::envelope_offset(frame)) {
    malformed_.add();
    return;  // without an id there is nothing to confirm
  }
  if (const auto decoded = codec_.decode(frame, decoded_, limits_); !decoded) {
    malformed_.add();
    if (decoded.detail == md::kNilIdDetail)  // an id after all: say why it is refused
      answer(producer, decoded_.id(), ConfirmStatus::rejected, decoded.detail);
    return;
  }
  const MessageId id = decoded_.id();
  published_.add();
  sink.arrived(producer, id);
  if (auto earlier = in_progress_.find(id); earlier != in_progress_.end()) {
    // Not stored yet: the re-send gets the original's answer once known.
    earlier->second.resent_by.push_back(producer);
    return;
  }
  // Stored recently, or still held however old: not again.
  if (recent_.contains(id) || sink.holds(id)) {
    answer(producer, id, ConfirmStatus::duplicate, "");
    return;
  }
  // In progress from here on, so that whatever store() starts always finds
  // its entry when it settles; taken back if the device answered at once.
  in_progress_.try_emplace(id, InProgress{producer, {}});
  Publish publish{producer, id, decoded_, frame, held, target_group};
  if (!sink.store(publish)) in_progress_.erase(id);
}

void PublishIntake::answer(const std::string& producer, const MessageId& id, ConfirmStatus status,
                           std::string reason) {
  switch (status) {
    case ConfirmStatus::duplicate:
      duplicates_.add();
      break;
    case ConfirmStatus::rejected:
      rejected_.add();
      break;
    case ConfirmStatus::full:
      full_.add();
      break;
    case ConfirmStatus::unroutable:
      unroutable_.add();
      break;
    case ConfirmStatus::stored:
      break;
  }
  confirms_.add(producer, id, status, std::move(reason));
}

void PublishIntake::settle(const MessageId& id, ConfirmStatus status, const std::string& reason) {
  auto it = in_progress_.find(id);
  if (it == in_progress_.end()) return;
  InProgress done = std::move(it->second);
  in_progress_.erase(it);
  if (status == ConfirmStatus::stored) recent_.remember(id);
  answer(done.producer, id, status, reason);
  // Stored once: the re-sends are duplicates. Refused: they are refused too.
  const auto again = status == ConfirmStatus::stored ? ConfirmStatus::duplicate : status;
  for (const auto& producer : done.resent_by) answer(producer, id, again, reason);
}

void PublishIntake::end_turn(zmq::socket_t& front) {
  confirms_.flush(front);
  held_.clear();
}

}  // namespace mqkit::devices::detail
