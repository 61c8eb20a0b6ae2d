// DeviceSpec (validated text) -> the device's own options.
#include "mqkit/devices/from_topology.hpp"

#include <algorithm>

#include "mqkit/devices/bridge.hpp"
#include "mqkit/devices/forwarder.hpp"
#include "mqkit/devices/proxy.hpp"
#include "mqkit/devices/stream.hpp"
#include "mqkit/devices/streamer.hpp"
#include "mqkit/duration.hpp"
#include "mqkit/error.hpp"

namespace mqkit::devices {
namespace {

std::string bind_of(const Topology& topology, const DeviceSpec& spec, const std::string& role) {
  auto it = spec.endpoints.find(role);
  return it == spec.endpoints.end() ? std::string() : topology.endpoint_info(it->second).bind;
}

Security security_of(const DeviceSpec& spec) {
  Security s;
  if (spec.curve_key.empty()) return s;
  s.server = load_key_pair(spec.curve_key);
  s.allowed_clients = load_allow_list(spec.allow);
  return s;
}

ProxyOptions proxy_options(const Topology& topology, const DeviceSpec& spec) {
  ProxyOptions o;
  o.front = bind_of(topology, spec, "front");
  o.back = bind_of(topology, spec, "back");
  o.stats = bind_of(topology, spec, "stats");
  o.spool_dir = spec.spool;
  o.dlq_dir = spec.dlq;
  parse_durability(spec.fsync, o.spool);
  o.retry = RetryPolicy::parse(spec.backoff, spec.max_attempts);
  o.ack_timeout = parse_duration(spec.ack_timeout);
  o.heartbeat = parse_duration(spec.heartbeat);
  o.dedup_window = spec.dedup_window;
  o.groups = spec.groups;
  o.socket.security = security_of(spec);
  if (!spec.max_spool.empty()) o.spool.max_size = parse_size(spec.max_spool);
  if (!spec.segment_size.empty())
    o.spool.segment_size = parse_size(spec.segment_size);
  else if (o.spool.max_size > 0)  // space comes back a segment at a time
    o.spool.segment_size =
        std::clamp<std::uint64_t>(o.spool.max_size / 8, 64 * 1024, o.spool.segment_size);
  return o;
}

StreamOptions stream_options(const Topology& topology, const DeviceSpec& spec) {
  StreamOptions o;
  o.front = bind_of(topology, spec, "front");
  o.back = bind_of(topology, spec, "back");
  o.stats = bind_of(topology, spec, "stats");
  o.dir = spec.dir;
  o.partitions = spec.partitions;
  SpoolOptions durability;
  parse_durability(spec.fsync.empty() ? "always" : spec.fsync, durability);
  o.log.durability = durability.durability;
  o.log.sync_interval = durability.sync_interval;
  if (!spec.retain_bytes.empty()) o.log.retain_bytes = parse_size(spec.retain_bytes);
  if (!spec.retain_age.empty()) o.log.retain_age = parse_duration(spec.retain_age);
  if (!spec.segment_size.empty()) o.log.segment_size = parse_size(spec.segment_size);
  o.heartbeat = parse_duration(spec.heartbeat);
  o.dedup_window = spec.dedup_window;
  o.socket.security = security_of(spec);
  return o;
}

BridgeOptions bridge_options(const Topology& topology, const DeviceSpec& spec) {
  BridgeOptions o;
  o.source = spec.source == "stream"      ? BridgeOptions::Source::stream
             : spec.source == "forwarder" ? BridgeOptions::Source::forwarder
                                          : BridgeOptions::Source::proxy;
  o.from = topology.endpoint(spec.endpoints.at("from"));
  o.to = topology.endpoint(spec.endpoints.at("to"));
  o.name = spec.source_name;
  o.topics = spec.topics;
  o.start = spec.start;
  o.stats = bind_of(topology, spec, "stats");
  if (!spec.curve_key.empty()) {  // a client of the CURVE devices at either side
    const auto keys = load_key_pair(spec.curve_key);
    auto towards = [&keys](const std::string& server_key) {
      Security s;
      if (server_key.empty()) return s;
      s.client = keys;
      s.server_public_key = load_public_key(server_key);
      return s;
    };
    o.source_security = towards(spec.from_server_key);
    o.target_security = towards(spec.to_server_key);
  }
  return o;
}

}  // namespace

std::unique_ptr<Device> make_device(const Topology& topology, const DeviceSpec& spec) {
  try {
    if (spec.kind == "proxy") return std::make_unique<Proxy>(proxy_options(topology, spec));
    if (spec.kind == "stream") return std::make_unique<Stream>(stream_options(topology, spec));
    if (spec.kind == "bridge") return std::make_unique<Bridge>(bridge_options(topology, spec));
    DeviceOptions o{bind_of(topology, spec, "in"),
                    bind_of(topology, spec, "out"),
                    bind_of(topology, spec, "stats"),
                    {}};
    o.socket.security = security_of(spec);
    if (spec.kind == "streamer") return std::make_unique<Streamer>(o);
    if (spec.kind == "forwarder") return std::make_unique<Forwarder>(o);
  } catch (const Error& e) {
    throw Error(e.code(), "device '" + spec.name + "': " + e.what());
  }
  throw Error(errc::bad_argument,
              "device '" + spec.name + "' has unknown kind '" + spec.kind + "'");
}

}  // namespace mqkit::devices
