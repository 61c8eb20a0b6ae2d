// StreamConsumer: a reader of a stream device (a DEALER to its back,
// docs/stream-protocol.md). SUBSCRIBEs alone or under a consumer name, from
// a start position, with a credit window; calls the handler for every record
// in order per partition and COMMITs what the handler finished (in batches),
// so a named consumer that restarts resumes after the last record it
// processed, at least once. Heartbeats the device, and subscribes again by
// itself when the device restarts (an unnamed reader from where it was).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "mqkit/envelope.hpp"
#include "mqkit/socket_options.hpp"

namespace mqkit {

struct StreamEntry {
  std::uint32_t partition = 0;
  std::uint64_t offset = 0;
  std::uint64_t time_ms = 0;  // append time, ms since the Unix epoch
  Message message;
};

struct StreamConsumerOptions {
  std::string name;  // empty: read alone, every partition; else share them with the name's members
  // earliest | latest | N (every partition) | P:N[,P:N...] | an RFC 3339 time
  // (2026-11-28T10:00:00Z) | a time relative to now (-10m). A named consumer
  // starts here only on partitions the name has no committed position for.
  std::string from = "earliest";
  std::uint32_t window = 1000;  // records delivered and not yet committed
  SocketOptions socket;
};

// Turns a user's start position into the form SUBSCRIBE carries (times
// become @MS). Throws Error(bad_argument) saying which forms are accepted.
std::string stream_start_position(std::string_view from);

class StreamConsumer {
 public:
  using Handler = std::function<void(const StreamEntry&)>;
  // partition, the offset reading goes on from, why (e.g. retention).
  using NoticeHandler =
      std::function<void(std::uint32_t partition, std::uint64_t offset, const std::string& why)>;

  // Throws Error when the device refuses the subscription (e.g. an offset
  // past the end) or does not answer within `subscribe_timeout`.
  StreamConsumer(const std::string& stream_back, const StreamConsumerOptions& options,
                 std::chrono::milliseconds subscribe_timeout = std::chrono::seconds(10));
  ~StreamConsumer();  // commits what was handled and DETACHes
  StreamConsumer(StreamConsumer&&) noexcept;
  StreamConsumer& operator=(StreamConsumer&&) noexcept;

  // Runs until stop() or a process-wide stop. A record is committed once the
  // handler returns; an exception from the handler commits the records
  // before it and leaves run() (the record is read again next time).
  void run(const Handler& handler);
  void stop() noexcept;  // any thread
  void on_notice(NoticeHandler handler);
  // Runs on the run() thread before each COMMIT. For handlers whose work
  // completes later (a bridge waits here for the target's confirms): an
  // exception from it commits nothing and leaves run() with it.
  void on_before_commit(std::function<void()> hook);
  // The partitions this consumer reads now.
  std::vector<std::uint32_t> partitions() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mqkit
