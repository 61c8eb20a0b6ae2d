// A consumer group's own settings: parsing one key, writing them back as
// KEY=VALUE words (the GROUPS file, `group ls`), and the effective policy.
#include <algorithm>

#include "mqkit/device_settings.hpp"
#include "mqkit/error.hpp"
#include "settings/setting_rows.hpp"

namespace mqkit {

const std::vector<std::string>& GroupSettings::keys() {
  static const std::vector<std::string> names = {"max_attempts", "ack_timeout", "backoff"};
  return names;
}

void GroupSettings::set(const std::string& key, const std::string& value) {
  try {
    if (key == "max_attempts") {
      max_attempts = static_cast<std::uint32_t>(
          std::min<std::uint64_t>(detail::parse_positive_integer(value), 1000000));
    } else if (key == "ack_timeout") {
      ack_timeout = detail::parse_positive_duration(value);
    } else if (key == "backoff") {
      backoff = RetryPolicy::parse(value);
    } else {
      std::string known;
      for (const auto& k : keys()) known += (known.empty() ? "" : ", ") + k;
      throw Error(errc::bad_argument,
                  "'" + key + "' is not a group setting (a group may set " + known + ")");
    }
  } catch (const Error& e) {
    const std::string what = e.what();
    if (what.starts_with("'" + key + "' is not")) throw;
    throw Error(errc::bad_argument, key + ": " + what);
  }
}

std::vector<std::string> GroupSettings::words() const {
  std::vector<std::string> out;
  if (max_attempts) out.push_back("max_attempts=" + std::to_string(*max_attempts));
  if (ack_timeout) out.push_back("ack_timeout=" + format_duration(*ack_timeout));
  if (backoff) out.push_back("backoff=" + backoff->to_string());
  return out;
}

RetryPolicy GroupSettings::retry(const RetryPolicy& proxy) const {
  RetryPolicy policy = backoff.value_or(proxy);
  policy.max_attempts = max_attempts.value_or(proxy.max_attempts);
  return policy;
}

}  // namespace mqkit
