// The proxy's settings: the one table behind `mqkit proxy`'s flags and a
// topology file's proxy keys.
#include <algorithm>

#include "mqkit/error.hpp"
#include "settings/setting_rows.hpp"

namespace mqkit {

const SettingsDescription<ProxySettings>& proxy_settings() {
  using detail::count_row;
  using detail::directory_row;
  using detail::duration_row;
  using detail::size_row;
  using T = ProxySettings;
  static const SettingsDescription<T> description{
      .settings =
          {
              directory_row<T>(
                  "spool", "Spool directory (created if missing)",
                  [](auto& t) -> auto& { return t.spool_dir; }, true),
              directory_row<T>(
                  "dlq", "Dead-letter spool directory (default: SPOOL.dlq)",
                  [](auto& t) -> auto& { return t.dlq_dir; }),
              detail::fsync_row<T>(
                  "always | interval=DUR | never", [](auto& t) -> auto& { return t.spool; }),
              {.key = "max_attempts",
               .help = "Deliveries before a message is dead-lettered",
               .value_name = "N",
               .apply =
                   [](T& t, const std::string& v) {
                     t.retry.max_attempts = static_cast<std::uint32_t>(
                         std::min<std::uint64_t>(detail::parse_positive_integer(v), 1000000));
                   },
               .show = [](const T& t) { return std::to_string(t.retry.max_attempts); }},
              duration_row<T>(
                  "ack_timeout", "Redeliver when no ack comes in this time",
                  [](auto& t) -> auto& { return t.ack_timeout; }),
              {.key = "backoff",
               .help = "fixed:DUR or exponential:DUR..DUR",
               .value_name = "POLICY",
               .apply =
                   [](T& t, const std::string& v) {
                     t.retry = RetryPolicy::parse(v, t.retry.max_attempts);
                   },
               .show = [](const T& t) { return t.retry.to_string(); }},
              size_row<T>(
                  "max_spool", "Spool size limit; past it publishes get 'full'",
                  [](auto& t) -> auto& { return t.spool.max_size; }),
              size_row<T>(
                  "max_dlq",
                  "Dead-letter spool size limit (default none, not --max-spool's); past "
                  "it a message that used its attempts stays pending and is tried again "
                  "after the retry delay",
                  [](auto& t) -> auto& { return t.dlq_max_size; }),
              {.key = "segment_size",
               .help = "Spool segment file size (default 64MiB, or --max-spool/8); space is "
                       "freed a segment at a time",
               .value_name = "SIZE",
               .apply =
                   [](T& t, const std::string& v) {
                     t.spool.segment_size = detail::parse_segment_size(v);
                   },
               .show = {}},
              {.key = "groups",
               .flag = "--group",
               .help = "Declare a group: NAME=FILTER[,FILTER] (repeatable)",
               .value_name = "NAME=FILTER",
               .form = SettingForm::named_list,
               .apply =
                   [](T& t, const std::string& v) {
                     auto [name, filters] = detail::parse_group(v);
                     t.groups[name] = std::move(filters);
                   },
               .show = {}},
              {.key = "group_settings",
               .flag = "--group-setting",
               .help = "A group's own setting, NAME.KEY=VALUE, for a group declared with "
                       "--group; KEY is max_attempts, ack_timeout or backoff, VALUE as for "
                       "the proxy's flag of that name; unset keys follow the proxy's "
                       "(repeatable; kept with the group across restarts)",
               .value_name = "NAME.KEY=VALUE",
               .form = SettingForm::group_setting,
               .apply =
                   [](T& t, const std::string& v) {
                     const auto eq = v.find('=');
                     const auto dot = v.rfind('.', eq);
                     if (eq == std::string::npos || dot == std::string::npos || dot == 0)
                       throw Error(
                           errc::bad_argument,
                           "'" + v + "' must be NAME.KEY=VALUE, e.g. billing.max_attempts=5");
                     const std::string name = v.substr(0, dot);
                     detail::check_group_name(name);
                     t.group_settings[name].set(v.substr(dot + 1, eq - dot - 1), v.substr(eq + 1));
                   },
               .show = {}},
              duration_row<T>(
                  "heartbeat",
                  "Heartbeat interval with workers; a worker silent for 5 is lost and "
                  "its messages redelivered",
                  [](auto& t) -> auto& { return t.heartbeat; }),
              count_row<T>(
                  "dedup_window", "Recent message ids remembered to answer re-sends 'duplicate'",
                  [](auto& t) -> auto& { return t.dedup_window; }),
          },
      .finish =
          [](T& t, const std::set<std::string>& given) {
            for (const auto& [name, settings] : t.group_settings)
              if (!t.groups.contains(name))
                throw Error(errc::bad_argument,
                            "group '" + name +
                                "' has settings of its own but is not declared: declare it "
                                "(NAME=FILTER) where its settings are given");
            // Space comes back a whole segment at a time: keep segments well
            // below the limit so that acks can free it.
            if (!given.contains("segment_size") && t.spool.max_size > 0)
              t.spool.segment_size =
                  std::clamp<std::uint64_t>(t.spool.max_size / 8, 64 * 1024, t.spool.segment_size);
          },
  };
  return description;
}

}  // namespace mqkit
