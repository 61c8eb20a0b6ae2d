// Redelivery: failures, retries, ack deadlines, dead letters and unreadable
// frames.
#include "proxy/redelivery.hpp"

#include <algorithm>
#include <cstdio>

#include "detail/wall_clock.hpp"
#include "proxy/groups.hpp"
#include "proxy/workers.hpp"

namespace mqkit::devices::detail {

using mqkit::detail::now_ms;

void Redelivery::run_timers(Clock::time_point now) {
  for (std::uint32_t index = 0; index < deadlines_.size(); ++index) {
    auto& due = deadlines_[index];
    while (!due.empty() && due.front().at <= now) {
      const Deadline d = due.front();
      due.pop_front();
      ConsumerGroup* g = groups_.at(index);
      if (g == nullptr) continue;
      auto it = g->in_flight.find(d.id);
      if (it == g->in_flight.end() || it->second.deadline != d.at) continue;  // stale
      workers_.timed_out(it->second.worker, it->second.bytes);
      g->in_flight.erase(it);
      fail(index, d.id, "ack timeout");
    }
  }
  while (!retries_.empty() && retries_.begin()->first <= now) {
    const auto [index, id] = retries_.begin()->second;
    retries_.erase(retries_.begin());
    ConsumerGroup* g = groups_.at(index);
    if (g == nullptr) continue;
    if (auto a = g->attempt_unrecorded.find(id); a != g->attempt_unrecorded.end()) {
      // Its failure is not on disk yet: wait for it, writing it again if
      // that failed.
      if (!a->second) record_attempt(index, id);
      // Never "now" (a zero retry delay): the record's completion is taken
      // on this thread, between turns.
      retries_.emplace(now + std::max<std::chrono::milliseconds>(g->retry.delay(1, rng_),
                                                                 std::chrono::milliseconds(10)),
                       std::pair{index, id});
      continue;
    }
    --g->retrying;
    g->ready.push_front(id);
  }
}

void Redelivery::fail(std::uint32_t index, const MessageId& id, const std::string& error) {
  ConsumerGroup& g = groups_[index];
  FailureHistory& h = g.failures[id];
  ++h.attempts;
  if (h.first_failure_ms == 0) h.first_failure_ms = now_ms();
  h.last_error = error;
  if (g.retry.exhausted(h.attempts)) {
    dead_letter(index, id, "max attempts", error, /*delivery_failed=*/false);
    return;
  }
  record_attempt(index, id);
  retried_.add();
  ++g.retried;
  ++g.retrying;
  retries_.emplace(Clock::now() + g.retry.delay(h.attempts, rng_), std::pair{index, id});
}

void Redelivery::record_attempt(std::uint32_t index, const MessageId& id) {
  ConsumerGroup& g = groups_[index];
  g.attempt_unrecorded[id] = true;
  // Captures what it reaches, not `this`: a spool's destructor completes
  // what is still queued, after this object is gone.
  spool_.record_attempt(id, g.name, g.failures[id],
                        [completions = &completions_, index, id](AppendResult r) {
                          completions->attempt({index, id, r});
                        });
}

void Redelivery::attempt_done(const AttemptDone& d) {
  ConsumerGroup* g = groups_.at(d.group);
  if (g == nullptr) return;
  auto it = g->attempt_unrecorded.find(d.id);
  if (it == g->attempt_unrecorded.end()) return;  // settled meanwhile
  if (d.result)
    g->attempt_unrecorded.erase(it);
  else
    it->second = false;  // written again when its retry comes due
}

void Redelivery::dead_letter(std::uint32_t index, const MessageId& id, const std::string& reason,
                             const std::string& error, bool delivery_failed) {
  ConsumerGroup& g = groups_[index];
  FailureHistory h = g.failures[id];
  g.failures.erase(id);
  g.attempt_unrecorded.erase(id);
  const std::uint64_t now = now_ms();
  if (delivery_failed) ++h.attempts;  // the delivery that was nacked dead
  DeadLetterInfo info{g.name,     reason,
                      h.attempts, h.first_failure_ms == 0 ? now : h.first_failure_ms,
                      now,        error.empty() ? h.last_error : error};
  const auto frame = frame_of(id);
  if (!frame) {  // never an empty dead letter (whose DEAD would settle the original)
    g.failures[id] = h;
    // The failure that brought it here is counted: on disk too, before
    // it is handed out again (a restart must not give a lower attempt).
    record_attempt(index, id);
    keep_unreadable(index, id);
    return;
  }
  ++g.dying;
  // Captures the main spool and the completions, not `this` (see
  // record_attempt); the main spool is destroyed after the DLQ.
  dlq_.add_dead_letter(
      id, *frame, info,
      [spool = &spool_, completions = &completions_, index, id, h, info](AppendResult r) {
        if (r) spool->dead(id, info.group, info.reason, info.attempts, info.last_error, nullptr);
        completions->dead_letter({index, id, h, info, r});
      });
}

// The DLQ took the message (it is settled for the group), or could not:
// then it stays pending and waits out the retry delay, to be delivered
// and, failing again, dead-lettered again; never lost in between.
void Redelivery::dead_letter_done(const DeadLetterDone& d) {
  ConsumerGroup* g = groups_.at(d.group);
  if (g == nullptr) {  // deleted meanwhile: done with it
    frames_.release(d.id);
    return;
  }
  --g->dying;
  if (d.result) {
    dead_.add();
    ++g->dead;
    frames_.release(d.id);
    return;
  }
  dead_letter_failed_.add();
  g->failures[d.id] = d.history;  // its next failure dead-letters it again
  // The failed delivery that led here (a NACK dead, or the last attempt)
  // counts: its ATTEMPT record is written, and the retry timer does not
  // hand the message out again before it is durable, so that a restart
  // never delivers it with a lower attempt number than the next one here.
  record_attempt(d.group, d.id);
  ++g->retrying;
  retries_.emplace(
      Clock::now() + g->retry.delay(std::max<std::uint32_t>(d.history.attempts, 1), rng_),
      std::pair{d.group, d.id});
}

bool Redelivery::cancel_retry(std::uint32_t index, ConsumerGroup& g, const MessageId& id) {
  for (auto r = retries_.begin(); r != retries_.end(); ++r)
    if (r->second.first == index && r->second.second == id) {
      retries_.erase(r);
      --g.retrying;
      return true;
    }
  return false;
}

void Redelivery::drop_group(std::uint32_t index, std::vector<MessageId>& ids) {
  if (index < deadlines_.size()) deadlines_[index] = {};  // all stale now
  for (auto it = retries_.begin(); it != retries_.end();) {
    if (it->second.first == index) {
      ids.push_back(it->second.second);
      it = retries_.erase(it);
    } else {
      ++it;
    }
  }
}

std::optional<std::string> Redelivery::frame_of(const MessageId& id) {
  if (const auto kept = frames_.frame(id); !kept.empty()) return std::string(kept);
  auto stored = spool_.read(id);
  if (!stored) return std::nullopt;
  forget_unreadable(id);  // a read error that passed (EIO once) may be said again
  return std::move(stored->frame);
}

void Redelivery::keep_unreadable(std::uint32_t index, const MessageId& id) {
  unreadable_.add();
  if (unreadable_said_.insert(id).second)
    std::fprintf(stderr,
                 "mqkit proxy: the stored frame of message %s cannot be read back (damaged on "
                 "disk?); it stays pending and is read again every %lld ms\n",
                 id.to_string().c_str(), static_cast<long long>(kUnreadableRetryEvery.count()));
  ++groups_[index].retrying;
  retries_.emplace(Clock::now() + kUnreadableRetryEvery, std::pair{index, id});
}

}  // namespace mqkit::devices::detail
