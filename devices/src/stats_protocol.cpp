// msgpack encoding of the stats request and reply, and the stats client.
#include "stats_protocol.hpp"

#include <msgpack.hpp>

#include <algorithm>
#include <chrono>

#include "mqkit/error.hpp"
#include "mqkit/version.hpp"
#include "wire/socket.hpp"
#include "wire/stop_event.hpp"
#include "wire/wait.hpp"

namespace mqkit::devices::detail {
namespace {

constexpr std::uint32_t kProtocolMajor = 1;
constexpr std::uint32_t kProtocolMinor = 0;
// No container may claim more entries than the frame has bytes (each entry
// takes at least one), so the bounds grow with what the tools send (`dlq rm`
// with 1,000 ids, `group ls` of 64 groups, the stats of a 1,024-partition
// stream) and a short frame cannot make the decoder allocate much.
msgpack::unpack_limit limit_for(std::string_view frame) {
  const auto n = frame.size();
  return msgpack::unpack_limit(n, n, n, n, 0, 4);
}

template <typename Packer>
void pack_head(Packer& pk, std::uint32_t size) {
  pk.pack_array(size);
  pk.pack(std::string_view("MQK"));
  pk.pack(kProtocolMajor);
  pk.pack(kProtocolMinor);
}

std::string as_string(const msgpack::sbuffer& b) {
  return {b.data(), b.size()};
}

// Checks the magic and major version; returns the array or throws.
const msgpack::object_array& checked_array(const msgpack::object& o, std::uint32_t min_size) {
  if (o.type != msgpack::type::ARRAY || o.via.array.size < min_size)
    throw Error(errc::malformed, "not an mqkit admin message");
  const auto& a = o.via.array;
  if (a.ptr[0].type != msgpack::type::STR || a.ptr[0].as<std::string_view>() != "MQK")
    throw Error(errc::malformed, "not an mqkit admin message (no MQK magic)");
  if (a.ptr[1].type != msgpack::type::POSITIVE_INTEGER || a.ptr[1].via.u64 != kProtocolMajor)
    throw Error(errc::unsupported_version, "MQKIT-ENVELOPE-VERSION: admin protocol major is not 1");
  return a;
}

}  // namespace

std::string encode_stats_request() {
  msgpack::sbuffer b;
  msgpack::packer pk(b);
  pack_head(pk, 4);
  pk.pack(std::string_view("stats"));
  return as_string(b);
}

std::string encode_admin_request(const std::vector<std::string>& command) {
  msgpack::sbuffer b;
  msgpack::packer pk(b);
  pack_head(pk, static_cast<std::uint32_t>(3 + command.size()));
  for (const auto& word : command) pk.pack(word);
  return as_string(b);
}

std::string parse_request(std::string_view request, std::vector<std::string>& command) {
  try {
    auto handle =
        msgpack::unpack(request.data(), request.size(), nullptr, nullptr, limit_for(request));
    const auto& a = checked_array(handle.get(), 4);
    command.clear();
    for (std::uint32_t i = 3; i < a.size; ++i) {
      if (a.ptr[i].type != msgpack::type::STR) return "admin command words must be strings";
      command.push_back(a.ptr[i].as<std::string>());
    }
    return {};
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception&) {
    return "request is not msgpack";
  }
}

std::string encode_rows_reply(const std::string& device, const std::vector<AdminRow>& rows) {
  msgpack::sbuffer b;
  msgpack::packer pk(b);
  pack_head(pk, 6);
  pk.pack(std::string_view("ok"));
  pk.pack(device);
  pk.pack_array(static_cast<std::uint32_t>(rows.size()));
  for (const auto& row : rows) {
    pk.pack_map(static_cast<std::uint32_t>(row.size()));
    for (const auto& [column, value] : row) {
      pk.pack(column);
      pk.pack(value);
    }
  }
  return as_string(b);
}

std::string encode_stats_reply(const DeviceStats& stats) {
  msgpack::sbuffer b;
  msgpack::packer pk(b);
  pack_head(pk, 6);
  pk.pack(std::string_view("ok"));
  pk.pack(stats.device);
  pk.pack_map(static_cast<std::uint32_t>(stats.counters.size()));
  for (const auto& [name, value] : stats.counters) {
    pk.pack(name);
    pk.pack(value);
  }
  return as_string(b);
}

std::string encode_error_reply(std::string_view error) {
  msgpack::sbuffer b;
  msgpack::packer pk(b);
  pack_head(pk, 5);
  pk.pack(std::string_view("error"));
  pk.pack(error);
  return as_string(b);
}

DeviceStats decode_stats_reply(std::string_view reply) {
  msgpack::object_handle handle;
  try {
    handle = msgpack::unpack(reply.data(), reply.size(), nullptr, nullptr, limit_for(reply));
  } catch (const std::exception&) {
    throw Error(errc::malformed,
                "the stats reply is not msgpack: is this a device's stats endpoint?");
  }
  const auto& a = checked_array(handle.get(), 5);
  try {
    const auto status = a.ptr[3].as<std::string>();
    if (status == "error")
      throw Error(errc::bad_argument, "device says: " + a.ptr[4].as<std::string>());
    if (status != "ok" || a.size < 6) throw Error(errc::malformed, "unexpected stats reply");
    DeviceStats stats;
    stats.device = a.ptr[4].as<std::string>();
    const auto& m = a.ptr[5];
    if (m.type != msgpack::type::MAP) throw Error(errc::malformed, "stats counters are not a map");
    for (std::uint32_t i = 0; i < m.via.map.size; ++i)
      stats.counters.emplace_back(m.via.map.ptr[i].key.as<std::string>(),
                                  m.via.map.ptr[i].val.as<std::uint64_t>());
    return stats;
  } catch (const msgpack::type_error&) {
    throw Error(errc::wrong_type, "a stats reply field has the wrong type");
  }
}

std::vector<AdminRow> decode_rows_reply(std::string_view reply) {
  msgpack::object_handle handle;
  try {
    handle = msgpack::unpack(reply.data(), reply.size(), nullptr, nullptr, limit_for(reply));
  } catch (const std::exception&) {
    throw Error(errc::malformed, "the admin reply is not msgpack: is this a device's endpoint?");
  }
  const auto& a = checked_array(handle.get(), 5);
  try {
    const auto status = a.ptr[3].as<std::string>();
    if (status == "error")
      throw Error(errc::bad_argument, "device says: " + a.ptr[4].as<std::string>());
    if (status != "ok" || a.size < 6 || a.ptr[5].type != msgpack::type::ARRAY)
      throw Error(errc::malformed, "unexpected admin reply");
    std::vector<AdminRow> rows;
    const auto& list = a.ptr[5].via.array;
    for (std::uint32_t i = 0; i < list.size; ++i) {
      const auto& m = list.ptr[i];
      if (m.type != msgpack::type::MAP) throw Error(errc::malformed, "an admin row is not a map");
      AdminRow row;
      for (std::uint32_t j = 0; j < m.via.map.size; ++j)
        row.emplace_back(m.via.map.ptr[j].key.as<std::string>(),
                         m.via.map.ptr[j].val.as<std::string>());
      rows.push_back(std::move(row));
    }
    return rows;
  } catch (const msgpack::type_error&) {
    throw Error(errc::wrong_type, "an admin reply field has the wrong type");
  }
}

}  // namespace mqkit::devices::detail

