// msgpack encoding of the proxy's and the stream's commands.
#include "protocol/commands.hpp"

#include "detail/msgpack_fields.hpp"

#include <cstring>

namespace mqkit::detail::protocol {
namespace {

using mqkit::detail::pack_id;
using mqkit::detail::read_id;
using mqkit::detail::reference_everything;
using Packer = msgpack::packer<mqkit::detail::StringSink>;

constexpr const char* kCommandNames[] = {
    "publish",   "confirm",  "attach",      "attached",  "credit", "deliver",
    "ack",       "nack",     "in_progress", "heartbeat", "detach", "error",
    "subscribe", "assigned", "records",     "commit",    "notice"};
constexpr const char* kStatusNames[] = {"stored", "duplicate", "full", "unroutable", "rejected"};

bool read_text(const msgpack::object& o, std::string& out) {
  if (o.type != msgpack::type::STR) return false;
  out.assign(o.via.str.ptr, o.via.str.size);
  return true;
}

bool read_u32(const msgpack::object& o, std::uint32_t& out) {
  if (o.type != msgpack::type::POSITIVE_INTEGER || o.via.u64 > UINT32_MAX) return false;
  out = static_cast<std::uint32_t>(o.via.u64);
  return true;
}

bool read_u64(const msgpack::object& o, std::uint64_t& out) {
  if (o.type != msgpack::type::POSITIVE_INTEGER) return false;
  out = o.via.u64;
  return true;
}

bool read_texts(const msgpack::object& o, std::vector<std::string>& out) {
  if (o.type != msgpack::type::ARRAY) return false;
  out.resize(o.via.array.size);
  for (std::uint32_t i = 0; i < o.via.array.size; ++i)
    if (!read_text(o.via.array.ptr[i], out[i])) return false;
  return true;
}

bool read_ids(const msgpack::object& o, std::vector<MessageId>& out) {
  if (o.type != msgpack::type::ARRAY) return false;
  out.resize(o.via.array.size);
  for (std::uint32_t i = 0; i < o.via.array.size; ++i)
    if (!read_id(o.via.array.ptr[i], out[i])) return false;
  return true;
}

bool read_u32s(const msgpack::object& o, std::vector<std::uint32_t>& out) {
  if (o.type != msgpack::type::ARRAY) return false;
  out.resize(o.via.array.size);
  for (std::uint32_t i = 0; i < o.via.array.size; ++i)
    if (!read_u32(o.via.array.ptr[i], out[i])) return false;
  return true;
}

bool read_positions(const msgpack::object& o, std::vector<Position>& out) {
  if (o.type != msgpack::type::ARRAY) return false;
  out.resize(o.via.array.size);
  for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
    const auto& item = o.via.array.ptr[i];
    if (item.type != msgpack::type::ARRAY || item.via.array.size < 2 ||
        !read_u32(item.via.array.ptr[0], out[i].partition) ||
        !read_u64(item.via.array.ptr[1], out[i].offset))
      return false;
  }
  return true;
}

bool read_u64s(const msgpack::object& o, std::vector<std::uint64_t>& out) {
  if (o.type != msgpack::type::ARRAY) return false;
  out.resize(o.via.array.size);
  for (std::uint32_t i = 0; i < o.via.array.size; ++i)
    if (!read_u64(o.via.array.ptr[i], out[i])) return false;
  return true;
}

void pack_positions(Packer& pk, const std::vector<Position>& positions) {
  pk.pack_array(static_cast<std::uint32_t>(positions.size()));
  for (const auto& p : positions) {
    pk.pack_array(2);
    pk.pack(p.partition);
    pk.pack(p.offset);
  }
}

template <typename Enum, std::size_t N>
bool read_enum(const msgpack::object& o, const char* const (&names)[N], Enum& out) {
  if (o.type != msgpack::type::STR) return false;
  const std::string_view s(o.via.str.ptr, o.via.str.size);
  for (std::size_t i = 0; i < N; ++i)
    if (s == names[i]) {
      out = static_cast<Enum>(i);
      return true;
    }
  return false;
}

}  // namespace

const char* command_name(Command command) noexcept {
  return kCommandNames[static_cast<int>(command)];
}
const char* status_name(ConfirmStatus status) noexcept {
  return kStatusNames[static_cast<int>(status)];
}

