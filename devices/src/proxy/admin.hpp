// Admin: the proxy's admin commands from the stats endpoint: 'group ls',
// 'group rm NAME' (acks away everything the group holds and forgets it),
// 'group pause NAME' and 'group resume NAME' (kept in the GROUPS file before
// the answer) and 'dlq rm ID[:GROUP]...' (dead letters replayed or purged by
// `mqkit dlq`).
// Runs on the proxy's thread, between loop turns.
#pragma once

#include <string>
#include <vector>

#include "mqkit/devices/stats.hpp"
#include "mqkit/spool.hpp"
#include "proxy/frame_cache.hpp"
#include "router_peers.hpp"

namespace mqkit::devices::detail {

class Groups;
class Workers;
class Redelivery;

class Admin {
 public:
  // All references outlive this.
  Admin(Groups& groups, Workers& workers, Redelivery& redelivery, Spool& spool, Spool& dlq,
        FrameCache& frames, RouterPeers back)
      : groups_(groups),
        workers_(workers),
        redelivery_(redelivery),
        spool_(spool),
        dlq_(dlq),
        frames_(frames),
        back_(back) {}

  // Fills `rows` and returns empty, or returns what is wrong. Sets
  // `groups_changed` when a group was deleted, paused or resumed.
  std::string run(const std::vector<std::string>& command, std::vector<AdminRow>& rows,
                  bool& groups_changed);

 private:
  void list_groups(std::vector<AdminRow>& rows) const;
  // Acks away everything pending for the group and forgets it.
  std::size_t delete_group(std::uint32_t index);
  std::string remove_dead_letters(const std::vector<std::string>& command,
                                  std::vector<AdminRow>& rows);

  Groups& groups_;
  Workers& workers_;
  Redelivery& redelivery_;
  Spool& spool_;
  Spool& dlq_;
  FrameCache& frames_;
  RouterPeers back_;  // to tell a deleted group's workers
};

}  // namespace mqkit::devices::detail
