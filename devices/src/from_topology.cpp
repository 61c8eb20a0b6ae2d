// DeviceSpec (parsed settings, endpoint names) -> the device's own options.
#include "mqkit/devices/from_topology.hpp"

#include "mqkit/devices/bridge.hpp"
#include "mqkit/devices/forwarder.hpp"
#include "mqkit/devices/proxy.hpp"
#include "mqkit/devices/stream.hpp"
#include "mqkit/devices/streamer.hpp"
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

// The settings are parsed already (Topology, through device_settings.hpp);
// what is left is where the device binds and its keys.
ProxyOptions proxy_options(const Topology& topology, const DeviceSpec& spec) {
  ProxyOptions o;
  static_cast<ProxySettings&>(o) = spec.proxy;
  o.front = bind_of(topology, spec, "front");
  o.back = bind_of(topology, spec, "back");
  o.stats = bind_of(topology, spec, "stats");
  o.socket.security = security_of(spec);
  return o;
}

StreamOptions stream_options(const Topology& topology, const DeviceSpec& spec) {
  StreamOptions o;
  static_cast<StreamSettings&>(o) = spec.stream;
  o.front = bind_of(topology, spec, "front");
  o.back = bind_of(topology, spec, "back");
  o.stats = bind_of(topology, spec, "stats");
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