std::string encode_command(const CommandFrame& c) {
  std::string out;
  mqkit::detail::StringSink sink{out};
  Packer pk(sink);
  std::uint32_t args = 0;
  switch (c.command) {
    case Command::publish:
    case Command::confirm:
    case Command::credit:
    case Command::ack:
    case Command::error:
    case Command::commit:
      args = 1;
      break;
    case Command::deliver:
      args = c.attempts.empty() ? 1 : 2;
      break;
    case Command::in_progress:
      args = c.started ? 2 : 1;  // 1.0 proxies read the ids and skip the rest
      break;
    case Command::attached:
    case Command::assigned:
      args = 4;
      break;
    case Command::attach:
    case Command::nack:
    case Command::subscribe:
    case Command::records:
    case Command::notice:
      args = 3;
      break;
    case Command::heartbeat:
    case Command::detach:
      args = 0;
      break;
  }
  pk.pack_array(4 + args);
  pk.pack(std::string_view("MQK"));
  pk.pack(kProtocolMajor);
  pk.pack(kProtocolMinor);
  pk.pack(std::string_view(command_name(c.command)));
  switch (c.command) {
    case Command::publish:
      if (c.target_group)
        pk.pack(*c.target_group);
      else
        pk.pack_nil();
      break;
    case Command::confirm:
      pk.pack_array(static_cast<std::uint32_t>(c.confirmations.size()));
      for (const auto& k : c.confirmations) {
        pk.pack_array(3);
        pack_id(pk, k.id);
        pk.pack(std::string_view(status_name(k.status)));
        pk.pack(k.reason);
      }
      break;
    case Command::attach:
      pk.pack(c.group);
      pk.pack(c.filters);
      pk.pack(c.credit);
      break;
    case Command::attached:
      pk.pack(c.group);
      pk.pack(c.filters);
      pk.pack(c.ack_timeout_ms);
      pk.pack(c.heartbeat_ms);
      break;
    case Command::credit:
      pk.pack(c.credit);
      break;
    case Command::deliver:
      pk.pack(c.group);
      if (!c.attempts.empty()) pk.pack(c.attempts);
      break;
    case Command::ack:
    case Command::in_progress:
      pk.pack_array(static_cast<std::uint32_t>(c.ids.size()));
      for (const auto& id : c.ids) pack_id(pk, id);
      if (c.command == Command::in_progress && c.started) pk.pack(*c.started);
      break;
    case Command::nack:
      pack_id(pk, c.ids.at(0));
      pk.pack(std::string_view(c.action == NackAction::retry ? "retry" : "dead"));
      pk.pack(c.reason);
      break;
    case Command::error:
      pk.pack(c.reason);
      break;
    case Command::subscribe:
      pk.pack(c.group);
      pk.pack(c.from);
      pk.pack(c.credit);
      break;
    case Command::assigned:
      pk.pack(c.group);
      pack_positions(pk, c.positions);
      pk.pack(c.heartbeat_ms);
      pk.pack(c.stream_id);
      break;
    case Command::records:
      pk.pack(c.partition);
      pk.pack(c.offset);
      pk.pack(c.times);
      break;
    case Command::commit:
      pack_positions(pk, c.positions);
      break;
    case Command::notice:
      pk.pack(c.partition);
      pk.pack(c.offset);
      pk.pack(c.reason);
      break;
    case Command::heartbeat:
    case Command::detach:
      break;
  }
  return out;
}

