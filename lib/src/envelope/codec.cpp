// Envelope encoding and strict, bounded decoding with msgpack-cxx.
// Field keys are small integers so the envelope stays around 40 bytes; unknown
// keys are skipped so that minor versions can add fields.
#include "envelope/codec.hpp"

#include "detail/msgpack_fields.hpp"
#include "detail/wall_clock.hpp"

#include <chrono>
#include <cstring>
#include <span>

namespace mqkit::detail {
namespace {

enum FieldKey : std::uint64_t {
  kFieldId = 1,
  kFieldCreatedAt = 2,
  kFieldAttempt = 3,
  kFieldHeaders = 4,
  kFieldKey = 5,
  kFieldNotBefore = 6,  // 1.1
};

std::string_view as_view(const msgpack::object& o) {
  return o.type == msgpack::type::STR ? std::string_view(o.via.str.ptr, o.via.str.size)
                                      : std::string_view(o.via.bin.ptr, o.via.bin.size);
}

bool is_text(const msgpack::object& o) {
  return o.type == msgpack::type::STR || o.type == msgpack::type::BIN;
}

using mqkit::detail::now_ms;

// The envelope of a fresh message (no headers, no key, attempt 1, created_at
// equal to the id's own timestamp) encodes to exactly 20 bytes:
//   81 01 c4 10 <16 id bytes>
// Recognising exactly these bytes skips msgpack-cxx's general object
// building, which costs more than the rest of a small message's receive
// path. Anything else takes the general path; both accept the same input.
constexpr unsigned char kCanonicalFields[] = {0x81, kFieldId, 0xc4, 0x10};
constexpr std::size_t kCanonicalFieldsSize = sizeof kCanonicalFields + MessageId::kSize;

bool decode_canonical(std::string_view frame, std::size_t& offset, Envelope& e) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(frame.data()) + offset;
  if (frame.size() - offset < kCanonicalFieldsSize ||
      std::memcmp(p, kCanonicalFields, sizeof kCanonicalFields) != 0)
    return false;
  std::array<std::uint8_t, MessageId::kSize> id;
  std::memcpy(id.data(), p + sizeof kCanonicalFields, MessageId::kSize);
  e.id = MessageId(id);
  e.created_at = e.id.unix_ms();
  e.attempt = 1;
  e.headers.clear();
  e.key.reset();
  e.not_before = 0;
  offset += kCanonicalFieldsSize;
  return true;
}

}  // namespace

std::optional<std::size_t> envelope_offset(std::string_view frame) noexcept {
  const std::size_t window = std::min(frame.size(), kMaxTopicSize + 1);
  const void* nul = std::memchr(frame.data(), 0, window);
  if (nul == nullptr) return std::nullopt;
  const std::size_t at = static_cast<std::size_t>(static_cast<const char*>(nul) - frame.data());
  if (frame.size() - at - 1 < kMagicSize) return std::nullopt;
  if (std::memcmp(frame.data() + at + 1, kMagic, kMagicSize) != 0) return std::nullopt;
  return at;
}

static void validate_topic(std::string_view topic) {
  if (topic.size() > kMaxTopicSize)
    throw Error(errc::bad_argument, "topic is longer than 255 bytes");
  if (topic.find('\0') != std::string::npos)
    throw Error(errc::bad_argument, "topic contains a NUL byte");
}

std::size_t EnvelopeCodec::canonical_head_size(const Envelope& e) noexcept {
  if (!e.headers.empty() || e.key || e.attempt != 1 || e.created_at != e.id.unix_ms() ||
      e.not_before != 0)
    return 0;
  return e.topic.size() + 1 + kMagicSize + 2 + kCanonicalFieldsSize;
}

void EnvelopeCodec::write_canonical_head(const Envelope& e, char* out) {
  validate_topic(e.topic);
  auto* p = reinterpret_cast<unsigned char*>(out);
  std::memcpy(p, e.topic.data(), e.topic.size());
  p += e.topic.size();
  *p++ = 0;
  std::memcpy(p, kMagic, kMagicSize);
  p += kMagicSize;
  *p++ = kEnvelopeMajor;
  *p++ = kEnvelopeMinor;
  std::memcpy(p, kCanonicalFields, sizeof kCanonicalFields);
  std::memcpy(p + sizeof kCanonicalFields, e.id.bytes().data(), MessageId::kSize);
}

