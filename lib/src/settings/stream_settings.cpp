// The stream's settings: the one table behind `mqkit stream`'s flags and a
// topology file's stream keys.
#include "mqkit/error.hpp"
#include "settings/setting_rows.hpp"

namespace mqkit {

const SettingsDescription<StreamSettings>& stream_settings() {
  using detail::count_row;
  using detail::duration_row;
  using detail::size_row;
  using T = StreamSettings;
  static const SettingsDescription<T> description{
      .settings =
          {
              detail::directory_row<T>(
                  "dir", "Directory of the stream's logs (created if missing)",
                  [](auto& t) -> auto& { return t.dir; }, true),
              {.key = "partitions",
               .help = "Partitions (default: as DIR has, 1 for a new stream); a record's key "
                       "picks its partition",
               .value_name = "1..1024",
               .apply =
                   [](T& t, const std::string& v) {
                     const auto n = detail::parse_positive_integer(v);
                     if (n > 1024) throw Error(errc::bad_argument, "must be 1..1024");
                     t.partitions = static_cast<std::uint32_t>(n);
                   },
               .show = {}},
              size_row<T>(
                  "retain_bytes",
                  "Delete the oldest whole segments past this size per partition, e.g. "
                  "10GiB",
                  [](auto& t) -> auto& { return t.log.retain_bytes; }),
              duration_row<T>(
                  "retain_age",
                  "Delete whole segments whose records are all older than this, e.g. "
                  "7d",
                  [](auto& t) -> auto& { return t.log.retain_age; }),
              {.key = "segment_size",
               .help = "Log segment file size; retention deletes whole segments",
               .value_name = "SIZE",
               .apply =
                   [](T& t, const std::string& v) {
                     t.log.segment_size = detail::parse_segment_size(v);
                   },
               .show = [](const T& t) { return detail::format_size(t.log.segment_size); }},
              detail::fsync_row<T>(
                  "always (one fdatasync per partition per batch of appends) | interval=DUR "
                  "(confirm after the write, fdatasync at least every DUR, e.g. interval=10ms) | "
                  "never",
                  [](auto& t) -> auto& { return t.log; }),
              duration_row<T>(
                  "heartbeat",
                  "Heartbeat interval with readers; a reader silent for 5 is lost and "
                  "its partitions go to its name's other members",
                  [](auto& t) -> auto& { return t.heartbeat; }),
              count_row<T>(
                  "dedup_window", "Recent record ids remembered to answer re-sends 'duplicate'",
                  [](auto& t) -> auto& { return t.dedup_window; }),
          },
      .finish = {},
  };
  return description;
}

}  // namespace mqkit
