// Loading and validating a topology file with yaml-cpp. Every error carries
// the file, line and column of the node it is about.
#include "mqkit/topology.hpp"

#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "mqkit/device_settings.hpp"
#include "mqkit/error.hpp"
#include "settings/setting_rows.hpp"

namespace mqkit {
namespace fs = std::filesystem;

class TopologyParser {
 public:
  TopologyParser(std::string source, std::string base_dir)
      : source_(std::move(source)), base_dir_(std::move(base_dir)) {}

  Topology parse(std::string_view yaml) {
    YAML::Node root;
    try {
      root = YAML::Load(std::string(yaml));
    } catch (const YAML::ParserException& e) {
      throw Error(errc::bad_argument, source_ + ":" + std::to_string(e.mark.line + 1) + ":" +
                                          std::to_string(e.mark.column + 1) + ": " + e.msg);
    }
    topology_.source_ = source_;
    if (!root.IsDefined() || root.IsNull())
      throw Error(errc::bad_argument, source_ + ": the file is empty: it needs 'devices:'");
    check_map(root, "the top level", {"endpoints", "devices"});
    if (root["endpoints"]) read_endpoints(root["endpoints"]);
    if (!root["devices"]) fail(root, "the top level needs 'devices:' (a map of device names)");
    read_devices(root["devices"]);
    check_bridge_keys();
    return std::move(topology_);
  }

 private:
  [[noreturn]] void fail(const YAML::Node& at, const std::string& what) const {
    const auto mark = at.Mark();
    std::string where = source_;
    if (mark.line >= 0)
      where += ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
    throw Error(errc::bad_argument, where + ": " + what);
  }

  // A map whose keys are all known and none repeated.
  void check_map(const YAML::Node& node, const std::string& what,
                 const std::set<std::string>& known) const {
    if (!node.IsMap()) fail(node, what + " must be a map");
    std::set<std::string> seen;
    for (const auto& kv : node) {
      const auto key = kv.first.as<std::string>();
      if (!seen.insert(key).second) fail(kv.first, "'" + key + "' is given twice in " + what);
      if (!known.empty() && !known.contains(key)) {
        std::string list;
        for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
        fail(kv.first, "unknown key '" + key + "' in " + what + " (known: " + list + ")");
      }
    }
  }

  std::string text(const YAML::Node& node, const std::string& what) const {
    if (!node.IsScalar()) fail(node, what + " must be a string");
    return node.as<std::string>();
  }

  static std::string connect_address(const std::string& bind) {
    // tcp://*:5555 and tcp://0.0.0.0:5555 are reached on the loopback.
    for (const char* any : {"tcp://*:", "tcp://0.0.0.0:"})
      if (bind.starts_with(any)) return "tcp://127.0.0.1:" + bind.substr(std::string(any).size());
    return bind;
  }

  void check_address(const YAML::Node& at, const std::string& address,
                     const std::string& what) const {
    const bool known = address.starts_with("tcp://") || address.starts_with("ipc://") ||
                       address.starts_with("inproc://");
    if (!known)
      fail(at, what + " '" + address + "' is not an endpoint: use tcp://HOST:PORT or ipc://PATH");
    if (address.starts_with("tcp://")) {
      const auto colon = address.rfind(':');
      const std::string port = colon > 5 ? address.substr(colon + 1) : "";
      if (port.empty() || port.find_first_not_of("0123456789") != std::string::npos ||
          port.size() > 5 || std::stoul(port) == 0 || std::stoul(port) > 65535)
        fail(at,
             what + " '" + address + "' needs a fixed port (1-65535) so that services can find it");
    }
  }

  void add_endpoint(const YAML::Node& at, const std::string& name, const std::string& bind,
                    const std::string& connect) {
    check_address(at, bind, "endpoint '" + name + "' bind address");
    check_address(at, connect, "endpoint '" + name + "' connect address");
    if (!topology_.endpoints_.emplace(name, TopologyEndpoint{name, bind, connect}).second)
      fail(at, "endpoint name '" + name + "' is used twice");
  }

  void read_endpoints(const YAML::Node& node) {
    check_map(node, "'endpoints'", {});
    for (const auto& kv : node) {
      const auto name = kv.first.as<std::string>();
      const YAML::Node& value = kv.second;
      if (value.IsScalar()) {
        const auto bind = value.as<std::string>();
        add_endpoint(value, name, bind, connect_address(bind));
      } else if (value.IsMap()) {
        check_map(value, "endpoint '" + name + "'", {"bind", "connect"});
        if (!value["bind"]) fail(value, "endpoint '" + name + "' needs 'bind:'");
        const auto bind = text(value["bind"], "endpoint '" + name + "' bind");
        const auto connect = value["connect"]
                                 ? text(value["connect"], "endpoint '" + name + "' connect")
                                 : connect_address(bind);
        add_endpoint(value, name, bind, connect);
      } else {
        fail(value, "endpoint '" + name + "' must be an address or {bind: ..., connect: ...}");
      }
    }
  }

