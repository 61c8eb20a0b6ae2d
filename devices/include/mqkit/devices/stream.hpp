// Stream: the durable, ordered, replayable log device
// (docs/stream-protocol.md). Producers connect DEALERs to `front` and
// PUBLISH exactly as to the proxy (the reliable producer works unchanged); a
// record is CONFIRMed once its partition's log holds it (one write and, with
// `always`, one fdatasync per partition per loop turn: group commit). A record
// with a key goes to the partition its key hashes to (FNV-1a 64 of the key,
// modulo the partition count), so one key's records keep their order;
// records without a key are spread round-robin.
//
// Readers connect DEALERs to `back` and SUBSCRIBE, alone or under a name,
// from `earliest`, `latest`, an offset, `P:N` positions or a time, with a
// credit window; records arrive in batches, in order per partition. A named
// reader's COMMITs are kept durably (DIR/consumers/NAME) and members of one
// name share the partitions, each read by one member at a time; a member
// that leaves, disconnects or stops heartbeating hands its partitions to the
// others, which resume from the committed positions (at-least-once).
//
// Retention deletes whole segments past `retain_bytes` or older than
// `retain_age`; a reader whose position fell off gets a NOTICE and goes on
// from the earliest retained record (counted as `position_resets`).
#pragma once

#include <cstdint>
#include <string>

#include "mqkit/device_settings.hpp"
#include "mqkit/devices/device.hpp"

namespace mqkit::devices {

// The settings (StreamSettings, device_settings.hpp: dir, partitions,
// retention, ...) and where the stream binds.
struct StreamOptions : StreamSettings {
  std::string front;  // bound, for producers
  std::string back;   // bound, for readers
  std::string stats;  // bound when not empty
  SocketOptions socket;
};

class Stream : public Device {
 public:
  // Opens (recovering) every partition and binds the endpoints. Throws Error
  // naming what failed (a directory owned by another process names its pid).
  explicit Stream(const StreamOptions& options);
};

// The partition a key goes to.
std::uint32_t partition_of_key(std::string_view key, std::uint32_t partitions) noexcept;

}  // namespace mqkit::devices
