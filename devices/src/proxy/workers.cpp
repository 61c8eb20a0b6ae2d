// Workers: attach checks, joining and leaving groups, heartbeats.
#include "proxy/workers.hpp"

#include "mqkit/error.hpp"
#include "mqkit/topic_filter.hpp"
#include "names.hpp"
#include "proxy/groups.hpp"
#include "router_peers.hpp"

namespace mqkit::devices::detail {

using namespace mqkit::detail::protocol;

std::string Workers::attach_error(const CommandFrame& cmd, Groups& groups) {
  if (!valid_name(cmd.group))
    return "group name '" + cmd.group +
           "' is not valid: use 1-128 letters, digits, '-', '_' or '.'";
  try {
    for (const auto& p : cmd.filters) [[maybe_unused]] const TopicFilter parsed(p);
  } catch (const Error& e) {
    return e.what();
  }
  if (auto* existing = groups.find(cmd.group);
      existing != nullptr && !cmd.filters.empty() && existing->patterns() != cmd.filters) {
    std::string have;
    for (const auto& p : existing->patterns()) have += " " + p;
    return "group '" + cmd.group + "' exists with filters" + have +
           "; attach without filters or with the same ones";
  }
  return {};
}

WorkerState& Workers::join(const std::string& worker, std::uint32_t index, ConsumerGroup& g) {
  auto& w = workers_.emplace(worker, WorkerState{.group = index, .last_heard = Clock::now()})
                .first->second;
  g.workers.push_back(worker);
  return w;
}

void Workers::remove(ConsumerGroup& g, const std::string& worker) {
  std::erase(g.workers, worker);
  workers_.erase(worker);
}

void Workers::drop_group(ConsumerGroup& g, RouterPeers back) {
  for (const auto& worker : g.workers) {
    back.reply_error(worker, std::string(kNotAttached) + ": group '" + g.name + "' was deleted");
    workers_.erase(worker);
  }
}

void Workers::heartbeat(Clock::time_point now, std::chrono::milliseconds interval, RouterPeers back,
                        std::vector<std::pair<std::string, std::string>>& lost) {
  static const std::string beat = encode_command({.command = Command::heartbeat});
  for (const auto& [worker, w] : workers_) {
    if (now - w.last_heard > kMissedHeartbeats * interval)
      lost.emplace_back(worker, "missed heartbeats");
    else if (back.send(worker, beat) == Sent::gone)
      lost.emplace_back(worker, "disconnected");
  }
}

}  // namespace mqkit::devices::detail
