// msgpack encoding of spool record bodies.
#include "spool/records.hpp"

#include "detail/msgpack_fields.hpp"

#include <msgpack.hpp>

#include <cstring>

namespace mqkit::detail::spool {
namespace {

using mqkit::detail::pack_id;
using mqkit::detail::read_id;
using mqkit::detail::reference_everything;
using mqkit::detail::StringSink;
using Packer = msgpack::packer<StringSink>;

void pack_bytes(Packer& pk, std::string_view bytes) {
  pk.pack_bin(static_cast<std::uint32_t>(bytes.size()));
  pk.pack_bin_body(bytes.data(), static_cast<std::uint32_t>(bytes.size()));
}

bool read_text(const msgpack::object& o, std::string& out) {
  if (o.type == msgpack::type::STR)
    out.assign(o.via.str.ptr, o.via.str.size);
  else if (o.type == msgpack::type::BIN)
    out.assign(o.via.bin.ptr, o.via.bin.size);
  else
    return false;
  return true;
}

bool read_uint(const msgpack::object& o, std::uint64_t& out) {
  if (o.type != msgpack::type::POSITIVE_INTEGER) return false;
  out = o.via.u64;
  return true;
}

bool read_groups(const msgpack::object& o, std::vector<std::string>& out) {
  if (o.type != msgpack::type::ARRAY) return false;
  out.resize(o.via.array.size);
  for (std::uint32_t i = 0; i < o.via.array.size; ++i)
    if (!read_text(o.via.array.ptr[i], out[i])) return false;
  return true;
}

}  // namespace

std::string encode_publish(std::uint64_t seq, const MessageId& id,
                           const std::vector<std::string>& groups, std::string_view frame) {
  std::string body;
  body.reserve(frame.size() + 40 + 8 * groups.size());
  StringSink sink{body};
  Packer pk(sink);
  pk.pack_array(4);
  pk.pack(seq);
  pack_id(pk, id);
  pk.pack(groups);
  pack_bytes(pk, frame);
  return body;
}

std::string encode_ack(const MessageId& id, std::string_view group) {
  std::string body;
  body.reserve(24 + group.size());  // one allocation: the array, the id and the group's header
  StringSink sink{body};
  Packer pk(sink);
  pk.pack_array(2);
  pack_id(pk, id);
  pk.pack(group);
  return body;
}

std::string encode_dead(const MessageId& id, std::string_view group, std::string_view reason,
                        std::uint32_t attempts, std::string_view last_error) {
  std::string body;
  StringSink sink{body};
  Packer pk(sink);
  pk.pack_array(5);
  pack_id(pk, id);
  pk.pack(group);
  pk.pack(reason);
  pk.pack(attempts);
  pk.pack(last_error);
  return body;
}

std::string encode_attempt(const MessageId& id, std::string_view group, std::uint32_t attempts,
                           std::uint64_t first_failure_ms, std::string_view last_error) {
  std::string body;
  StringSink sink{body};
  Packer pk(sink);
  pk.pack_array(5);
  pack_id(pk, id);
  pk.pack(group);
  pk.pack(attempts);
  pk.pack(first_failure_ms);
  pk.pack(last_error);
  return body;
}

std::string encode_dead_letter(std::uint64_t seq, const MessageId& id, std::string_view frame,
                               const DeadLetterInfo& info) {
  std::string body;
  body.reserve(frame.size() + 128);
  StringSink sink{body};
  Packer pk(sink);
  pk.pack_array(9);
  pk.pack(seq);
  pack_id(pk, id);
  pk.pack(std::vector<std::string>{info.group});
  pack_bytes(pk, frame);
  pk.pack(info.reason);
  pk.pack(info.attempts);
  pk.pack(info.first_failure_ms);
  pk.pack(info.last_failure_ms);
  pk.pack(info.last_error);
  return body;
}

std::optional<DecodedRecord> decode_record(RecordType type, std::string_view body) {
  msgpack::object_handle handle;
  try {
    const msgpack::unpack_limit limit(64, 64, body.size(), body.size(), 0, 4);
    handle = msgpack::unpack(body.data(), body.size(), reference_everything, nullptr, limit);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  const msgpack::object& o = handle.get();
  if (o.type != msgpack::type::ARRAY) return std::nullopt;
  const auto* a = o.via.array.ptr;
  const std::uint32_t n = o.via.array.size;
  DecodedRecord r;
  r.type = type;
  std::string group;
  std::uint64_t attempts = 0;
  switch (type) {
    case RecordType::publish:
      if (n < 4 || !read_uint(a[0], r.seq) || !read_id(a[1], r.id) ||
          !read_groups(a[2], r.groups) || a[3].type != msgpack::type::BIN)
        return std::nullopt;
      r.frame = std::string_view(a[3].via.bin.ptr, a[3].via.bin.size);
      return r;
    case RecordType::ack:
    case RecordType::tombstone:
      if (n < 2 || !read_id(a[0], r.id) || !read_text(a[1], group)) return std::nullopt;
      r.groups = {group};
      return r;
    case RecordType::dead:
      if (n < 5 || !read_id(a[0], r.id) || !read_text(a[1], group) || !read_text(a[2], r.reason) ||
          !read_uint(a[3], attempts) || !read_text(a[4], r.last_error))
        return std::nullopt;
      r.groups = {group};
      r.attempts = static_cast<std::uint32_t>(attempts);
      return r;
    case RecordType::attempt:
      if (n < 5 || !read_id(a[0], r.id) || !read_text(a[1], group) || !read_uint(a[2], attempts) ||
          !read_uint(a[3], r.first_failure_ms) || !read_text(a[4], r.last_error))
        return std::nullopt;
      r.groups = {group};
      r.attempts = static_cast<std::uint32_t>(attempts);
      return r;
    case RecordType::stream:
      return std::nullopt;  // stream logs have their own reader (stream/stream_log.cpp)
    case RecordType::dead_letter:
      if (n < 9 || !read_uint(a[0], r.seq) || !read_id(a[1], r.id) ||
          !read_groups(a[2], r.groups) || a[3].type != msgpack::type::BIN ||
          !read_text(a[4], r.reason) || !read_uint(a[5], attempts) ||
          !read_uint(a[6], r.first_failure_ms) || !read_uint(a[7], r.last_failure_ms) ||
          !read_text(a[8], r.last_error) || r.groups.size() != 1)
        return std::nullopt;
      r.frame = std::string_view(a[3].via.bin.ptr, a[3].via.bin.size);
      r.attempts = static_cast<std::uint32_t>(attempts);
      return r;
  }
  return std::nullopt;
}

}  // namespace mqkit::detail::spool
