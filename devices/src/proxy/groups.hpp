// Groups: the proxy's consumer groups, by slot and by name; which groups a
// topic goes to (cached per topic); declaring and forgetting groups, and the
// GROUPS file that keeps them across a restart. A deleted group leaves its
// slot empty, so that timers and completions naming it go stale.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "mqkit/spool.hpp"
#include "proxy/group.hpp"
#include "proxy/group_file.hpp"

namespace mqkit::devices::detail {

// Which groups a topic goes to (and their names, as the spool wants them).
struct Route {
  std::vector<std::uint32_t> groups;
  std::vector<std::string> names;
};

class Groups {
 public:
  using Slots = std::vector<std::unique_ptr<ConsumerGroup>>;

  // `retry` and `ack_timeout` are the proxy's: what a group does not set.
  Groups(std::string spool_dir, const RetryPolicy& retry, std::chrono::milliseconds ack_timeout)
      : spool_dir_(std::move(spool_dir)), retry_(retry), ack_timeout_(ack_timeout) {}
  Groups(const Groups&) = delete;
  Groups& operator=(const Groups&) = delete;

  // Everything the spool holds goes back into its groups' queues, with the
  // failed-attempt counts it had. The GROUPS file, the configured groups
  // (whose filters and settings win; a group not configured keeps what the
  // file says) and the spool's records say which groups there are. Whether
  // a group is paused is the file's. Throws Error on a bad group name or an
  // unwritable GROUPS file.
  // Messages in `schedule` (their not_before times) that are not due at
  // `now_ms` go back to the groups' schedules, not to ready.
  void recover(Spool& spool, const std::map<std::string, std::vector<std::string>>& configured,
               const std::map<std::string, GroupSettings>& configured_settings,
               const std::unordered_map<MessageId, std::uint64_t>& schedule, std::uint64_t now_ms);

  // Creates the group (persisting it) or returns the existing one. Throws
  // Error when the proxy holds as many groups as it may, or the GROUPS file
  // cannot be written.
  std::uint32_t declare(const std::string& name, const std::vector<std::string>& patterns);

  // Forgets the group (its messages must be settled already): its slot
  // stays empty.
  void erase(std::uint32_t index);

  // Pauses or resumes the group, on disk before it takes effect. Throws
  // Error (and changes nothing) when the GROUPS file cannot be written.
  void set_paused(std::uint32_t index, bool paused);

  // The groups a topic goes to, cached per topic (and per target group).
  std::shared_ptr<const Route> route(std::string_view topic,
                                     const std::optional<std::string>& target);

  ConsumerGroup* find(const std::string& name) {
    auto it = index_.find(name);
    return it == index_.end() ? nullptr : slots_[it->second].get();
  }
  std::uint32_t index_of(const std::string& name) const { return index_.at(name); }
  // Null once deleted (or never made: a stale index).
  ConsumerGroup* at(std::uint32_t index) noexcept {
    return index < slots_.size() ? slots_[index].get() : nullptr;
  }
  ConsumerGroup& operator[](std::uint32_t index) noexcept { return *slots_[index]; }

  const Slots& slots() const noexcept { return slots_; }
  const std::map<std::string, std::uint32_t>& by_name() const noexcept { return index_; }

 private:
  GroupTable table() const;
  // A new group's slot, not saved (recover saves all of them at once).
  ConsumerGroup& make(const std::string& name, const std::vector<std::string>& patterns);
  void save() { save_groups(spool_dir_, table()); }
  // The group's effective retry policy and ack timeout, from its settings.
  void resolve(ConsumerGroup& g) const {
    g.retry = g.settings.retry(retry_);
    g.ack_timeout = g.settings.ack_timeout_or(ack_timeout_);
  }

  std::string spool_dir_;
  RetryPolicy retry_;
  std::chrono::milliseconds ack_timeout_;
  Slots slots_;  // deleted groups leave a null slot
  std::map<std::string, std::uint32_t> index_;
  std::unordered_map<std::string, std::shared_ptr<const Route>> route_cache_;  // per topic
  std::string route_key_;
};

}  // namespace mqkit::devices::detail
