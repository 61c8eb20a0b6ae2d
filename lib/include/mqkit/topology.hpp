// Topology: a whole mqkit layout in one YAML file (docs/topology.md): named
// endpoints, each with the address its device binds and the address services
// connect to, and the devices (proxy, streamer, forwarder) with their
// settings. Devices are started by `mqkit run FILE`; services find their
// endpoints through the same file:
//
//   auto topo = mqkit::Topology::load("topology.yaml");
//   mqkit::ReliableProducer orders(topo.endpoint("orders"));
//
// Loading validates everything: unknown keys, wrong types, missing required
// fields, duplicate names, bad durations/sizes/filters and endpoints bound by
// two devices are errors naming FILE:LINE:COLUMN and what is wrong.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mqkit/device_settings.hpp"

namespace mqkit {

struct TopologyEndpoint {
  std::string name;
  std::string bind;     // as the device binds it, e.g. tcp://*:5555
  std::string connect;  // as services connect, e.g. tcp://127.0.0.1:5555
};

// One device as the file describes it. A proxy's and a stream's settings are
// parsed through their description (device_settings.hpp); devices::make_device()
// adds the endpoints.
struct DeviceSpec {
  std::string name;
  std::string kind;  // "proxy", "stream", "streamer", "forwarder", "bridge"
  // role (front/back/in/out/stats; a bridge's from/to) -> endpoint name
  std::map<std::string, std::string> endpoints;
  ProxySettings proxy;    // kind "proxy"; paths absolute or from the file's directory
  StreamSettings stream;  // kind "stream"
  // bridge: reads `from` (role "from") as a `source` client, publishes to `to`
  std::string source;               // proxy, stream or forwarder
  std::string source_name;          // the group (proxy) or consumer name (stream) it reads as
  std::vector<std::string> topics;  // proxy group filters, forwarder topic prefixes
  std::string start = "earliest";   // stream: where a new consumer name starts
  // CURVE (every kind): the device's key pair file and its clients' allow-list.
  // A bridge's curve_key is its client key pair, used towards both sides.
  std::string curve_key, allow;
  // bridge: the public key of the CURVE device at `from` / `to` (a .pub or
  // .key file); taken from that device's curve_key when it is in this file.
  std::string from_server_key, to_server_key;
  int line = 0;  // where it is declared (1-based)
};

class Topology {
 public:
  // Throws Error(bad_argument) "FILE:LINE:COLUMN: what is wrong", or
  // Error(io) when the file cannot be read.
  static Topology load(const std::string& path);
  // The same for YAML text; `source` names it in messages, relative paths are
  // taken from `base_dir`.
  static Topology parse(std::string_view yaml, const std::string& source,
                        const std::string& base_dir = ".");

  // The address services connect to. Throws Error(bad_argument) naming the
  // endpoints there are.
  std::string endpoint(const std::string& name) const;
  const TopologyEndpoint& endpoint_info(const std::string& name) const;
  const std::map<std::string, TopologyEndpoint>& endpoints() const noexcept { return endpoints_; }
  const std::vector<DeviceSpec>& devices() const noexcept { return devices_; }
  const std::string& source() const noexcept { return source_; }

 private:
  std::string source_;
  std::map<std::string, TopologyEndpoint> endpoints_;
  std::vector<DeviceSpec> devices_;
  friend class TopologyParser;
};

}  // namespace mqkit
