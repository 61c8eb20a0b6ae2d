// EnvelopeCodec: the reusable, allocation-free-after-warmup encoder/decoder
// behind mqkit::encode/decode and every sending and receiving pattern.
#pragma once

#include <msgpack.hpp>

#include <string>
#include <string_view>

#include "mqkit/envelope.hpp"
#include "mqkit/error.hpp"

namespace mqkit::detail {

inline constexpr char kMagic[] = {'\xA3', 'M', 'Q', 'K'};  // msgpack fixstr "MQK"
inline constexpr std::size_t kMagicSize = sizeof kMagic;

// The detail of a decode refused for a nil (all-zero) id; the id it read is
// left in the envelope, so a device can answer `rejected` for it.
inline constexpr const char kNilIdDetail[] = "the message id is nil (all zero bytes)";

struct DecodeResult {
  errc code = errc::ok;
  const char* detail = "";  // what exactly is wrong, for logs and exceptions
  explicit operator bool() const noexcept { return code == errc::ok; }
};

class EnvelopeCodec {
 public:
  // Writes everything that precedes the payload (topic, NUL, magic, version,
  // fields) into `head`, replacing its contents. Throws Error(bad_argument).
  // Static: encoding needs no zone (constructing one allocates 8 KiB).
  static void encode_head(const Envelope& envelope, std::string& head);

  // The head of an envelope without headers or key has one fixed layout
  // (docs/protocol.md). Its size, or 0 when the envelope needs encode_head.
  static std::size_t canonical_head_size(const Envelope& envelope) noexcept;
  // Writes that layout, byte for byte what encode_head would write, into
  // `out`, which has canonical_head_size() bytes. Throws Error(bad_argument).
  static void write_canonical_head(const Envelope& envelope, char* out);

  // Decodes a one-frame message. A frame without the magic becomes a raw
  // payload with a fresh envelope (out.wrapped = true).
  DecodeResult decode(std::string_view frame, Message& out, const Limits& limits) noexcept;

  // Wraps raw frames from a plain ZeroMQ peer in a fresh envelope.
  static DecodeResult wrap_raw(std::string_view topic, std::string_view payload, Message& out,
                               const Limits& limits) noexcept;

 private:
  DecodeResult decode_fields(const msgpack::object& fields, Message& out,
                             const Limits& limits) noexcept;
  msgpack::zone zone_;
};

// Offset of the NUL that ends the topic when `frame` carries an envelope.
[[nodiscard]] std::optional<std::size_t> envelope_offset(std::string_view frame) noexcept;

}  // namespace mqkit::detail
