// FrameCache: the frames of some messages the proxy holds, kept in memory up
// to a byte budget so that a delivery rarely reads the spool. Only messages
// whose frame is kept have an entry: which messages are held at all is the
// spool's index (Spool::holds), not a second table of every pending id.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>

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
  // 16 bytes: a pointer, the frame's size and the groups still to settle.
  class Entry {
   public:
    Entry() = default;
    Entry(std::string_view frame, std::uint32_t groups)
        : data_(new char[frame.size()]),
          size_(static_cast<std::uint32_t>(frame.size())),
          remaining(groups) {
      std::memcpy(data_.get(), frame.data(), frame.size());
    }
    std::string_view frame() const noexcept { return {data_.get(), size_}; }

   private:
    std::unique_ptr<char[]> data_;
    std::uint32_t size_ = 0;

   public:
    std::uint32_t remaining = 0;  // groups that have not settled it yet
  };

  std::size_t budget_;
  std::size_t frame_bytes_ = 0;
  mqkit::detail::IdTable<Entry> entries_;
};

}  // namespace mqkit::devices::detail
