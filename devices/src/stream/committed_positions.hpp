// CommittedPositions: where each consumer name has committed to, per
// partition, and keeping that on disk (DIR/consumers/NAME, positions_file).
// A change marks the name dirty; dirty names are saved together at most
// every kSaveEvery, and on stop (save(true)).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>

#include "stream/positions_file.hpp"

namespace mqkit::devices::detail {

class CommittedPositions {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr auto kSaveEvery = std::chrono::milliseconds(50);

  // Loads the positions saved in DIR/consumers (files not named as a
  // consumer name is are left out).
  explicit CommittedPositions(std::string stream_dir);

  // A name with no positions yet is still a name (counted, with no lag).
  void add_name(const std::string& name) { names_[name]; }

  // The name's position in `partition`; nullptr when it has none.
  const std::uint64_t* find(const std::string& name, std::uint32_t partition) const;
  // Sets the name's position in `partition`; returns `offset`.
  std::uint64_t set(const std::string& name, std::uint32_t partition, std::uint64_t offset);
  // Moves the name's position in `partition` forward to `offset`, never back
  // (a position it had none of counts as 0).
  void advance(const std::string& name, std::uint32_t partition, std::uint64_t offset);

  // Calls visit(name, positions) for every name, in name order.
  template <typename Visit>
  void for_each(Visit&& visit) const {
    for (const auto& [name, entry] : names_) visit(name, entry.committed);
  }

  bool dirty() const noexcept { return any_dirty_; }
  Clock::time_point save_at() const noexcept { return next_save_; }
  // Writes the file of each name changed since it was last saved (`force`:
  // looks even when none is marked). Throws Error when a file cannot be
  // written; the names not yet written stay dirty.
  void save(bool force);

 private:
  struct Entry {
    Positions committed;
    bool dirty = false;  // committed differs from the file
  };
  void mark_dirty(Entry& entry);

  std::string dir_;
  std::map<std::string, Entry> names_;
  bool any_dirty_ = false;
  Clock::time_point next_save_;
};

}  // namespace mqkit::devices::detail