  // A device's endpoint: a name from 'endpoints', or an address that gets
  // the name DEVICE.ROLE.
  std::string device_endpoint(const YAML::Node& node, const std::string& device,
                              const std::string& role) {
    const auto value = text(node, "devices." + device + "." + role);
    if (value.find("://") == std::string::npos) {
      if (!topology_.endpoints_.contains(value)) {
        std::string names;
        for (const auto& [n, e] : topology_.endpoints_) names += (names.empty() ? "" : ", ") + n;
        fail(node, "devices." + device + "." + role + ": no endpoint named '" + value +
                       "' (endpoints: " + (names.empty() ? "none" : names) +
                       "; or give an address like tcp://*:5555)");
      }
      return value;
    }
    const std::string name = device + "." + role;
    add_endpoint(node, name, value, connect_address(value));
    return name;
  }

  std::string path(const YAML::Node& node, const std::string& what) const {
    const fs::path p = text(node, what);
    return (p.is_absolute() ? p : fs::path(base_dir_) / p).lexically_normal().string();
  }

  // "devices.p.max_attempts must be ...", "devices.p.fsync: 'x' is not ...".
  static std::string about(const std::string& what, const std::string& reason) {
    return what + (reason.starts_with("must ") ? " " : ": ") + reason;
  }

  // A proxy's or a stream's keys: the endpoint and CURVE keys every such
  // device has, and the settings of its description, applied as they are read.
  template <typename Target>
  void read_settings(const YAML::Node& spec, const std::string& device,
                     const SettingsDescription<Target>& description, Target& target) const {
    const std::string where = "devices." + device;
    std::set<std::string> known = {"kind", "front", "back", "stats", "curve_key", "allow"};
    // A group's own settings are keys under the group, not of the device.
    const Setting<Target>* group_setting = nullptr;
    for (const auto& s : description.settings)
      if (s.form == SettingForm::group_setting)
        group_setting = &s;
      else
        known.insert(s.key);
    check_map(spec, "device '" + device + "'", known);
    std::set<std::string> given;
    for (const auto& s : description.settings) {
      if (s.form == SettingForm::group_setting) continue;
      const YAML::Node node = spec[s.key];
      if (!node) {
        if (s.required)
          fail(spec, where + " needs '" + s.key + ":'" +
                         (s.form == SettingForm::path ? " (a directory)" : ""));
        continue;
      }
      const std::string what = where + "." + s.key;
      auto apply = [&](const YAML::Node& at, const std::string& about_what,
                       const std::string& value) {
        try {
          s.apply(target, value);
        } catch (const Error& e) {
          fail(at, about(about_what, e.what()));
        }
      };
      if (s.form == SettingForm::named_list) {
        // A map of name -> value or list of values: NAME=A,B as on the CLI.
        // (Groups are the one named list.)
        check_map(node, "'" + what + "'", {});
        for (const auto& kv : node) {
          const auto name = kv.first.as<std::string>();
          try {  // before joining: an '=' in the name would split it elsewhere
            detail::check_group_name(name);
          } catch (const Error& e) {
            fail(kv.first, e.what());
          }
          std::string values;
          const YAML::Node& entry = kv.second;
          if (entry.IsMap() && group_setting != nullptr) {
            // NAME: {topics: FILTERS, KEY: VALUE, ...}: a group with settings.
            std::set<std::string> keys(GroupSettings::keys().begin(), GroupSettings::keys().end());
            keys.insert("topics");
            check_map(entry, "group '" + name + "'", keys);
            if (!entry["topics"]) fail(entry, what + "." + name + " needs 'topics:' (its filters)");
            for (const auto& setting : entry) {
              const auto key = setting.first.as<std::string>();
              if (key == "topics") continue;
              const std::string about_key = what + "." + name + "." + key;
              const std::string given_value = text(setting.second, about_key);
              try {
                group_setting->apply(target, name + "." + key + "=" + given_value);
              } catch (const Error& e) {
                // The setting's message starts with its key: said once.
                std::string reason = e.what();
                if (reason.starts_with(key + ": ")) reason.erase(0, key.size() + 2);
                fail(setting.second, about(about_key, reason));
              }
            }
          }
          // A copy binds to the node (assigning a Node would change the document).
          const YAML::Node value = entry.IsMap() ? entry["topics"] : entry;
          if (value.IsScalar()) {
            values = value.as<std::string>();
          } else if (value.IsSequence() && value.size() > 0) {
            for (const auto& v : value)
              values += (values.empty() ? "" : ",") + text(v, what + "." + name + " filter");
          } else {
            fail(value, what + "." + name +
                            " must be a topic filter, a list of them, or a map of "
                            "topics: and the group's own settings");
          }
          apply(value, what + "." + name, name + "=" + values);
        }
      } else {
        apply(node, what, s.form == SettingForm::path ? path(node, what) : text(node, what));
      }
      given.insert(s.key);
    }
    if (description.finish) {
      try {
        description.finish(target, given);
      } catch (const Error& e) {
        fail(spec, about(where, e.what()));
      }
    }
  }

