// Consumer names' committed positions, and when they are saved.
#include "stream/committed_positions.hpp"

#include <utility>

#include "names.hpp"

namespace mqkit::devices::detail {

CommittedPositions::CommittedPositions(std::string stream_dir) : dir_(std::move(stream_dir)) {
  for (auto& [name, positions] : load_positions(dir_)) {
    if (!valid_name(name)) continue;
    names_[name].committed = std::move(positions);
  }
}

const std::uint64_t* CommittedPositions::find(const std::string& name,
                                              std::uint32_t partition) const {
  auto entry = names_.find(name);
  if (entry == names_.end()) return nullptr;
  auto it = entry->second.committed.find(partition);
  return it == entry->second.committed.end() ? nullptr : &it->second;
}

std::uint64_t CommittedPositions::set(const std::string& name, std::uint32_t partition,
                                      std::uint64_t offset) {
  Entry& entry = names_[name];
  entry.committed[partition] = offset;
  mark_dirty(entry);
  return offset;
}

void CommittedPositions::advance(const std::string& name, std::uint32_t partition,
                                 std::uint64_t offset) {
  Entry& entry = names_[name];
  auto& committed = entry.committed[partition];
  if (offset > committed) {
    committed = offset;
    mark_dirty(entry);
  }
}

void CommittedPositions::mark_dirty(Entry& entry) {
  entry.dirty = true;
  if (!any_dirty_) next_save_ = Clock::now() + kSaveEvery;
  any_dirty_ = true;
}

void CommittedPositions::save(bool force) {
  if (!any_dirty_ && !force) return;
  for (auto& [name, entry] : names_) {
    if (!entry.dirty) continue;
    save_positions(dir_, name, entry.committed);
    entry.dirty = false;
  }
  any_dirty_ = false;
}

}  // namespace mqkit::devices::detail