void EnvelopeCodec::encode_head(const Envelope& e, std::string& head) {
  validate_topic(e.topic);
  if (e.key && e.key->size() > kMaxKeySize)
    throw Error(errc::bad_argument, "key is longer than 255 bytes");
  if (e.headers.size() > kMaxHeaderCount) throw Error(errc::bad_argument, "more than 1024 headers");

  head.clear();
  head.append(e.topic);
  head.push_back('\0');
  head.append(kMagic, kMagicSize);
  head.push_back(static_cast<char>(kEnvelopeMajor));
  head.push_back(static_cast<char>(kEnvelopeMinor));

  StringSink sink{head};
  msgpack::packer<StringSink> pk(sink);
  // Fields that equal their defaults are left out: created_at defaults to the
  // id's timestamp, attempt to 1.
  const bool write_created_at = e.created_at != e.id.unix_ms();
  const bool write_attempt = e.attempt != 1;
  const std::uint32_t field_count = 1 + write_created_at + write_attempt + !e.headers.empty() +
                                    e.key.has_value() + (e.not_before != 0);
  pk.pack_map(field_count);
  pk.pack_uint8(kFieldId);
  pk.pack_bin(MessageId::kSize);
  pk.pack_bin_body(reinterpret_cast<const char*>(e.id.bytes().data()), MessageId::kSize);
  if (write_created_at) {
    pk.pack_uint8(kFieldCreatedAt);
    pk.pack(e.created_at);
  }
  if (write_attempt) {
    pk.pack_uint8(kFieldAttempt);
    pk.pack(e.attempt);
  }
  if (!e.headers.empty()) {
    pk.pack_uint8(kFieldHeaders);
    pk.pack_map(static_cast<std::uint32_t>(e.headers.size()));
    for (const auto& [name, value] : e.headers) {
      pk.pack(name);
      pk.pack(value);
    }
  }
  if (e.key) {
    pk.pack_uint8(kFieldKey);
    pk.pack(*e.key);
  }
  if (e.not_before != 0) {
    pk.pack_uint8(kFieldNotBefore);
    pk.pack(e.not_before);
  }
}

DecodeResult EnvelopeCodec::decode(std::string_view frame, Message& out,
                                   const Limits& limits) noexcept {
  const auto nul = envelope_offset(frame);
  if (!nul) return wrap_raw({}, frame, out, limits);

  std::size_t offset = *nul + 1 + kMagicSize;
  if (frame.size() < offset + 2) return {errc::truncated, "frame ends inside the version"};
  const auto major = static_cast<std::uint8_t>(frame[offset]);
  if (major != kEnvelopeMajor)
    return {errc::unsupported_version,
            "MQKIT-ENVELOPE-VERSION: envelope major version is not 1 (this mqkit reads 1.x)"};
  offset += 2;  // the minor version is informational: same major, same rules

  out.envelope.topic.assign(frame.data(), *nul);
  out.wrapped = false;
  if (decode_canonical(frame, offset, out.envelope)) {
    if (out.envelope.id.is_nil()) return {errc::malformed, kNilIdDetail};
    const std::string_view payload = frame.substr(offset);
    if (payload.size() > limits.max_message_size)
      return {errc::too_large, "payload exceeds the maximum message size"};
    out.borrow_payload(payload);
    return {};
  }
  zone_.clear();
  msgpack::object fields;
  try {
    // Bounds: no container may claim more entries than a frame could hold.
    const msgpack::unpack_limit limit(/*array=*/64, /*map=*/kMaxHeaderCount, frame.size(),
                                      frame.size(), /*ext=*/frame.size(), /*depth=*/4);
    fields = msgpack::unpack(zone_, frame.data(), frame.size(), offset, reference_everything,
                             nullptr, limit);
  } catch (const msgpack::insufficient_bytes&) {
    return {errc::truncated, "frame ends inside the envelope fields"};
  } catch (const std::exception&) {
    return {errc::malformed, "envelope fields are not valid msgpack within the limits"};
  }
  if (fields.type != msgpack::type::MAP)
    return {errc::wrong_type, "envelope fields must be a msgpack map"};
  DecodeResult result = decode_fields(fields, out, limits);
  if (!result) return result;

  const std::string_view payload = frame.substr(offset);
  std::size_t size = payload.size();
  for (const auto& [name, value] : out.envelope.headers) size += name.size() + value.size();
  if (size > limits.max_message_size)
    return {errc::too_large, "payload plus headers exceed the maximum message size"};
  out.borrow_payload(payload);
  return {};
}