  // A bridge connects to its source and target (it binds only stats).
  void read_bridge(const YAML::Node& spec, DeviceSpec& d) {
    const std::string where = "devices." + d.name;
    check_map(spec, "device '" + d.name + "'",
              {"kind", "source", "from", "name", "topics", "start", "to", "stats", "curve_key",
               "from_server_key", "to_server_key"});
    if (spec["from_server_key"])
      d.from_server_key = path(spec["from_server_key"], where + ".from_server_key");
    if (spec["to_server_key"])
      d.to_server_key = path(spec["to_server_key"], where + ".to_server_key");
    bridges_.emplace_back(topology_.devices_.size(), spec);
    for (const char* key : {"source", "from", "to"})
      if (!spec[key]) fail(spec, where + " needs '" + key + ":'");
    d.source = text(spec["source"], where + ".source");
    if (d.source != "proxy" && d.source != "stream" && d.source != "forwarder")
      fail(spec["source"], where + ".source '" + d.source + "' is not proxy, stream or forwarder");
    if (spec["name"]) {
      d.source_name = text(spec["name"], where + ".name");
    } else if (d.source != "forwarder") {
      fail(spec, where + " needs 'name:' (the " +
                     (d.source == "proxy" ? std::string("group") : std::string("consumer name")) +
                     " it reads as)");
    }
    if (spec["topics"]) {
      const YAML::Node& topics = spec["topics"];
      if (topics.IsScalar()) {
        d.topics.push_back(topics.as<std::string>());
      } else if (topics.IsSequence()) {
        for (const auto& t : topics) d.topics.push_back(text(t, where + ".topics"));
      } else {
        fail(topics, where + ".topics must be a topic (filter) or a list of them");
      }
    }
    if (spec["start"]) d.start = text(spec["start"], where + ".start");
    for (const char* role : {"from", "to"}) {
      const auto value = text(spec[role], where + "." + role);
      if (value.find("://") == std::string::npos) {
        (void)device_endpoint(spec[role], d.name, role);  // checks the name exists
        d.endpoints[role] = value;
      } else {
        const std::string name = d.name + "." + role;
        add_endpoint(spec[role], name, value, value);
        d.endpoints[role] = name;
      }
    }
  }

  // The device (not a bridge) that binds the endpoint named `name`, if any.
  const DeviceSpec* binder_of(const std::string& name) const {
    for (const auto& d : topology_.devices_)
      if (d.kind != "bridge")
        for (const auto& [role, endpoint] : d.endpoints)
          if (endpoint == name && role != "stats") return &d;
    return nullptr;
  }

  // A bridge that connects to a CURVE device of this file needs a key pair
  // of its own (else it would never get through, and say nothing); it
  // learns that device's public key from the device's curve_key.
  void check_bridge_keys() {
    for (const auto& [index, spec] : bridges_) {
      DeviceSpec& b = topology_.devices_[index];
      const std::string where = "devices." + b.name;
      for (const char* role : {"from", "to"}) {
        std::string& server_key = std::string(role) == "from" ? b.from_server_key : b.to_server_key;
        const DeviceSpec* peer = binder_of(b.endpoints.at(role));
        if (server_key.empty() && peer != nullptr) server_key = peer->curve_key;
        if (server_key.empty() || !b.curve_key.empty()) continue;
        fail(spec[role],
             where + "." + role + ": " +
                 (peer != nullptr
                      ? "'" + b.endpoints.at(role) + "' is " + peer->name + "'s, a CURVE device"
                      : std::string("a server key is given")) +
                 ", so the bridge needs curve_key: a key pair from `mqkit keygen` whose public "
                 "key is on " +
                 (peer != nullptr ? peer->name + "'s" : std::string("that device's")) +
                 " allow list");
      }
      if (!b.curve_key.empty() && b.from_server_key.empty() && b.to_server_key.empty())
        fail(spec["curve_key"],
             where +
                 ".curve_key: neither side of the bridge is a CURVE device (for one outside "
                 "this file, give from_server_key or to_server_key: its public key)");
    }
  }

