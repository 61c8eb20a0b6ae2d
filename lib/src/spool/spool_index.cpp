// Replaying records into the pending set.
#include "spool/spool_index.hpp"

#include <algorithm>

namespace mqkit::detail::spool {

int SpoolIndex::find_group(const std::string& name) const {
  for (std::size_t i = 0; i < group_names.size(); ++i)
    if (group_names[i] == name) return static_cast<int>(i);
  return -1;
}

int SpoolIndex::group_bit(const std::string& name) {
  const int found = find_group(name);
  if (found >= 0) return found;
  if (group_names.size() >= kMaxGroups) return -1;
  group_names.push_back(name);
  return static_cast<int>(group_names.size() - 1);
}

std::uint64_t SpoolIndex::mask_of(const std::vector<std::string>& groups) {
  std::uint64_t mask = 0;
  for (const auto& g : groups) {
    const int bit = group_bit(g);
    if (bit < 0) return 0;
    mask |= std::uint64_t{1} << bit;
  }
  return mask;
}

std::vector<std::string> SpoolIndex::groups_of(std::uint64_t mask) const {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < group_names.size(); ++i)
    if (mask & (std::uint64_t{1} << i)) out.push_back(group_names[i]);
  return out;
}

void SpoolIndex::forget(mqkit::detail::IdTable<IndexEntry>::iterator it) {
  auto& u = usage[it->second.where.segment];
  u.live_messages -= 1;
  u.live_bytes -= it->second.where.size;
  failures.erase(it->first);
  entries.erase(it);
}

void SpoolIndex::forget_failures(const MessageId& id, int group_bit) {
  auto it = failures.find(id);
  if (it == failures.end()) return;
  std::erase_if(it->second, [&](const Failures& f) { return f.group_bit == group_bit; });
  if (it->second.empty()) failures.erase(it);
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
  switch (r.type) {
    case RecordType::stream:
      return true;  // not a spool record
    case RecordType::publish:
    case RecordType::dead_letter: {
      const std::uint64_t mask = r.group_mask != 0 ? r.group_mask : mask_of(r.groups);
      if (mask == 0 && !r.groups.empty()) return false;
      next_seq = std::max(next_seq, r.seq + 1);
      if (mask == 0) {
        if (auto it = entries.find(r.id); it != entries.end()) forget(it);
        return true;
      }
      auto [it, inserted] = entries.try_emplace(r.id, IndexEntry{r.seq, mask, where});
      if (!inserted) {  // a rewritten copy replaces the original
        auto& old = usage[it->second.where.segment];
        old.live_messages -= 1;
        old.live_bytes -= it->second.where.size;
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
      auto it = entries.find(r.id);
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
      Failures f{bit, r.attempts, r.first_failure_ms, r.last_error};
      for (auto& existing : list)
        if (existing.group_bit == bit) {
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
  for (const auto& name : group_names) counts[name] = 0;
  for (const auto& [id, e] : entries)
    for (std::size_t i = 0; i < group_names.size(); ++i)
      if (e.groups & (std::uint64_t{1} << i)) ++counts[group_names[i]];
  return counts;
}

}  // namespace mqkit::detail::spool
