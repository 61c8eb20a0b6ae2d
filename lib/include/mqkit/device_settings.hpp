// Device settings: what a user tunes on the proxy and the stream devices,
// with the defaults (the members' initializers, and nowhere else), and one
// description per device (key, help, how a value is parsed, where it lands)
// that the CLI's flags and topology files both go through. Adding a setting
// means a member here and a row in that device's table.
//
// The structs live in the library, beside Topology, because a topology file
// is validated when it loads; devices::ProxyOptions and StreamOptions extend
// them with endpoints and sockets.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "mqkit/retry_policy.hpp"
#include "mqkit/spool.hpp"
#include "mqkit/stream_log.hpp"

namespace mqkit {

// A consumer group's own settings: under the group in a topology file, or
// --group-setting NAME.KEY=VALUE on the CLI. What a group leaves unset
// follows the proxy's setting of that name. The GROUPS file keeps them, so
// a restart without them keeps them too.
struct GroupSettings {
  std::optional<std::uint32_t> max_attempts;
  std::optional<std::chrono::milliseconds> ack_timeout;
  std::optional<RetryPolicy> backoff;  // its max_attempts is max_attempts' business

  // The keys, in the order they are written.
  static const std::vector<std::string>& keys();
  // Sets one key from its text; throws Error(bad_argument) naming the key
  // and the accepted values.
  void set(const std::string& key, const std::string& value);
  // KEY=VALUE for each key set, in keys() order (no spaces inside a word).
  std::vector<std::string> words() const;

  // The effective settings, given the proxy's.
  RetryPolicy retry(const RetryPolicy& proxy) const;
  std::chrono::milliseconds ack_timeout_or(std::chrono::milliseconds proxy) const {
    return ack_timeout.value_or(proxy);
  }
  bool operator==(const GroupSettings& other) const { return words() == other.words(); }
};

struct ProxySettings {
  std::string spool_dir;
  std::string dlq_dir;  // default: spool_dir + ".dlq"
  SpoolOptions spool;
  RetryPolicy retry;
  std::chrono::milliseconds ack_timeout{30000};
  std::size_t dedup_window = 100000;                       // recent message ids remembered
  std::map<std::string, std::vector<std::string>> groups;  // declared groups and filters
  std::map<std::string, GroupSettings> group_settings;     // of declared groups only
  std::chrono::milliseconds heartbeat{1000};               // a worker silent for 5 of these is lost
  // The dead-letter spool's own size limit (0: none); the main spool's is
  // spool.max_size. A message the DLQ cannot take now stays pending and is
  // tried again after the retry delay.
  std::uint64_t dlq_max_size = 0;
};

struct StreamSettings {
  std::string dir;  // DIR/p0, DIR/p1, ...: one log per partition
  // 0: as many as DIR already has (1 for a new stream). A stream's partition
  // count is fixed once it holds records: keys would map elsewhere.
  std::uint32_t partitions = 0;
  StreamLogOptions log;
  std::chrono::milliseconds heartbeat{1000};  // a reader silent for 5 of these is lost
  std::size_t dedup_window = 100000;          // recent ids answered `duplicate`
};

enum class SettingForm {
  value,       // one value
  path,        // a directory; a topology file's relative paths are from its directory
  named_list,  // NAME=A[,B] once per name (the CLI, repeatable); a map in a topology file
  // NAME.KEY=VALUE (the CLI, repeatable); in a topology file, keys under a
  // named_list entry written as a map (a group with settings)
  group_setting,
};

template <typename Target>
struct Setting {
  std::string key;   // in a topology file; the CLI flag is --key with '-' for '_'
  std::string flag;  // when the CLI flag is not that
  std::string help;
  std::string value_name;  // for the CLI's help: DURATION, SIZE, ...
  SettingForm form = SettingForm::value;
  bool required = false;
  // Parses one value and lands it in the target. Throws Error(bad_argument)
  // saying what is wrong with the value, without naming the setting.
  std::function<void(Target&, const std::string&)> apply;
  // The default as it would be written, from a default target; empty when the
  // help says it in words.
  std::function<std::string(const Target&)> show;

  std::string flag_name() const;
};

template <typename Target>
struct SettingsDescription {
  std::vector<Setting<Target>> settings;
  // Runs once the given values are applied (`given` holds their keys): for
  // defaults that follow other settings.
  std::function<void(Target&, const std::set<std::string>& given)> finish;
};

const SettingsDescription<ProxySettings>& proxy_settings();
const SettingsDescription<StreamSettings>& stream_settings();

template <typename Target>
std::string Setting<Target>::flag_name() const {
  if (!flag.empty()) return flag;
  std::string name = "--" + key;
  for (auto& c : name)
    if (c == '_') c = '-';
  return name;
}

}  // namespace mqkit
