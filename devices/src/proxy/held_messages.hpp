// HeldMessages: the messages the proxy holds, stored and not yet settled by
// every group they went to, and the frames of some of them kept in memory
// (up to a byte budget) so that a delivery rarely reads the spool.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>

#include "detail/id_table.hpp"
#include "mqkit/message_id.hpp"

namespace mqkit::devices::detail {

class HeldMessages {
 public:
  explicit HeldMessages(std::size_t frame_memory) : frame_memory_(frame_memory) {}

  // A message stored for `groups` groups; its frame is kept if it fits.
  void add(const MessageId& id, std::uint32_t groups, std::string_view frame) {
    const bool keep = frame_bytes_ + frame.size() <= frame_memory_;
    if (keep) frame_bytes_ += frame.size();
    messages_.try_emplace(id, keep ? Entry(frame, groups) : Entry(groups));
  }
  // On recovery: one more group that has the message pending (its frame
  // stays in the spool).
  void add_group(const MessageId& id) {
    ++(*messages_.try_emplace(id, Entry(0)).first).second.remaining;
  }

  bool holds(const MessageId& id) const { return messages_.contains(id); }
  // The frame kept in memory; empty when it is read from the spool.
  std::string_view kept_frame(const MessageId& id) const {
    auto it = messages_.find(id);
    return it == messages_.end() ? std::string_view{} : it->second.frame();
  }
  // One group is done with the message; the last one lets it go.
  void release(const MessageId& id) {
    auto it = messages_.find(id);
    if (it == messages_.end()) return;
    if (--it->second.remaining == 0) {
      frame_bytes_ -= it->second.frame().size();
      messages_.erase(it);
    }
  }

  std::size_t size() const noexcept { return messages_.size(); }
  std::size_t frame_bytes() const noexcept { return frame_bytes_; }

 private:
  // 16 bytes (a std::string would add 16 more to every held message, kept
  // in memory or not; a million pending messages are what this is sized for).
  class Entry {
   public:
    Entry() = default;
    explicit Entry(std::uint32_t groups) : remaining(groups) {}
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

  std::size_t frame_memory_;
  std::size_t frame_bytes_ = 0;
  mqkit::detail::IdTable<Entry> messages_;
};

}  // namespace mqkit::devices::detail
