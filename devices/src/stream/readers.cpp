// The stream's readers: subscribe, rebalance, commits, heartbeats.
#include "stream/readers.hpp"

#include <algorithm>

#include "mqkit/error.hpp"
#include "names.hpp"
#include "router_peers.hpp"

namespace mqkit::devices::detail {
namespace {

using namespace mqkit::detail::protocol;

// A member giving up a partition has this long (or 5 heartbeats, if longer)
// to stop and commit before the partition goes to its next member anyway.
constexpr auto kMinReleaseTimeout = std::chrono::seconds(30);

}  // namespace

Readers::Readers(RouterPeers back, const Partitions& partitions, CommittedPositions& positions,
                 std::chrono::milliseconds heartbeat)
    : back_(back), partitions_(partitions), positions_(positions), heartbeat_(heartbeat) {}

void Readers::subscribe(const std::string& identity, const CommandFrame& cmd) {
  if (!cmd.group.empty() && !valid_name(cmd.group)) {
    back_.reply_error(identity, "consumer name '" + cmd.group +
                                    "' is not valid: use 1-128 letters, digits, '-', '_' or '.'");
    return;
  }
  Reader r;
  r.name = cmd.group;
  r.window = std::clamp<std::uint32_t>(cmd.credit, 1, kMaxCredit);
  r.last_heard = Clock::now();
  try {
    r.from = StartPosition::parse(cmd.from);
    partitions_.check_start(r.from);
  } catch (const Error& e) {
    back_.reply_error(identity, e.what());
    return;
  }
  if (readers_.contains(identity)) remove(identity);  // subscribing afresh
  auto& reader = readers_.emplace(identity, std::move(r)).first->second;
  if (reader.name.empty()) {
    for (std::uint32_t p = 0; p < partitions_.count(); ++p) {
      if (reader.from.kind == StartPosition::Kind::partitions && !reader.from.offsets.contains(p))
        continue;
      reader.cursors.emplace_back(p, partitions_.start_of(reader.from, p));
    }
    send_assigned(identity);
    return;
  }
  positions_.add_name(reader.name);
  members_[reader.name].push_back(identity);
  rebalance(reader.name, identity);
}

// Shares the name's partitions among its members: partition p goes to
// member p % members. Revoke first, then assign: a partition that moves is
// taken from its old member at once but given to the new one only once the
// old one has let it go (released()), so one member reads it at a time.
// Members whose share changed are told.
void Readers::rebalance(const std::string& name, const std::string& joined) {
  const std::vector<std::string>& consumer = members_[name];
  const std::uint32_t partitions = partitions_.count();
  const std::size_t members = consumer.size();
  std::vector<bool> changed(members, false);
  std::vector<bool> taken(partitions, false);  // read, or still being let go, by someone
  for (std::size_t i = 0; i < members; ++i) {
    Reader& reader = readers_.at(consumer[i]);
    auto mine = [&](std::uint32_t p) { return p < partitions && p % members == i; };
    // Its own partitions coming back to it before it let them go.
    for (auto it = reader.releasing.begin(); it != reader.releasing.end();) {
      if (!mine(it->partition)) {
        ++it;
        continue;
      }
      // It may have dropped what it held of it: send again from its commit.
      it->move_to(it->acked);
      reader.cursors.push_back(std::move(*it));
      it = reader.releasing.erase(it);
      changed[i] = true;
    }
    for (auto it = reader.cursors.begin(); it != reader.cursors.end();) {
      if (mine(it->partition)) {
        ++it;
        continue;
      }
      // Nothing in flight: let go at once; else wait for it to stop and commit.
      if (it->acked < it->next) {
        if (reader.releasing.empty()) reader.release_by = Clock::now() + release_timeout();
        reader.releasing.push_back(std::move(*it));
      }
      it = reader.cursors.erase(it);
      changed[i] = true;
    }
    for (const auto& c : reader.cursors) taken[c.partition] = true;
    for (const auto& c : reader.releasing) taken[c.partition] = true;
  }
  for (std::size_t i = 0; i < members; ++i) {
    Reader& reader = readers_.at(consumer[i]);
    for (std::uint32_t p = static_cast<std::uint32_t>(i); p < partitions;
         p += static_cast<std::uint32_t>(members)) {
      if (taken[p]) continue;
      const std::uint64_t* committed = positions_.find(name, p);
      // A name's first read of a partition: its start becomes its position.
      const std::uint64_t at = committed != nullptr
                                   ? *committed
                                   : positions_.set(name, p, partitions_.start_of(reader.from, p));
      reader.cursors.emplace_back(p, std::min(at, partitions_.log(p).next_offset()));
      changed[i] = true;
    }
    if (changed[i]) {
      std::sort(reader.cursors.begin(), reader.cursors.end(),
                [](const Cursor& a, const Cursor& b) { return a.partition < b.partition; });
      reader.next_cursor = 0;
    }
  }
  // Told after the loop: telling may lose a member (and rebalance again).
  std::vector<std::string> to_tell;
  for (std::size_t i = 0; i < members; ++i)
    if (changed[i] || consumer[i] == joined) to_tell.push_back(consumer[i]);
  for (const auto& identity : to_tell) send_assigned(identity);
}

std::chrono::milliseconds Readers::release_timeout() const {
  return std::max<std::chrono::milliseconds>(kMinReleaseTimeout, kMissedHeartbeats * heartbeat_);
}

// The member let go of the partitions taken from it: they go to their new members.
void Readers::released(Reader& reader) {
  if (reader.releasing.empty()) return;
  reader.releasing.clear();
  if (!reader.name.empty()) to_settle_.insert(reader.name);
}

// Its answer to an `assigned`: it stopped reading (and committed) every
// partition not in `holds`. An answer to an older `assigned` says nothing
// of what a newer one gave back and took again: only the newest counts.
void Readers::answered(Reader& reader, const std::vector<Position>& holds) {
  if (reader.unanswered > 0) --reader.unanswered;
  if (reader.unanswered > 0) return;  // a newer `assigned` is on its way or being handled
  const auto before = reader.releasing.size();
  std::erase_if(reader.releasing, [&](const Cursor& c) {
    return std::none_of(holds.begin(), holds.end(),
                        [&](const Position& h) { return h.partition == c.partition; });
  });
  if (reader.releasing.size() != before && !reader.name.empty()) to_settle_.insert(reader.name);
}

void Readers::settle() {
  while (!to_settle_.empty()) {
    const std::string name = *to_settle_.begin();
    to_settle_.erase(to_settle_.begin());
    auto it = members_.find(name);
    if (it != members_.end() && !it->second.empty()) rebalance(name);
  }
}

// Tells a reader which partitions it reads from where; a reader that is
// gone is lost (its name rebalanced).
void Readers::send_assigned(const std::string& identity) {
  auto it = readers_.find(identity);
  if (it == readers_.end()) return;  // lost while others were told
  CommandFrame c{.command = Command::assigned,
                 .group = it->second.name,
                 .heartbeat_ms = static_cast<std::uint64_t>(heartbeat_.count()),
                 .stream_id = partitions_.stream_id()};
  for (const auto& cursor : it->second.cursors)
    c.positions.push_back({cursor.partition, cursor.next});
  const Sent sent = back_.send(identity, encode_command(c));
  if (sent == Sent::gone) {
    lose(identity);
    return;
  }
  if (sent == Sent::ok) ++it->second.unanswered;
}

void Readers::commit(Reader& reader, const std::vector<Position>& positions) {
  for (const auto& position : positions) {
    Cursor* cursor = reader.cursor(position.partition);
    auto releasing =
        std::find_if(reader.releasing.begin(), reader.releasing.end(),
                     [&](const Cursor& c) { return c.partition == position.partition; });
    if (cursor == nullptr && releasing != reader.releasing.end()) cursor = &*releasing;
    // Not its partition (any more), or not sent: a late or confused commit.
    if (cursor == nullptr || position.offset > cursor->next) continue;
    cursor->acked_to(position.offset);
    if (releasing != reader.releasing.end() && cursor == &*releasing &&
        cursor->acked >= cursor->next) {
      // Everything it was sent of a partition it is giving up is handled: let go.
      reader.releasing.erase(releasing);
      if (!reader.name.empty()) to_settle_.insert(reader.name);
    }
    if (reader.name.empty()) continue;
    positions_.advance(reader.name, position.partition, position.offset);
  }
}

void Readers::remove(const std::string& identity) {
  auto it = readers_.find(identity);
  if (it == readers_.end()) return;
  const std::string name = it->second.name;
  readers_.erase(it);
  if (name.empty()) return;
  std::vector<std::string>& members = members_[name];
  std::erase(members, identity);
  if (!members.empty()) rebalance(name);
}

void Readers::lose(const std::string& identity) {
  if (!readers_.contains(identity)) return;
  lost_readers_.add();
  remove(identity);
}

void Readers::heartbeat(Clock::time_point now) {
  static const std::string beat = encode_command({.command = Command::heartbeat});
  std::vector<std::string> lost;
  for (const auto& [identity, reader] : readers_)
    if (now - reader.last_heard > kMissedHeartbeats * heartbeat_ ||
        back_.send(identity, beat) == Sent::gone)
      lost.push_back(identity);
  for (const auto& identity : lost) lose(identity);
  // A member that neither stopped nor answered in time lets go anyway.
  for (auto& [identity, reader] : readers_)
    if (!reader.releasing.empty() && now >= reader.release_by) released(reader);
  settle();
}

}  // namespace mqkit::devices::detail
