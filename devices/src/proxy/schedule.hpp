// Schedule: a group's scheduled messages (envelope not_before in the
// future), earliest first. A binary heap in one vector: 24 bytes per
// message, about what the ready queue costs a pending one, and no node per
// message. Times are wall-clock ms (the envelope's), so a message is due
// by the clock its producer meant.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <utility>
#include <vector>

#include "mqkit/message_id.hpp"

namespace mqkit::devices::detail {

class Schedule {
 public:
  void add(std::uint64_t not_before_ms, const MessageId& id) {
    heap_.emplace_back(not_before_ms, id);
    std::push_heap(heap_.begin(), heap_.end(), later);
  }
  // The earliest time held, if any.
  std::optional<std::uint64_t> next() const {
    if (heap_.empty()) return std::nullopt;
    return heap_.front().first;
  }
  // Takes out every message due at `now_ms`, earliest first.
  template <typename Take>
  void take_due(std::uint64_t now_ms, Take&& take) {
    while (!heap_.empty() && heap_.front().first <= now_ms) {
      std::pop_heap(heap_.begin(), heap_.end(), later);
      const MessageId id = heap_.back().second;
      heap_.pop_back();
      take(id);
    }
  }
  // Removes `id` (rare: a group deleted, a late ack); false when not held.
  bool remove(const MessageId& id) {
    auto it = std::find_if(heap_.begin(), heap_.end(),
                           [&](const auto& entry) { return entry.second == id; });
    if (it == heap_.end()) return false;
    *it = heap_.back();
    heap_.pop_back();
    std::make_heap(heap_.begin(), heap_.end(), later);
    return true;
  }
  std::size_t size() const noexcept { return heap_.size(); }
  bool empty() const noexcept { return heap_.empty(); }
  std::vector<MessageId> ids() const {
    std::vector<MessageId> out;
    out.reserve(heap_.size());
    for (const auto& entry : heap_) out.push_back(entry.second);
    return out;
  }

 private:
  using Entry = std::pair<std::uint64_t, MessageId>;
  static bool later(const Entry& a, const Entry& b) noexcept { return a.first > b.first; }
  std::vector<Entry> heap_;
};

}  // namespace mqkit::devices::detail