DecodeResult EnvelopeCodec::decode_fields(const msgpack::object& fields, Message& out,
                                          const Limits& limits) noexcept {
  Envelope& e = out.envelope;
  bool have_id = false;
  bool have_created_at = false;
  e.attempt = 1;
  e.headers.clear();
  e.key.reset();
  e.not_before = 0;
  try {
    for (const auto& kv : std::span(fields.via.map.ptr, fields.via.map.size)) {
      if (kv.key.type != msgpack::type::POSITIVE_INTEGER) continue;  // not ours: skip
      const msgpack::object& v = kv.val;
      switch (kv.key.via.u64) {
        case kFieldId: {
          if (v.type != msgpack::type::BIN || v.via.bin.size != MessageId::kSize)
            return {errc::wrong_type, "field 'id' must be 16 bytes of msgpack bin"};
          std::array<std::uint8_t, MessageId::kSize> bytes;
          std::memcpy(bytes.data(), v.via.bin.ptr, MessageId::kSize);
          e.id = MessageId(bytes);
          have_id = true;
          break;
        }
        case kFieldCreatedAt:
          if (v.type != msgpack::type::POSITIVE_INTEGER)
            return {errc::wrong_type, "field 'created_at' must be an unsigned integer"};
          e.created_at = v.via.u64;
          have_created_at = true;
          break;
        case kFieldAttempt:
          if (v.type != msgpack::type::POSITIVE_INTEGER || v.via.u64 > UINT32_MAX)
            return {errc::wrong_type, "field 'attempt' must be an unsigned 32-bit integer"};
          e.attempt = static_cast<std::uint32_t>(v.via.u64);
          break;
        case kFieldHeaders: {
          if (v.type != msgpack::type::MAP)
            return {errc::wrong_type, "field 'headers' must be a map of strings"};
          std::size_t header_bytes = 0;
          for (const auto& h : std::span(v.via.map.ptr, v.via.map.size)) {
            if (!is_text(h.key) || !is_text(h.val))
              return {errc::wrong_type, "field 'headers' must be a map of strings"};
            header_bytes += as_view(h.key).size() + as_view(h.val).size();
            if (header_bytes > limits.max_message_size)
              return {errc::too_large, "headers exceed the maximum message size"};
            e.headers.insert_or_assign(std::string(as_view(h.key)), std::string(as_view(h.val)));
          }
          break;
        }
        case kFieldKey:
          if (!is_text(v) || as_view(v).size() > kMaxKeySize)
            return {errc::wrong_type, "field 'key' must be a string of at most 255 bytes"};
          e.key.emplace(as_view(v));
          break;
        case kFieldNotBefore:
          if (v.type != msgpack::type::POSITIVE_INTEGER)
            return {errc::wrong_type, "field 'not_before' must be an unsigned integer"};
          e.not_before = v.via.u64;
          break;
        default:
          break;  // a field from a newer minor version
      }
    }
  } catch (const std::bad_alloc&) {
    return {errc::too_large, "out of memory while decoding headers"};
  }
  if (!have_id) return {errc::malformed, "envelope has no 'id' field"};
  // The nil id marks an empty slot in the devices' id tables: never an id.
  if (e.id.is_nil()) return {errc::malformed, kNilIdDetail};
  if (!have_created_at) e.created_at = e.id.unix_ms();
  return {};
}

DecodeResult EnvelopeCodec::wrap_raw(std::string_view topic, std::string_view payload, Message& out,
                                     const Limits& limits) noexcept {
  if (payload.size() > limits.max_message_size)
    return {errc::too_large, "raw payload exceeds the maximum message size"};
  if (topic.size() > kMaxTopicSize) return {errc::malformed, "raw topic is longer than 255 bytes"};
  Envelope& e = out.envelope;
  e.id = MessageId::generate();
  e.topic.assign(topic);
  e.headers.clear();
  e.attempt = 1;
  e.created_at = now_ms();
  e.key.reset();
  e.not_before = 0;
  out.borrow_payload(payload);
  out.wrapped = true;
  return {};
}

}  // namespace mqkit::detail

namespace mqkit {

Envelope Envelope::make(std::string topic) {
  Envelope e;
  e.id = MessageId::generate();
  e.topic = std::move(topic);
  e.created_at = e.id.unix_ms();
  return e;
}

bool has_envelope(std::string_view frame) noexcept {
  return detail::envelope_offset(frame).has_value();
}

std::string encode(const Envelope& envelope, std::string_view payload) {
  using detail::EnvelopeCodec;
  std::string frame;
  // The common envelope (no headers, key or attempt) in one allocation.
  if (const std::size_t head = EnvelopeCodec::canonical_head_size(envelope); head > 0) {
    frame.resize(head + payload.size());
    EnvelopeCodec::write_canonical_head(envelope, frame.data());
    if (!payload.empty()) std::memcpy(frame.data() + head, payload.data(), payload.size());
    return frame;
  }
  EnvelopeCodec::encode_head(envelope, frame);
  frame.append(payload);
  return frame;
}

std::error_code decode(std::string_view frame, Message& out, const Limits& limits) noexcept {
  detail::EnvelopeCodec codec;
  const auto result = codec.decode(frame, out, limits);
  if (result) {
    try {
      out.own_payload();
    } catch (const std::bad_alloc&) {
      return make_error_code(errc::too_large);
    }
  }
  return make_error_code(result.code);
}

Message decode(std::string_view frame, const Limits& limits) {
  detail::EnvelopeCodec codec;
  Message message;
  const auto result = codec.decode(frame, message, limits);
  if (!result) throw Error(result.code, result.detail);
  message.own_payload();
  return message;
}

}  // namespace mqkit
