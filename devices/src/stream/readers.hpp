// Readers: the stream's reader sessions on its back socket. A reader
// subscribes alone (every partition, or those it named) or under a consumer
// name, whose members share the name's partitions (rebalance), each partition
// read by one member at a time. Owns the readers, each name's members, the
// hand-over of partitions between members, commits (into
// CommittedPositions), heartbeats and lost readers. What each reader is sent
// is RecordsDelivery's; the credit it is sent against is its Cursors'.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "detail/counter.hpp"
#include "protocol/commands.hpp"
#include "protocol/start_position.hpp"
#include "router_peers.hpp"
#include "stream/committed_positions.hpp"
#include "stream/cursor.hpp"
#include "stream/partitions.hpp"

namespace mqkit::devices::detail {

struct Reader {
  std::string name;  // empty: reads alone, every partition (or those it named)
  mqkit::detail::protocol::StartPosition from;
  std::uint32_t window = 1;
  std::vector<Cursor> cursors;
  std::size_t next_cursor = 0;  // round-robin over the partitions with data
  Clock::time_point last_heard;
  // Partitions taken from this member and not yet handed back: nobody else
  // reads them until it commits what it was sent, answers `assigned`, leaves
  // or `release_by` passes.
  std::vector<Cursor> releasing;
  Clock::time_point release_by;
  // `assigned` sent and not yet answered (answers come in order): only the
  // answer to the newest says what the member holds now.
  std::uint64_t unanswered = 0;

  std::uint64_t in_flight() const {
    std::uint64_t n = 0;
    for (const auto& c : cursors) n += c.next - c.acked;
    for (const auto& c : releasing) n += c.next - c.acked;
    return n;
  }
  std::uint64_t in_flight_bytes() const {
    std::uint64_t n = 0;
    for (const auto& c : cursors) n += c.sent_bytes;
    for (const auto& c : releasing) n += c.sent_bytes;
    return n;
  }
  Cursor* cursor(std::uint32_t partition) {
    for (auto& c : cursors)
      if (c.partition == partition) return &c;
    return nullptr;
  }
};

class Readers {
 public:
  // What one reader may hold sent and not yet committed, in records (its
  // credit is capped to this).
  static constexpr std::uint32_t kMaxCredit = 65536;
  static constexpr int kMissedHeartbeats = 5;  // a reader silent this many intervals is lost

  // `back`: the ROUTER the readers connect to (ROUTER_MANDATORY: a gone
  // reader is an error); `heartbeat`: the interval readers are told.
  Readers(RouterPeers back, const Partitions& partitions, CommittedPositions& positions,
          std::chrono::milliseconds heartbeat);
  Readers(const Readers&) = delete;
  Readers& operator=(const Readers&) = delete;

  // A SUBSCRIBE: the reader starts reading (afresh, when it was reading), or
  // is answered an error.
  void subscribe(const std::string& identity, const mqkit::detail::protocol::CommandFrame& cmd);
  // The reader of `identity`; nullptr when there is none (it must subscribe).
  Reader* find(const std::string& identity) {
    auto it = readers_.find(identity);
    return it == readers_.end() ? nullptr : &it->second;
  }
  // A COMMIT: it processed each partition up to the offset given.
  void commit(Reader& reader, const std::vector<mqkit::detail::protocol::Position>& positions);
  // Its answer to an `assigned`: what it holds now.
  void answered(Reader& reader, const std::vector<mqkit::detail::protocol::Position>& holds);
  // A reader that left (DETACH, or subscribing afresh): its name is rebalanced.
  void remove(const std::string& identity);
  // A reader gone or silent: removed, and counted as lost.
  void lose(const std::string& identity);
  // Rebalances the names whose members let partitions go.
  void settle();
  // Every heartbeat interval: beats to the readers, readers silent too long
  // lost, and partitions held past their release time let go.
  void heartbeat(Clock::time_point now);

  std::size_t size() const noexcept { return readers_.size(); }
  // Every reader's identity (into `out`, cleared first): delivering may lose
  // readers, so the caller walks a copy.
  void identities(std::vector<std::string>& out) const {
    out.clear();
    for (const auto& [identity, reader] : readers_) out.push_back(identity);
  }
  std::size_t members(const std::string& name) const {
    auto it = members_.find(name);
    return it == members_.end() ? 0 : it->second.size();
  }
  const mqkit::detail::Counter& lost() const noexcept { return lost_readers_; }

 private:
  void rebalance(const std::string& name, const std::string& joined = {});
  void released(Reader& reader);
  void send_assigned(const std::string& identity);
  std::chrono::milliseconds release_timeout() const;

  RouterPeers back_;
  const Partitions& partitions_;
  CommittedPositions& positions_;
  std::chrono::milliseconds heartbeat_;

  std::unordered_map<std::string, Reader> readers_;
  std::map<std::string, std::vector<std::string>> members_;  // per name, in the order they joined
  std::set<std::string> to_settle_;  // names with partitions let go, to hand on
  mqkit::detail::Counter lost_readers_;
};

}  // namespace mqkit::devices::detail
