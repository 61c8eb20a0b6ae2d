// IdTable: a map from message id to value for hot paths (the spool index,
// the proxy's messages and dedup window). Open addressing
// with linear probing in one flat array: an insert or lookup costs about one
// cache miss, where a node-based std::unordered_map costs two or three and a
// heap allocation (the difference is most of the writer's time at a million
// appends a second). The nil id marks an empty slot; ids are never nil.
#pragma once

#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "mqkit/message_id.hpp"

namespace mqkit::detail {

template <typename Value>
class IdTable {
 public:
  struct Slot {
    MessageId first;
    Value second;
  };

  class iterator {
   public:
    iterator(Slot* at, Slot* end) : at_(at), end_(end) { skip_empty(); }
    Slot& operator*() const { return *at_; }
    Slot* operator->() const { return at_; }
    iterator& operator++() {
      ++at_;
      skip_empty();
      return *this;
    }
    bool operator==(const iterator& o) const { return at_ == o.at_; }

   private:
    void skip_empty() {
      while (at_ != end_ && is_empty(*at_)) ++at_;
    }
    Slot* at_;
    Slot* end_;
  };

  iterator begin() const { return {data(), data() + slots_.size()}; }
  iterator end() const { return {data() + slots_.size(), data() + slots_.size()}; }
  std::size_t size() const noexcept { return size_; }

  iterator find(const MessageId& id) const {
    if (slots_.empty()) return end();
    for (std::size_t i = home(id);; i = next(i)) {
      if (is_empty(slots_[i])) return end();
      if (same(slots_[i].first, id)) return {data() + i, data() + slots_.size()};
    }
  }

  bool contains(const MessageId& id) const { return find(id) != end(); }
  bool erase(const MessageId& id) {
    auto it = find(id);
    if (it == end()) return false;
    erase(it);
    return true;
  }

  template <typename V = Value>
  std::pair<iterator, bool> try_emplace(const MessageId& id, V&& value = V{}) {
    if ((size_ + 1) * 5 > slots_.size() * 4) grow();  // load factor at most 0.8
    for (std::size_t i = home(id);; i = next(i)) {
      if (same(slots_[i].first, id)) return {{data() + i, data() + slots_.size()}, false};
      if (is_empty(slots_[i])) {
        slots_[i] = {id, std::forward<V>(value)};
        ++size_;
        return {{data() + i, data() + slots_.size()}, true};
      }
    }
  }

  // Backward-shift deletion: no tombstones, so lookups stay short.
  void erase(iterator it) {
    std::size_t i = static_cast<std::size_t>(&*it - data());
    slots_[i] = Slot{};
    --size_;
    for (std::size_t j = next(i); !is_empty(slots_[j]); j = next(j)) {
      const std::size_t k = home(slots_[j].first);
      // Move j back to i unless its home lies cyclically in (i, j].
      const bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
      if (stays) continue;
      slots_[i] = std::move(slots_[j]);
      slots_[j] = Slot{};
      i = j;
    }
  }

 private:
  Slot* data() const { return const_cast<Slot*>(slots_.data()); }
  // Ids compared as two words: the probe loop is the index's hot path.
  static std::pair<std::uint64_t, std::uint64_t> words(const MessageId& id) noexcept {
    std::pair<std::uint64_t, std::uint64_t> w;
    std::memcpy(&w.first, id.bytes().data(), 8);
    std::memcpy(&w.second, id.bytes().data() + 8, 8);
    return w;
  }
  static bool same(const MessageId& a, const MessageId& b) noexcept { return words(a) == words(b); }
  static bool is_empty(const Slot& s) noexcept {
    const auto w = words(s.first);
    return (w.first | w.second) == 0;
  }

  std::size_t next(std::size_t i) const noexcept { return i + 1 == slots_.size() ? 0 : i + 1; }

  std::size_t home(const MessageId& id) const noexcept {
    const auto [a, b] = words(id);
    std::uint64_t h = a ^ (b * 0x9E3779B97F4A7C15ull);  // splitmix64's finalizer
    h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ull;
    h = (h ^ (h >> 27)) * 0x94D049BB133111EBull;
    h ^= h >> 31;
    // Maps the hash onto any table size (not only powers of two), so the
    // table can grow by 1.5x and stay close to its load factor.
    // (tables stay far below 2^32 slots, so 32 bits of hash suffice).
    return static_cast<std::size_t>(((h >> 32) * slots_.size()) >> 32);
  }

  void grow() {
    std::vector<Slot> old(slots_.empty() ? 1024 : slots_.size() * 3 / 2);
    old.swap(slots_);
    size_ = 0;
    for (auto& s : old)
      if (!is_empty(s)) try_emplace(s.first, std::move(s.second));
  }

  std::vector<Slot> slots_;
  std::size_t size_ = 0;
};

}  // namespace mqkit::detail
