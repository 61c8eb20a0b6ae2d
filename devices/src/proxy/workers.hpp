// Workers: the proxy's attached workers, each in one group, with its credit
// (prefetch) and the bytes it holds unanswered; attach checks, joining and
// leaving a group, and which workers are lost (silent or disconnected).
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "protocol/commands.hpp"
#include "proxy/group.hpp"
#include "router_peers.hpp"

namespace mqkit::devices::detail {

class Groups;

constexpr int kMissedHeartbeats = 5;  // a worker silent this many intervals is lost
// What one worker may hold: its credit (messages) is capped, and so are the
// bytes sent to it that it has not answered, so that a worker that never
// reads cannot make the proxy queue its spool in memory.
constexpr std::uint32_t kMaxCredit = 65536;
constexpr std::uint64_t kMaxWorkerBytes = 8 * 1024 * 1024;

struct WorkerState {
  std::uint32_t group = 0;  // index into the groups' slots
  std::uint32_t prefetch = 1;
  std::uint32_t unacked = 0;
  std::uint64_t unacked_bytes = 0;  // of the deliveries in flight to it
  // Of its deliveries that timed out: they may still wait in its socket
  // queue, unread, until it answers anything (ack, nack, in_progress).
  std::uint64_t unanswered_bytes = 0;
  Clock::time_point last_heard;
  std::uint32_t minor = 0;  // its protocol's minor version (from ATTACH)

  bool full() const noexcept {
    return unacked >= prefetch || unacked_bytes + unanswered_bytes >= kMaxWorkerBytes;
  }
  void release(std::uint32_t bytes) noexcept {
    if (unacked > 0) --unacked;
    unacked_bytes -= std::min<std::uint64_t>(unacked_bytes, bytes);
  }
  void set_credit(std::uint32_t credit) noexcept {
    prefetch = std::clamp<std::uint32_t>(credit, 1, kMaxCredit);
  }
};

class Workers {
 public:
  WorkerState* find(const std::string& worker) {
    auto it = workers_.find(worker);
    return it == workers_.end() ? nullptr : &it->second;
  }
  WorkerState& at(const std::string& worker) { return workers_.at(worker); }
  std::size_t size() const noexcept { return workers_.size(); }

  // What is wrong with an ATTACH (its group's name or filters), or empty.
  static std::string attach_error(const mqkit::detail::protocol::CommandFrame& cmd, Groups& groups);

  // The worker (not attached yet) joins group `index`, served round-robin.
  WorkerState& join(const std::string& worker, std::uint32_t index, ConsumerGroup& g);
  // The worker leaves its group `g` and is forgotten.
  void remove(ConsumerGroup& g, const std::string& worker);
  // The group is deleted: its workers are told so and forgotten.
  void drop_group(ConsumerGroup& g, RouterPeers back);

  // A delivery to `worker` is no longer its to answer (settled elsewhere).
  void release(const std::string& worker, std::uint32_t bytes) {
    if (auto* w = find(worker)) w->release(bytes);
  }
  // A delivery to `worker` timed out: its bytes may still wait in its queue.
  void timed_out(const std::string& worker, std::uint32_t bytes) {
    if (auto* w = find(worker)) {
      w->release(bytes);
      w->unanswered_bytes += bytes;
    }
  }

  // Sends each worker a heartbeat; appends the lost ones, with why, to `lost`.
  void heartbeat(Clock::time_point now, std::chrono::milliseconds interval, RouterPeers back,
                 std::vector<std::pair<std::string, std::string>>& lost);

 private:
  std::unordered_map<std::string, WorkerState> workers_;
};

}  // namespace mqkit::devices::detail
