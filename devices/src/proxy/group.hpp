// ConsumerGroup: one group's share of the proxy's state. Every message the
// group's filters match is, for this group, in exactly one place: `scheduled`
// (its not_before time is still ahead), `ready` (waiting for a worker),
// `in_flight` (delivered, waiting for its ack) or waiting out a retry delay
// (counted in `retrying`). `failures` remembers
// failed deliveries of messages still pending, for attempt numbers and
// dead letters. Its settings are its own where it sets them, the proxy's
// elsewhere (resolved once, when the group is made or recovered).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>
#include <vector>

#include "detail/id_table.hpp"
#include "mqkit/device_settings.hpp"
#include "mqkit/message_id.hpp"
#include "mqkit/spool.hpp"
#include "mqkit/topic_filter.hpp"
#include "proxy/schedule.hpp"

namespace mqkit::devices::detail {

using Clock = std::chrono::steady_clock;

struct Delivery {
  std::string worker;  // ROUTER identity
  Clock::time_point deadline;
  // False once the worker said (IN_PROGRESS) that it holds the message and
  // has not started it: losing the worker then costs it no attempt.
  bool started = true;
  std::uint32_t bytes = 0;  // of the frame sent: what the worker's budget is charged
};

// A group's failed deliveries of a message: what the spool's ATTEMPT records keep.
using FailureHistory = DeliveryHistory;

struct ConsumerGroup {
  std::string name;
  std::vector<TopicFilter> filters;
  GroupSettings settings;  // what the group sets itself (kept in GROUPS)
  RetryPolicy retry;       // effective: its settings over the proxy's
  std::chrono::milliseconds ack_timeout{30000};
  bool paused = false;  // stored, not delivered; in-flight deliveries finish
  Schedule scheduled;
  std::deque<MessageId> ready;
  // Open addressing, no node per delivery: one insert and one erase per
  // message on the proxy's hot path.
  mqkit::detail::IdTable<Delivery> in_flight;
  std::unordered_map<MessageId, FailureHistory> failures;
  // Failures whose ATTEMPT record is not durable yet: the message is not
  // delivered again before it is (a restart would otherwise hand out a lower
  // attempt number than a worker saw). True: a write of it is under way.
  std::unordered_map<MessageId, bool> attempt_unrecorded;
  std::size_t retrying = 0;
  std::size_t dying = 0;             // on their way into the dead-letter spool
  std::vector<std::string> workers;  // served round-robin
  std::size_t next_worker = 0;
  std::uint64_t delivered = 0, acked = 0, retried = 0, dead = 0;

  bool matches(std::string_view topic) const {
    for (const auto& f : filters)
      if (f.matches(topic)) return true;
    return false;
  }
  std::size_t pending() const noexcept {
    return scheduled.size() + ready.size() + in_flight.size() + retrying + dying;
  }
  std::vector<std::string> patterns() const {
    std::vector<std::string> out;
    for (const auto& f : filters) out.push_back(f.pattern());
    return out;
  }
};

}  // namespace mqkit::devices::detail
