// Redelivery: what brings a message back after a failed delivery. It owns
// the ack deadlines, the retry timers, the failure histories' ATTEMPT
// records, dead-lettering (into the DLQ, then settling the original), and
// messages whose stored frame does not read back. A failure is retried
// after the retry policy's delay, or dead-lettered once its attempts are
// spent; the message is never handed out again before its failure is
// durable.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "detail/counter.hpp"
#include "mqkit/devices/proxy.hpp"
#include "mqkit/spool.hpp"
#include "proxy/completions.hpp"
#include "proxy/frame_cache.hpp"
#include "proxy/group.hpp"

namespace mqkit::devices::detail {

class Groups;
class Workers;

// A stored frame that did not read back is tried again this much later.
constexpr std::chrono::milliseconds kUnreadableRetryEvery{1000};

class Redelivery {
 public:
  // All references outlive this. Each group has its own retry policy and
  // ack timeout (ConsumerGroup).
  Redelivery(Groups& groups, Workers& workers, Spool& spool, Spool& dlq, FrameCache& frames,
             Completions& completions)
      : groups_(groups),
        workers_(workers),
        spool_(spool),
        dlq_(dlq),
        frames_(frames),
        completions_(completions) {}
  Redelivery(const Redelivery&) = delete;
  Redelivery& operator=(const Redelivery&) = delete;

  // The delivery of `id` in group `index` times out at `at` (a group's ack
  // timeout is one constant, so its deadlines come in order).
  void expect(Clock::time_point at, std::uint32_t index, const MessageId& id) {
    if (index >= deadlines_.size()) deadlines_.resize(index + 1);
    deadlines_[index].push_back({at, id});
  }
  // The earlier of `next` and the first timer due.
  Clock::time_point next_due(Clock::time_point next) const {
    if (!retries_.empty()) next = std::min(next, retries_.begin()->first);
    for (const auto& group : deadlines_)
      if (!group.empty()) next = std::min(next, group.front().at);
    return next;
  }
  // Expired deadlines fail their deliveries; due retries go back to ready.
  void run_timers(Clock::time_point now);

  // The attempt number of the message's next delivery in the group.
  static std::uint32_t attempt(const ConsumerGroup& g, const MessageId& id) {
    auto h = g.failures.find(id);
    return h == g.failures.end() ? 1 : h->second.attempts + 1;
  }

  // A failed delivery (its in-flight entry already removed): retry after the
  // policy's delay, or dead-letter once the attempts are spent.
  void fail(std::uint32_t index, const MessageId& id, const std::string& error);
  // Copies the message into the dead-letter spool and, once that is durable,
  // settles it in the main spool (a crash in between redelivers, never loses).
  void dead_letter(std::uint32_t index, const MessageId& id, const std::string& reason,
                   const std::string& error, bool delivery_failed);
  void attempt_done(const AttemptDone& d);
  void dead_letter_done(const DeadLetterDone& d);

  // The message was settled for the group (acked): its failures are forgotten.
  void settled(ConsumerGroup& g, const MessageId& id) {
    g.failures.erase(id);
    g.attempt_unrecorded.erase(id);
  }
  // Takes the message's retry timer in group `index`; false if it has none.
  // Rare (a late ack), so searched for.
  bool cancel_retry(std::uint32_t index, ConsumerGroup& g, const MessageId& id);
  // The group is being deleted: its retry timers go, their ids appended to `ids`.
  void drop_group(std::uint32_t index, std::vector<MessageId>& ids);

  // The message's frame; nullopt when its stored record no longer reads
  // back (damaged on disk).
  std::optional<std::string> frame_of(const MessageId& id);
  // A message whose stored frame cannot be read stays pending (never
  // delivered or dead-lettered empty): counted, said once on stderr, and
  // read again after a while.
  void keep_unreadable(std::uint32_t index, const MessageId& id);
  // A message that left a group: it need not be remembered as said (a
  // message unreadable in two groups may be said once more; the set stays
  // as small as what is damaged and still pending).
  void forget_unreadable(const MessageId& id) {
    if (!unreadable_said_.empty()) unreadable_said_.erase(id);
  }

  std::uint64_t retried() const noexcept { return retried_.get(); }
  std::uint64_t dead() const noexcept { return dead_.get(); }
  std::uint64_t dead_letter_failed() const noexcept { return dead_letter_failed_.get(); }
  std::uint64_t unreadable() const noexcept { return unreadable_.get(); }

 private:
  // An ack deadline; stale once the delivery was settled or its deadline moved.
  struct Deadline {
    Clock::time_point at;
    MessageId id;
  };

  // Writes the group's failure history of the message; the retry timer
  // does not hand the message out again until this is durable.
  void record_attempt(std::uint32_t index, const MessageId& id);

  Groups& groups_;
  Workers& workers_;
  Spool& spool_;
  Spool& dlq_;
  FrameCache& frames_;
  Completions& completions_;

  std::vector<std::deque<Deadline>> deadlines_;  // per group slot, each in deadline order
  std::multimap<Clock::time_point, std::pair<std::uint32_t, MessageId>> retries_;
  std::mt19937_64 rng_{std::random_device{}()};
  std::unordered_set<MessageId> unreadable_said_;  // said once on stderr
  mqkit::detail::Counter retried_, dead_, dead_letter_failed_, unreadable_;
};

}  // namespace mqkit::devices::detail
