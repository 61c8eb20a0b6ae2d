// The commands of the proxy and the stream (docs/proxy-protocol.md,
// docs/stream-protocol.md): every command is one msgpack frame
// ["MQK", major, minor, name, args...], followed, for PUBLISH and DELIVER, by
// one mqkit message frame per message (the frames of docs/protocol.md,
// unchanged, so payloads are never re-encoded), and for RECORDS by one batch
// frame. Decoding is strict and bounded like the envelope's; a bad command is
// a typed error.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "envelope/codec.hpp"
#include "mqkit/message_id.hpp"

namespace mqkit::detail::protocol {

inline constexpr std::uint32_t kProtocolMajor = 1;
// 1.1: the stream commands; 1.2: stream id; 1.3: attempts in DELIVER
inline constexpr std::uint32_t kProtocolMinor = 3;
// From this minor on a worker takes each message's attempt from DELIVER.
inline constexpr std::uint32_t kAttemptsInDeliver = 3;
inline constexpr std::size_t kMaxBatch = 65536;  // ids or confirms in one command

enum class Command {
  publish,      // producer -> proxy: [target_group | nil], then N message frames
  confirm,      // proxy -> producer: [[id, status, reason], ...]
  attach,       // worker -> proxy: group, [filter, ...], credit
  attached,     // proxy -> worker: group, [filter, ...], ack_timeout_ms, heartbeat_ms
  credit,       // worker -> proxy: n more messages it can hold
  deliver,      // proxy -> worker: group, [attempt, ...] (1.3), then N message frames
  ack,          // worker -> proxy: [id, ...]
  nack,         // worker -> proxy: id, "retry" | "dead", reason
  in_progress,  // worker -> proxy: [id, ...], [started]: restart these deliveries' ack
                // deadlines; the first `started` ids were started, the rest wait (absent: all)
  heartbeat,    // both ways
  detach,       // worker -> proxy: hand back unacked messages, leave the group
  error,        // proxy -> peer: what was wrong with its last command
  // The stream device's readers (docs/stream-protocol.md):
  subscribe,  // reader -> stream: name ("" alone), from, credit
  assigned,   // stream -> reader: name, [[partition, next offset], ...], heartbeat_ms, stream id;
              // reader -> stream (1.2): the answer, what it holds now
  records,    // stream -> reader: partition, first offset, [time_ms, ...], then N frames
  commit,     // reader -> stream: [[partition, next offset], ...] processed up to there
  notice,     // stream -> reader: partition, offset, reason (its position moved)
};

// A partition and an offset in it: a reader's position, or where it starts.
struct Position {
  std::uint32_t partition = 0;
  std::uint64_t offset = 0;
  bool operator==(const Position&) const = default;
};

enum class ConfirmStatus { stored, duplicate, full, unroutable, rejected };
enum class NackAction { retry, dead };

struct Confirmation {
  MessageId id;
  ConfirmStatus status = ConfirmStatus::stored;
  std::string reason;  // for rejected (and full, unroutable: a hint)
};

struct CommandFrame {
  Command command = Command::heartbeat;
  std::optional<std::string> target_group;  // publish
  std::string group;                        // attach, attached, deliver
  std::vector<std::string> filters;         // attach, attached
  std::uint32_t credit = 0;                 // attach, credit
  std::vector<MessageId> ids;               // ack, in_progress, nack (one)
  std::optional<std::uint32_t> started;     // in_progress: how many of `ids` were started
  std::vector<Confirmation> confirmations;  // confirm
  NackAction action = NackAction::retry;    // nack
  std::string reason;                       // nack, error
  std::uint64_t ack_timeout_ms = 0;         // attached
  std::uint64_t heartbeat_ms = 0;           // attached, assigned: both sides heartbeat this often
  std::string from;                         // subscribe
  std::vector<Position> positions;          // assigned, commit
  std::uint32_t partition = 0;              // records, notice
  std::uint64_t offset = 0;                 // records (the first), notice
  std::vector<std::uint64_t> times;         // records: append time of each, ms since the epoch
  std::string stream_id;  // assigned (1.2): which stream this is; a new one after a reset
  // deliver (1.3): each message's attempt number, in frame order. The stored
  // frame's envelope keeps the attempt it was published with: a retry is
  // never re-encoded, and a 1.3 worker sets the attempt from here.
  std::vector<std::uint32_t> attempts;
  std::uint32_t minor = kProtocolMinor;  // decoded: the sender's minor version
};

// The start of an `error` reason that tells a worker to ATTACH again (the
// proxy restarted, or dropped it as lost).
inline constexpr std::string_view kNotAttached = "not attached";

const char* command_name(Command command) noexcept;
const char* status_name(ConfirmStatus status) noexcept;

std::string encode_command(const CommandFrame& command);
// Fills `out`; on failure says what was wrong (detail is a static string).
DecodeResult decode_command(std::string_view frame, CommandFrame& out) noexcept;

}  // namespace mqkit::detail::protocol
