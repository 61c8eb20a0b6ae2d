// DedupWindow: the ids of the last N messages a device stored, so that a
// producer's re-send (a lost confirm, a device restart) is answered
// `duplicate` instead of being stored twice. Oldest forgotten first.
#pragma once

#include <cstddef>
#include <vector>

#include "detail/id_table.hpp"
#include "mqkit/message_id.hpp"

namespace mqkit::devices::detail {

class DedupWindow {
 public:
  explicit DedupWindow(std::size_t capacity) : capacity_(capacity) {}

  bool contains(const MessageId& id) const { return ids_.contains(id); }

  void remember(const MessageId& id) {
    if (capacity_ == 0 || !ids_.try_emplace(id, char{}).second) return;
    if (order_.size() < capacity_) {
      order_.push_back(id);
      return;
    }
    ids_.erase(order_[next_]);  // the oldest, overwritten in the ring
    order_[next_] = id;
    next_ = (next_ + 1) % order_.size();
  }

 private:
  std::size_t capacity_;
  mqkit::detail::IdTable<char> ids_;
  std::vector<MessageId> order_;  // a ring of the same ids, oldest at next_
  std::size_t next_ = 0;
};

}  // namespace mqkit::devices::detail
