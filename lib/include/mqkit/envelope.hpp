// The message: a topic, an envelope (id, headers, attempt, created_at, key)
// and a payload, and the codec that puts them in one ZeroMQ frame:
//
//   [topic bytes][0x00][0xA3 'M' 'Q' 'K'][major][minor][msgpack map of fields][payload]
//
// docs/protocol.md is the full specification. Raw frames from plain ZeroMQ
// peers (`[payload]` or `[topic][payload]`) have no magic and are wrapped in
// a fresh envelope on receipt.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include "mqkit/message_id.hpp"

namespace mqkit {

inline constexpr std::uint8_t kEnvelopeMajor = 1;
// 1.1 adds not_before (decoders of 1.0 skip it: an older proxy delivers at once).
inline constexpr std::uint8_t kEnvelopeMinor = 1;
inline constexpr std::size_t kMaxTopicSize = 255;
inline constexpr std::size_t kMaxKeySize = 255;
inline constexpr std::size_t kMaxHeaderCount = 1024;
inline constexpr std::size_t kDefaultMaxMessageSize = 16 * 1024 * 1024;

// Bounds applied on receive. max_message_size counts payload plus header keys
// and values; the frame as a whole may exceed it by kFrameOverhead at most.
struct Limits {
  std::size_t max_message_size = kDefaultMaxMessageSize;
  static constexpr std::size_t kFrameOverhead = 64 * 1024;
  std::size_t max_frame_size() const noexcept { return max_message_size + kFrameOverhead; }
};

struct Envelope {
  MessageId id;
  std::string topic;                           // at most kMaxTopicSize bytes, no NUL
  std::map<std::string, std::string> headers;  // at most kMaxHeaderCount entries
  std::uint32_t attempt = 1;                   // 1 on first delivery
  std::uint64_t created_at = 0;                // ms since the Unix epoch, UTC
  std::optional<std::string> key;              // ordering key, at most kMaxKeySize bytes
  // ms since the Unix epoch, UTC: a reliable proxy delivers the message no
  // earlier (a scheduled message). 0: at once. Other receivers ignore it.
  std::uint64_t not_before = 0;

  // A new envelope with a fresh id and created_at = now.
  static Envelope make(std::string topic);
};

// A message as a receiver hands it over. Inside a run() handler the payload
// is borrowed from the received frame (no copy) and valid until the handler
// returns; a copy of the Message, and every Message returned by value
// (receive(), decode()), owns its payload.
class Message {
 public:
  Envelope envelope;
  bool wrapped = false;  // arrived as raw frames and got its envelope on receipt

  Message() = default;
  Message(Envelope e, std::string payload)
      : envelope(std::move(e)), owned_(std::move(payload)), payload_(owned_), owns_(true) {}
  Message(const Message& other) : envelope(other.envelope), wrapped(other.wrapped) {
    set_payload(std::string(other.payload_));
  }
  Message(Message&& other) noexcept { *this = std::move(other); }
  Message& operator=(const Message& other) {
    if (this != &other) *this = Message(other);
    return *this;
  }
  Message& operator=(Message&& other) noexcept {
    envelope = std::move(other.envelope);
    wrapped = other.wrapped;
    owns_ = other.owns_;
    owned_ = std::move(other.owned_);
    payload_ = owns_ ? std::string_view(owned_) : other.payload_;
    other.payload_ = {};
    other.owns_ = false;
    return *this;
  }

  std::string_view payload() const noexcept { return payload_; }
  const MessageId& id() const noexcept { return envelope.id; }
  const std::string& topic() const noexcept { return envelope.topic; }

  // Copies `bytes` into the message.
  void set_payload(std::string bytes) {
    owned_ = std::move(bytes);
    payload_ = owned_;
    owns_ = true;
  }
  // Points at `bytes` without copying; they must outlive the use of payload().
  void borrow_payload(std::string_view bytes) noexcept {
    payload_ = bytes;
    owns_ = false;
  }
  // Turns a borrowed payload into an owned one.
  void own_payload() {
    if (!owns_) set_payload(std::string(payload_));
  }

 private:
  std::string owned_;
  std::string_view payload_;
  bool owns_ = false;
};

// True when the frame carries an mqkit envelope (of any version).
bool has_envelope(std::string_view frame) noexcept;

// Encodes one frame. Throws Error(errc::bad_argument) when the topic or key is
// too long or the topic contains a NUL byte.
std::string encode(const Envelope& envelope, std::string_view payload);

// Decodes one frame into `out`. A frame without the magic is wrapped as a raw
// payload with an empty topic. Returns the error instead of throwing; never
// allocates more than the frame's own size plus a bounded constant.
[[nodiscard]] std::error_code decode(std::string_view frame, Message& out,
                                     const Limits& limits = {}) noexcept;

// Decodes one frame; throws Error with a message that says what is wrong.
Message decode(std::string_view frame, const Limits& limits = {});

}  // namespace mqkit
