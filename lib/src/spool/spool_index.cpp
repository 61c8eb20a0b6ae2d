// Replaying records into the pending set.
#include "spool/spool_index.hpp"

#include <algorithm>

namespace mqkit::detail::spool {

MessageId dead_letter_key(const MessageId& id, std::string_view group) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a, then splitmix64's finaliser
  for (const char c : group) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
  h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ull;
  h = (h ^ (h >> 27)) * 0x94D049BB133111EBull;
  h ^= h >> 31;
  auto bytes = id.bytes();
  for (int i = 0; i < 8; ++i) bytes[8 + i] ^= static_cast<std::uint8_t>(h >> (8 * i));
  return MessageId(bytes);
}

MessageId SpoolIndex::key_of(const DecodedRecord& r) noexcept {
  if (r.type == RecordType::dead_letter || r.type == RecordType::tombstone)
    return dead_letter_key(r.id, r.one_group());
  return r.id;
}

int SpoolIndex::find_group(const std::string& name) const {
  if (name.empty()) return -1;  // an empty name is a released slot, never a group
  for (std::size_t i = 0; i < group_names.size(); ++i)
    if (group_names[i] == name) return static_cast<int>(i);
  return -1;
}

int SpoolIndex::group_bit(const std::string& name) {
  const int found = find_group(name);
  if (found >= 0) return found;
  for (std::size_t i = 0; i < group_names.size(); ++i)
    if (group_names[i].empty()) {
      group_names[i] = name;
      return static_cast<int>(i);
    }
  if (group_names.size() >= kMaxGroups) return -1;
  group_names.push_back(name);
  return static_cast<int>(group_names.size() - 1);
}

std::uint64_t SpoolIndex::mask_of(const std::vector<std::string>& groups) {
  std::uint64_t mask = 0;
  for (const auto& g : groups) {
    int bit = group_bit(g);
    if (bit < 0) bit = reclaim_bit(g, mask);
    if (bit < 0) return 0;
    mask |= std::uint64_t{1} << bit;
  }
  return mask;
}

// Records name groups, not bits: replaying them (recovery, a dead-letter
// spool) may meet more than kMaxGroups names over a spool's history (groups
// deleted and others created since). A name with nothing pending gives its
// bit to the new one; a later record naming it gets a bit again the same way.
int SpoolIndex::reclaim_bit(const std::string& name, std::uint64_t keep) {
  std::uint64_t used = keep;
  for (const auto& [id, e] : entries) used |= e.groups;
  for (std::size_t i = 0; i < group_names.size(); ++i)
    if (!(used & (std::uint64_t{1} << i))) {
      release_group(group_names[i]);
      group_names[i] = name;
      return static_cast<int>(i);
    }
  return -1;
}

std::vector<std::string> SpoolIndex::groups_of(std::uint64_t mask) const {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < group_names.size(); ++i)
    if (mask & (std::uint64_t{1} << i) && !group_names[i].empty()) out.push_back(group_names[i]);
  return out;
}

void SpoolIndex::release_group(const std::string& name) {
  const int bit = find_group(name);
  if (bit < 0) return;
  const std::uint64_t mask = std::uint64_t{1} << bit;
  std::vector<MessageId> settled;
  for (auto& [id, e] : entries) {
    if (!(e.groups & mask)) continue;
    e.groups &= ~mask;
    if (e.groups == 0) settled.push_back(id);
  }
  for (const auto& id : settled) forget(entries.find(id));
  std::vector<MessageId> with_failures;
  for (const auto& [id, list] : failures) with_failures.push_back(id);
  for (const auto& id : with_failures) forget_failures(id, bit);
  group_names[static_cast<std::size_t>(bit)].clear();
}

void SpoolIndex::forget(mqkit::detail::IdTable<IndexEntry>::iterator it) {
  auto& u = usage[it->second.where.segment];
  u.live_messages -= 1;
  u.live_bytes -= it->second.where.size;
  u.history_bytes -= history_bytes_of(it->first);
  failures.erase(it->first);
  entries.erase(it);
}

void SpoolIndex::forget_failures(const MessageId& id, int group_bit) {
  auto it = failures.find(id);
  if (it == failures.end()) return;
  std::uint64_t forgotten = 0;
  std::erase_if(it->second, [&](const Failures& f) {
    if (f.group_bit != group_bit) return false;
    forgotten += f.record_size;
    return true;
  });
  if (const auto entry = entries.find(id); entry != entries.end())
    usage[entry->second.where.segment].history_bytes -= forgotten;
  if (it->second.empty()) failures.erase(it);
}

std::uint64_t SpoolIndex::history_bytes_of(const MessageId& id) const {
  const auto it = failures.find(id);
  if (it == failures.end()) return 0;
  std::uint64_t bytes = 0;
  for (const auto& f : it->second) bytes += f.record_size;
  return bytes;
}

