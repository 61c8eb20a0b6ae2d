// Completions: what the spools' writer threads hand over to the proxy's
// loop (a publish stored or not, an ATTEMPT record written, a dead letter
// stored), through mutex-guarded lists and an eventfd that wakes the poll,
// so that the loop never waits for the disk.
#pragma once

#include <cstdint>
#include <mutex>
#include <vector>

#include "mqkit/message_id.hpp"
#include "mqkit/spool.hpp"
#include "proxy/group.hpp"
#include "proxy/wakeup.hpp"

namespace mqkit::devices::detail {

struct Publishing;  // the proxy's message being stored

struct SpoolDone {
  Publishing* publishing;  // stable until the loop erases it
  AppendResult result;
};

// An ATTEMPT record written, or not.
struct AttemptDone {
  std::uint32_t group;
  MessageId id;
  AppendResult result;
};

// A dead letter's DLQ append finished (on the DLQ's writer thread).
struct DeadLetterDone {
  std::uint32_t group;
  MessageId id;
  FailureHistory history;  // to put back if the DLQ refused it
  DeadLetterInfo info;
  AppendResult result;
};

class Completions {
 public:
  int fd() const noexcept { return wakeup_.fd(); }
  void drain() noexcept { wakeup_.drain(); }

  // On a writer thread: each wakes the loop unless a wake-up is pending.
  void stored(Publishing* p, AppendResult r) {
    bool wake;
    {
      std::lock_guard lock(mutex_);
      wake = stored_.empty();
      stored_.push_back({p, r});
    }
    if (wake) wakeup_.poke();
  }
  void attempt(AttemptDone&& d) {
    bool wake;
    {
      std::lock_guard lock(mutex_);
      wake = none_locked();
      attempts_.push_back(std::move(d));
    }
    if (wake) wakeup_.poke();
  }
  void dead_letter(DeadLetterDone&& d) {
    bool wake;
    {
      std::lock_guard lock(mutex_);
      wake = none_locked();
      dead_.push_back(std::move(d));
    }
    if (wake) wakeup_.poke();
  }

  // On the loop's thread: swaps everything handed over into the (empty) lists.
  void take(std::vector<SpoolDone>& stored, std::vector<DeadLetterDone>& dead,
            std::vector<AttemptDone>& attempts) {
    std::lock_guard lock(mutex_);
    stored.swap(stored_);
    dead.swap(dead_);
    attempts.swap(attempts_);
  }

 private:
  bool none_locked() const noexcept {
    return stored_.empty() && dead_.empty() && attempts_.empty();
  }

  Wakeup wakeup_;
  std::mutex mutex_;
  std::vector<SpoolDone> stored_;      // guarded by mutex_
  std::vector<DeadLetterDone> dead_;   // guarded by mutex_
  std::vector<AttemptDone> attempts_;  // guarded by mutex_
};

}  // namespace mqkit::devices::detail