DecodeResult decode_command(std::string_view frame, CommandFrame& out) noexcept {
  msgpack::object_handle handle;
  try {
    const msgpack::unpack_limit limit(kMaxBatch, 16, frame.size(), frame.size(), 0, 4);
    handle = msgpack::unpack(frame.data(), frame.size(), reference_everything, nullptr, limit);
  } catch (const msgpack::insufficient_bytes&) {
    return {errc::truncated, "command frame is cut short"};
  } catch (const std::exception&) {
    return {errc::malformed, "command frame is not msgpack within the limits"};
  }
  const msgpack::object& o = handle.get();
  if (o.type != msgpack::type::ARRAY || o.via.array.size < 4)
    return {errc::malformed, "a command is an array [\"MQK\", major, minor, name, ...]"};
  const auto* a = o.via.array.ptr;
  const std::uint32_t n = o.via.array.size;
  if (a[0].type != msgpack::type::STR ||
      std::string_view(a[0].via.str.ptr, a[0].via.str.size) != "MQK")
    return {errc::malformed, "not an mqkit command (no MQK magic)"};
  if (a[1].type != msgpack::type::POSITIVE_INTEGER || a[1].via.u64 != kProtocolMajor)
    return {errc::unsupported_version,
            "MQKIT-ENVELOPE-VERSION: proxy protocol major version is not 1"};
  out.minor = a[2].type == msgpack::type::POSITIVE_INTEGER && a[2].via.u64 <= UINT32_MAX
                  ? static_cast<std::uint32_t>(a[2].via.u64)
                  : 0;
  if (!read_enum(a[3], kCommandNames, out.command))
    return {errc::malformed, "unknown command name"};
  auto need = [&](std::uint32_t args) { return n >= 4 + args; };
  bool ok = true;
  try {
    switch (out.command) {
      case Command::publish:
        ok = need(1);
        out.target_group.reset();
        if (ok && a[4].type != msgpack::type::NIL) {
          std::string g;
          ok = read_text(a[4], g);
          out.target_group = std::move(g);
        }
        break;
      case Command::confirm: {
        ok = need(1) && a[4].type == msgpack::type::ARRAY;
        if (!ok) break;
        const auto& list = a[4].via.array;
        out.confirmations.resize(list.size);
        for (std::uint32_t i = 0; ok && i < list.size; ++i) {
          const auto& item = list.ptr[i];
          ok = item.type == msgpack::type::ARRAY && item.via.array.size >= 3 &&
               read_id(item.via.array.ptr[0], out.confirmations[i].id) &&
               read_enum(item.via.array.ptr[1], kStatusNames, out.confirmations[i].status) &&
               read_text(item.via.array.ptr[2], out.confirmations[i].reason);
        }
        break;
      }
      case Command::attach:
        ok = need(3) && read_text(a[4], out.group) && read_texts(a[5], out.filters) &&
             read_u32(a[6], out.credit);
        break;
      case Command::attached:
        ok = need(2) && read_text(a[4], out.group) && read_texts(a[5], out.filters);
        // Timings came in with 1.0's heartbeats; absent, they stay 0 (unknown).
        if (ok && need(4))
          ok = read_u64(a[6], out.ack_timeout_ms) && read_u64(a[7], out.heartbeat_ms);
        break;
      case Command::credit:
        ok = need(1) && read_u32(a[4], out.credit);
        break;
      case Command::deliver:
        ok = need(1) && read_text(a[4], out.group);
        out.attempts.clear();
        if (ok && need(2)) ok = read_u32s(a[5], out.attempts);
        break;
      case Command::ack:
        ok = need(1) && read_ids(a[4], out.ids);
        break;
      case Command::in_progress:
        ok = need(1) && read_ids(a[4], out.ids);
        out.started.reset();
        if (ok && need(2)) {
          std::uint32_t started = 0;
          ok = read_u32(a[5], started);
          out.started = started;
        }
        break;
      case Command::nack: {
        out.ids.resize(1);
        std::string action;
        ok = need(3) && read_id(a[4], out.ids[0]) && read_text(a[5], action) &&
             (action == "retry" || action == "dead") && read_text(a[6], out.reason);
        out.action = action == "dead" ? NackAction::dead : NackAction::retry;
        break;
      }
      case Command::error:
        ok = need(1) && read_text(a[4], out.reason);
        break;
      case Command::subscribe:
        ok = need(3) && read_text(a[4], out.group) && read_text(a[5], out.from) &&
             read_u32(a[6], out.credit);
        break;
      case Command::assigned:
        ok = need(3) && read_text(a[4], out.group) && read_positions(a[5], out.positions) &&
             read_u64(a[6], out.heartbeat_ms);
        out.stream_id.clear();  // 1.1 streams do not say
        if (ok && need(4)) ok = read_text(a[7], out.stream_id);
        break;
      case Command::records:
        ok = need(3) && read_u32(a[4], out.partition) && read_u64(a[5], out.offset) &&
             read_u64s(a[6], out.times);
        break;
      case Command::commit:
        ok = need(1) && read_positions(a[4], out.positions);
        break;
      case Command::notice:
        ok = need(3) && read_u32(a[4], out.partition) && read_u64(a[5], out.offset) &&
             read_text(a[6], out.reason);
        break;
      case Command::heartbeat:
      case Command::detach:
        break;
    }
  } catch (const std::bad_alloc&) {
    return {errc::too_large, "command too large"};
  }
  if (!ok) return {errc::wrong_type, "command arguments are missing or of the wrong type"};
  return {};
}

}  // namespace mqkit::detail::protocol