const Failures* SpoolIndex::failures_of(const MessageId& id, int group_bit) const {
  auto it = failures.find(id);
  if (it == failures.end()) return nullptr;
  for (const auto& f : it->second)
    if (f.group_bit == group_bit) return &f;
  return nullptr;
}

void SpoolIndex::note_settle(const Location& message, const Location& record) {
  if (message.segment < record.segment) ++usage[record.segment].settles[message.segment];
}

bool SpoolIndex::apply(const DecodedRecord& r, const Location& where) {
  if (r.id.is_nil()) return true;  // never an id (the nil id marks an empty slot): ignored
  switch (r.type) {
    case RecordType::stream:
      return true;  // not a spool record
    case RecordType::publish:
    case RecordType::dead_letter: {
      if (recent_capacity > 0 && r.type == RecordType::publish && r.seq >= next_seq) {
        recent.push_back(r.id);  // a first copy (a rewritten one keeps its older seq)
        if (recent.size() > recent_capacity) recent.pop_front();
      }
      const std::uint64_t mask = r.group_mask != 0 ? r.group_mask : mask_of(r.groups);
      if (mask == 0 && !r.groups.empty()) return false;
      next_seq = std::max(next_seq, r.seq + 1);
      const MessageId key = key_of(r);
      if (mask == 0) {
        if (auto it = entries.find(key); it != entries.end()) forget(it);
        return true;
      }
      auto [it, inserted] = entries.try_emplace(key, IndexEntry{r.seq, mask, where});
      if (!inserted) {  // a rewritten copy (or a second store) replaces the original
        // The older PUBLISH stays on disk until its segment goes, and only
        // the records settling this entry keep it settled: this segment must
        // outlive that one, as a settling record's would.
        note_settle(it->second.where, where);
        const std::uint64_t history = history_bytes_of(key);  // moves with the message
        auto& old = usage[it->second.where.segment];
        old.live_messages -= 1;
        old.live_bytes -= it->second.where.size;
        old.history_bytes -= history;
        usage[where.segment].history_bytes += history;
        it->second = IndexEntry{r.seq, mask, where};
      }
      auto& u = usage[where.segment];
      u.live_messages += 1;
      u.live_bytes += where.size;
      return true;
    }
    case RecordType::ack:
    case RecordType::dead:
    case RecordType::tombstone: {
      auto it = entries.find(key_of(r));
      if (it == entries.end() || !r.names_a_group()) return true;  // already gone
      const int bit = find_group(r.one_group());
      if (bit < 0) return true;
      note_settle(it->second.where, where);
      it->second.groups &= ~(std::uint64_t{1} << bit);
      forget_failures(r.id, bit);
      if (it->second.groups == 0) forget(it);
      return true;
    }
    case RecordType::attempt: {
      auto it = entries.find(r.id);
      if (it == entries.end() || !r.names_a_group()) return true;  // settled meanwhile
      const int bit = find_group(r.one_group());
      if (bit < 0 || !(it->second.groups & (std::uint64_t{1} << bit))) return true;
      note_settle(it->second.where, where);
      auto& list = failures[r.id];
      Failures f{bit, r.attempts, r.first_failure_ms, r.last_error, where.size};
      auto& history_bytes = usage[it->second.where.segment].history_bytes;
      history_bytes += where.size;
      for (auto& existing : list)
        if (existing.group_bit == bit) {
          history_bytes -= existing.record_size;
          existing = std::move(f);  // the latest record is the whole history
          return true;
        }
      list.push_back(std::move(f));
      return true;
    }
  }
  return true;
}

std::vector<MessageId> SpoolIndex::pending(const std::string& group) const {
  const int bit = find_group(group);
  if (bit < 0) return {};
  std::vector<std::pair<std::uint64_t, MessageId>> found;
  for (const auto& [id, e] : entries)
    if (e.groups & (std::uint64_t{1} << bit)) found.emplace_back(e.seq, id);
  std::sort(found.begin(), found.end());
  std::vector<MessageId> ids;
  ids.reserve(found.size());
  for (const auto& [seq, id] : found) ids.push_back(id);
  return ids;
}

std::map<std::string, std::uint64_t> SpoolIndex::pending_counts() const {
  std::map<std::string, std::uint64_t> counts;
  for (const auto& name : group_names)
    if (!name.empty()) counts[name] = 0;
  for (const auto& [id, e] : entries)
    for (std::size_t i = 0; i < group_names.size(); ++i)
      if (e.groups & (std::uint64_t{1} << i) && !group_names[i].empty()) ++counts[group_names[i]];
  return counts;
}

}  // namespace mqkit::detail::spool
