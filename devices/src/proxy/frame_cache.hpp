// FrameCache: the frames of some messages the proxy holds, kept in memory up
// to a byte budget so that a delivery rarely reads the spool. Only messages
// whose frame is kept have an entry: which messages are held at all is the
// spool's index (Spool::holds), not a second table of every pending id.
// A kept frame is lent to the DELIVERs that send it rather than copied again:
// its buffer is reference-counted, and the last of the cache and the
// messages in flight frees it (one copy from receipt to delivery).
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <new>
#include <string_view>
#include <utility>

#include "detail/id_table.hpp"
#include "mqkit/message_id.hpp"

namespace mqkit::devices::detail {

class FrameCache {
 public:
  explicit FrameCache(std::size_t budget) : budget_(budget) {}

  // A message stored for `groups` groups: its frame is kept if it fits.
  void keep(const MessageId& id, std::uint32_t groups, std::string_view frame) {
    if (groups == 0 || frame_bytes_ + frame.size() > budget_) return;
    if (entries_.try_emplace(id, Entry(frame, groups)).second) frame_bytes_ += frame.size();
  }

  // The frame kept in memory; empty when it is read from the spool.
  std::string_view frame(const MessageId& id) const {
    auto it = entries_.find(id);
    return it == entries_.end() ? std::string_view{} : it->second.frame();
  }

  // The kept frame, lent to a message that will call give_back(data, hint)
  // once (libzmq's free function: from any thread); data is null when the
  // frame is not kept.
  struct Lent {
    char* data = nullptr;
    std::size_t size = 0;
    void* hint = nullptr;
  };
  Lent lend(const MessageId& id) {
    auto it = entries_.find(id);
    if (it == entries_.end()) return {};
    Block* block = it->second.block();
    block->refs.fetch_add(1, std::memory_order_relaxed);  // the cache holds one already
    return {block->data(), it->second.frame().size(), block};
  }
  static void give_back(void* /*data*/, void* hint) noexcept {
    if (hint != nullptr) unref(static_cast<Block*>(hint));
  }

  // One group is done with the message; the last one lets its frame go.
  void release(const MessageId& id) {
    auto it = entries_.find(id);
    if (it == entries_.end()) return;
    if (--it->second.remaining == 0) {
      frame_bytes_ -= it->second.frame().size();
      entries_.erase(it);
    }
  }

  std::size_t size() const noexcept { return entries_.size(); }
  std::size_t frame_bytes() const noexcept { return frame_bytes_; }

 private:
  // A frame's buffer: a reference count, then the bytes.
  struct Block {
    std::atomic<std::uint32_t> refs{1};
    char* data() noexcept { return static_cast<char*>(static_cast<void*>(this)) + sizeof(Block); }
  };
  static Block* make_block(std::string_view frame) {
    auto* block = new (::operator new(sizeof(Block) + frame.size())) Block;
    std::memcpy(block->data(), frame.data(), frame.size());
    return block;
  }
  static void unref(Block* block) noexcept {
    if (block->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    block->~Block();
    ::operator delete(block);
  }

  // 16 bytes: a pointer, the frame's size and the groups still to settle.
  class Entry {
   public:
    Entry() = default;
    Entry(std::string_view frame, std::uint32_t groups)
        : block_(make_block(frame)),
          size_(static_cast<std::uint32_t>(frame.size())),
          remaining(groups) {}
    Entry(Entry&& other) noexcept
        : block_(std::exchange(other.block_, nullptr)),
          size_(other.size_),
          remaining(other.remaining) {}
    Entry& operator=(Entry&& other) noexcept {
      if (this != &other) {
        if (block_ != nullptr) unref(block_);
        block_ = std::exchange(other.block_, nullptr);
        size_ = other.size_;
        remaining = other.remaining;
      }
      return *this;
    }
    ~Entry() {
      if (block_ != nullptr) unref(block_);
    }
    std::string_view frame() const noexcept { return {block_->data(), size_}; }
    Block* block() const noexcept { return block_; }

   private:
    Block* block_ = nullptr;
    std::uint32_t size_ = 0;

   public:
    std::uint32_t remaining = 0;  // groups that have not settled it yet
  };

  std::size_t budget_;
  std::size_t frame_bytes_ = 0;
  mqkit::detail::IdTable<Entry> entries_;
};

}  // namespace mqkit::devices::detail
