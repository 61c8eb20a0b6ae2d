// Building blocks for the device settings tables: the parsers that more than
// one setting shares, and rows for the common kinds of value. A row's `field`
// is a generic lambda giving the member, `[](auto& t) -> auto& { return
// t.heartbeat; }`, so one row both lands a value and shows the default.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "mqkit/device_settings.hpp"
#include "mqkit/duration.hpp"

namespace mqkit::detail {

// Each throws Error(bad_argument) saying what is wrong with `text`.
std::uint64_t parse_positive_integer(const std::string& text);
std::chrono::milliseconds parse_positive_duration(const std::string& text);
std::uint64_t parse_segment_size(const std::string& text);  // at least 4KiB
// NAME=FILTER[,FILTER]: a group name and valid topic filters.
std::pair<std::string, std::vector<std::string>> parse_group(const std::string& text);
void check_group_name(const std::string& name);

std::string format_size(std::uint64_t bytes);  // 65536 -> 64KiB
std::string format_durability(Durability durability, std::chrono::milliseconds interval);

template <typename Target, typename Field>
Setting<Target> duration_row(std::string key, std::string help, Field field) {
  return {
      .key = std::move(key),
      .help = std::move(help),
      .value_name = "DURATION",
      .apply = [field](Target& t, const std::string& v) { field(t) = parse_positive_duration(v); },
      .show =
          [field](const Target& t) {
            return field(t).count() > 0 ? format_duration(field(t)) : std::string();
          }};
}

template <typename Target, typename Field>
Setting<Target> size_row(std::string key, std::string help, Field field) {
  return {.key = std::move(key),
          .help = std::move(help),
          .value_name = "SIZE",
          .apply = [field](Target& t, const std::string& v) { field(t) = parse_size(v); },
          .show =
              [field](const Target& t) {
                return field(t) > 0 ? format_size(field(t)) : std::string();
              }};
}

template <typename Target, typename Field>
Setting<Target> count_row(std::string key, std::string help, Field field) {
  return {.key = std::move(key),
          .help = std::move(help),
          .value_name = "N",
          .apply =
              [field](Target& t, const std::string& v) {
                field(t) =
                    static_cast<std::remove_cvref_t<decltype(field(t))>>(parse_positive_integer(v));
              },
          .show = [field](const Target& t) { return std::to_string(field(t)); }};
}

template <typename Target, typename Field>
Setting<Target> directory_row(std::string key, std::string help, Field field,
                              bool required = false) {
  return {.key = std::move(key),
          .help = std::move(help),
          .value_name = "DIR",
          .form = SettingForm::path,
          .required = required,
          .apply = [field](Target& t, const std::string& v) { field(t) = v; },
          .show = {}};
}

// always | never | interval=DUR, into a durability and an interval member.
template <typename Target, typename Options>
Setting<Target> fsync_row(std::string help, Options options) {
  return {.key = "fsync",
          .help = std::move(help),
          .value_name = "POLICY",
          .apply =
              [options](Target& t, const std::string& v) {
                SpoolOptions parsed;  // the spool's parser, shared by the stream's log
                parse_durability(v, parsed);
                options(t).durability = parsed.durability;
                options(t).sync_interval = parsed.sync_interval;
              },
          .show =
              [options](const Target& t) {
                return format_durability(options(t).durability, options(t).sync_interval);
              }};
}

}  // namespace mqkit::detail
