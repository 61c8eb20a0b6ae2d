// Small msgpack-cxx helpers that the envelope codec, the spool's records and
// the proxy protocol share: packing into a std::string, zero-copy unpacking,
// and message ids as 16-byte bin fields.
#pragma once

#include <msgpack.hpp>

#include <array>
#include <cstring>
#include <string>

#include "mqkit/message_id.hpp"

namespace mqkit::detail {

// Lets a msgpack::packer append straight to a std::string.
struct StringSink {
  std::string& out;
  void write(const char* data, std::size_t size) { out.append(data, size); }
};

// An unpack_reference_func: strings and bins point into the input buffer.
inline bool reference_everything(msgpack::type::object_type, std::size_t, void*) {
  return true;
}

template <typename Packer>
void pack_id(Packer& pk, const MessageId& id) {
  pk.pack_bin(MessageId::kSize);
  pk.pack_bin_body(reinterpret_cast<const char*>(id.bytes().data()), MessageId::kSize);
}

inline bool read_id(const msgpack::object& o, MessageId& out) {
  if (o.type != msgpack::type::BIN || o.via.bin.size != MessageId::kSize) return false;
  std::array<std::uint8_t, MessageId::kSize> bytes;
  std::memcpy(bytes.data(), o.via.bin.ptr, MessageId::kSize);
  out = MessageId(bytes);
  return true;
}

}  // namespace mqkit::detail