  void read_devices(const YAML::Node& node) {
    check_map(node, "'devices'", {});
    if (node.size() == 0) fail(node, "'devices' is empty: describe at least one device");
    std::map<std::string, std::string> bound_by;  // bind address -> device
    for (const auto& kv : node) {
      DeviceSpec d;
      d.name = kv.first.as<std::string>();
      d.line = kv.first.Mark().line + 1;
      const YAML::Node& spec = kv.second;
      const std::string where = "devices." + d.name;
      if (!spec.IsMap()) fail(spec, where + " must be a map with 'kind:'");
      if (!spec["kind"])
        fail(spec, where + " needs 'kind:' (proxy, stream, streamer, forwarder or bridge)");
      d.kind = text(spec["kind"], where + ".kind");
      std::vector<std::string> roles;
      if (d.kind == "proxy") {
        read_settings(spec, d.name, proxy_settings(), d.proxy);
        roles = {"front", "back"};
      } else if (d.kind == "stream") {
        read_settings(spec, d.name, stream_settings(), d.stream);
        roles = {"front", "back"};
      } else if (d.kind == "bridge") {
        read_bridge(spec, d);
      } else if (d.kind == "streamer" || d.kind == "forwarder") {
        check_map(spec, "device '" + d.name + "'",
                  {"kind", "in", "out", "stats", "curve_key", "allow"});
        roles = {"in", "out"};
      } else {
        fail(spec["kind"], where + ".kind '" + d.kind +
                               "' is not a device: use proxy, stream, streamer, forwarder "
                               "or bridge");
      }
      for (const auto& role : roles)
        if (!spec[role]) fail(spec, where + " needs '" + role + ":' (an endpoint)");
      if (spec["curve_key"]) d.curve_key = path(spec["curve_key"], where + ".curve_key");
      if (spec["allow"]) d.allow = path(spec["allow"], where + ".allow");
      if (d.kind != "bridge" && d.curve_key.empty() != d.allow.empty())
        fail(spec, where +
                       ": curve_key and allow go together (the device's key pair and the "
                       "clients it lets in)");
      roles.push_back("stats");
      for (const auto& role : roles) {
        if (!spec[role]) continue;
        const auto name = device_endpoint(spec[role], d.name, role);
        const auto& bind = topology_.endpoints_.at(name).bind;
        if (auto [it, fresh] = bound_by.emplace(bind, d.name + "." + role); !fresh)
          fail(spec[role],
               where + "." + role + " binds " + bind + ", which " + it->second + " binds already");
        d.endpoints[role] = name;
      }
      topology_.devices_.push_back(std::move(d));
    }
  }

  std::string source_, base_dir_;
  Topology topology_;
  std::vector<std::pair<std::size_t, YAML::Node>> bridges_;  // index in devices_, its YAML
};

Topology Topology::load(const std::string& path) {
  std::ifstream in(path);
  if (!in)
    throw Error(std::error_code(errno, std::system_category()),
                "cannot read topology file " + path + ": " + std::strerror(errno));
  std::stringstream text;
  text << in.rdbuf();
  const fs::path dir = fs::absolute(fs::path(path)).parent_path();
  return parse(text.str(), path, dir.string());
}

Topology Topology::parse(std::string_view yaml, const std::string& source,
                         const std::string& base_dir) {
  try {
    return TopologyParser(source, base_dir).parse(yaml);
  } catch (const YAML::Exception& e) {  // a conversion the checks above did not foresee
    throw Error(errc::bad_argument, source + ":" + std::to_string(e.mark.line + 1) + ":" +
                                        std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
}

const TopologyEndpoint& Topology::endpoint_info(const std::string& name) const {
  auto it = endpoints_.find(name);
  if (it == endpoints_.end()) {
    std::string names;
    for (const auto& [n, e] : endpoints_) names += (names.empty() ? "" : ", ") + n;
    throw Error(errc::bad_argument,
                source_ + " has no endpoint named '" + name + "' (it has: " + names + ")");
  }
  return it->second;
}

std::string Topology::endpoint(const std::string& name) const {
  return endpoint_info(name).connect;
}

}  // namespace mqkit