namespace mqkit::devices {

std::uint64_t DeviceStats::get(std::string_view name) const noexcept {
  for (const auto& [counter, value] : counters)
    if (counter == name) return value;
  return 0;
}

namespace {

// One REQ/REP exchange with a device's stats endpoint.
std::string ask(const std::string& endpoint, const std::string& request, const char* what,
                std::chrono::milliseconds timeout, const Security& security) {
  SocketOptions options;
  options.linger = std::chrono::milliseconds(0);
  options.security = security;
  auto socket = mqkit::detail::open_socket(zmq::socket_type::req, options);
  mqkit::detail::attach(socket, connect(endpoint));
  socket.send(zmq::buffer(request), zmq::send_flags::none);
  // A signal the caller handles (SIGINT in a CLI, a watchdog's SIGALRM)
  // interrupts the wait; the reply may still come within the timeout.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  zmq::message_t reply;
  bool answered = false;
  for (;;) {
    zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    mqkit::detail::poll_ignoring_signals(&item, 1, std::max(left, std::chrono::milliseconds(0)));
    if ((item.revents & ZMQ_POLLIN) && socket.recv(reply, zmq::recv_flags::dontwait)) {
      answered = true;
      break;
    }
    if (left <= std::chrono::milliseconds(0)) break;
  }
  if (!answered)
    throw Error(errc::timeout, std::string("no ") + what + " reply from " + endpoint + " within " +
                                   std::to_string(timeout.count()) +
                                   "ms: is a device's --stats endpoint bound there?");
  return {static_cast<const char*>(reply.data()), reply.size()};
}

}  // namespace

DeviceStats query_stats(const std::string& endpoint, std::chrono::milliseconds timeout,
                        const Security& security) {
  return detail::decode_stats_reply(
      ask(endpoint, detail::encode_stats_request(), "stats", timeout, security));
}

std::vector<AdminRow> admin_request(const std::string& endpoint,
                                    const std::vector<std::string>& command,
                                    std::chrono::milliseconds timeout, const Security& security) {
  return detail::decode_rows_reply(
      ask(endpoint, detail::encode_admin_request(command), "admin", timeout, security));
}

}  // namespace mqkit::devices
