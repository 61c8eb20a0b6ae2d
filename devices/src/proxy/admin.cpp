// Admin: 'group ls', 'group rm', 'group pause', 'group resume', 'dlq rm'.
#include "proxy/admin.hpp"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string_view>

#include "mqkit/duration.hpp"
#include "mqkit/error.hpp"

#include "proxy/groups.hpp"
#include "proxy/redelivery.hpp"
#include "proxy/workers.hpp"

namespace mqkit::devices::detail {

std::string Admin::run(const std::vector<std::string>& command, std::vector<AdminRow>& rows,
                       bool& groups_changed) {
  if (command.size() == 2 && command[0] == "group" && command[1] == "ls") {
    list_groups(rows);
    return {};
  }
  if (command.size() == 3 && command[0] == "group" && command[1] == "rm") {
    auto it = groups_.by_name().find(command[2]);
    if (it == groups_.by_name().end()) return "no group named '" + command[2] + "'";
    const std::size_t removed = delete_group(it->second);
    rows.push_back({{"group", command[2]}, {"removed_pending", std::to_string(removed)}});
    groups_changed = true;
    return {};
  }
  if (command.size() == 3 && command[0] == "group" &&
      (command[1] == "pause" || command[1] == "resume")) {
    auto it = groups_.by_name().find(command[2]);
    if (it == groups_.by_name().end()) return "no group named '" + command[2] + "'";
    const bool pause = command[1] == "pause";
    try {
      groups_.set_paused(it->second, pause);
    } catch (const Error& e) {
      return std::string("cannot ") + (pause ? "pause" : "resume") + " group '" + command[2] +
             "': " + e.what();
    }
    rows.push_back({{"group", command[2]}, {"state", pause ? "paused" : "active"}});
    groups_changed = true;
    return {};
  }
  if (command.size() >= 3 && command[0] == "dlq" && command[1] == "rm")
    return remove_dead_letters(command, rows);
  return "unknown admin command: the proxy answers 'stats', 'group ls', 'group rm NAME', "
         "'group pause NAME', 'group resume NAME', 'dlq rm ID[:GROUP]...'";
}

namespace {

std::string own_settings(const GroupSettings& settings) {
  std::string keys;
  for (const auto& word : settings.words())
    keys += (keys.empty() ? "" : ",") + word.substr(0, word.find('='));
  return keys.empty() ? "-" : keys;
}

}  // namespace

void Admin::list_groups(std::vector<AdminRow>& rows) const {
  for (const auto& [name, index] : groups_.by_name()) {
    const ConsumerGroup& g = groups_[index];
    std::string filters;
    for (const auto& p : g.patterns()) filters += (filters.empty() ? "" : " ") + p;
    rows.push_back({{"group", name},
                    {"filters", filters},
                    {"workers", std::to_string(g.workers.size())},
                    {"pending", std::to_string(g.pending())},
                    {"scheduled", std::to_string(g.scheduled.size())},
                    {"in_flight", std::to_string(g.in_flight.size())},
                    {"delivered", std::to_string(g.delivered)},
                    {"acked", std::to_string(g.acked)},
                    {"retried", std::to_string(g.retried)},
                    {"dead", std::to_string(g.dead)},
                    {"state", g.paused ? "paused" : "active"},
                    {"max_attempts", std::to_string(g.retry.max_attempts)},
                    {"ack_timeout", format_duration(g.ack_timeout)},
                    {"backoff", g.retry.to_string()},
                    // Which of the three are the group's own (the rest are the proxy's).
                    {"own_settings", own_settings(g.settings)}});
  }
}

std::size_t Admin::delete_group(std::uint32_t index) {
  ConsumerGroup& g = groups_[index];
  std::vector<MessageId> ids(g.ready.begin(), g.ready.end());
  for (const auto& id : g.scheduled.ids()) ids.push_back(id);
  for (const auto& [id, d] : g.in_flight) ids.push_back(id);
  redelivery_.drop_group(index, ids);
  for (const auto& id : ids) {
    spool_.ack(id, g.name, nullptr);
    frames_.release(id);
    redelivery_.forget_unreadable(id);
  }
  spool_.forget_group(g.name);  // its place in the spool goes to the next new group
  workers_.drop_group(g, back_);
  groups_.erase(index);
  return ids.size();
}

std::string Admin::remove_dead_letters(const std::vector<std::string>& command,
                                       std::vector<AdminRow>& rows) {
  // Dead letters replayed or purged by `mqkit dlq`: tombstones, durable
  // before the answer.
  // Each word is ID:GROUP (one dead letter) or ID (all of the message's).
  // A replayed copy was confirmed by the main spool, under interval
  // before its sync: synced first, or a power loss could keep the
  // tombstone and take the copy (the message in neither).
  if (const int err = spool_.sync(); err != 0)
    return "cannot remove dead letters: the spool cannot sync (" + std::string(std::strerror(err)) +
           "); try again";
  // A tombstone that could not be written (EIO, a full disk) is no
  // removal: the answer says so instead of "removed" (flush() waits for
  // every completion, which run on the DLQ's writer thread).
  std::atomic<int> failed_error{0};
  auto note = [&failed_error](AppendResult r) {
    if (!r) failed_error = r.error != 0 ? r.error : EIO;
  };
  std::size_t removed = 0;
  for (std::size_t i = 2; i < command.size() && failed_error == 0; ++i) {
    const std::string_view word = command[i];
    const auto colon = word.find(':');
    const auto id = MessageId::parse(word.substr(0, colon));
    if (!id) return "'" + command[i] + "' is not a message id (ID or ID:GROUP)";
    if (colon == std::string_view::npos) {
      for (std::size_t n = 0; n < Spool::kMaxGroups; ++n) {  // one group's at a time
        auto stored = dlq_.read(*id);
        if (!stored || !stored->dead_letter) break;
        dlq_.remove_dead_letter(*id, stored->dead_letter->group, note);
        dlq_.flush();  // the index forgets it once durable
        if (failed_error != 0) break;
        ++removed;
      }
      continue;
    }
    const std::string group(word.substr(colon + 1));
    if (!dlq_.read_dead_letter(*id, group)) continue;
    dlq_.remove_dead_letter(*id, group, note);
    ++removed;
  }
  dlq_.flush();
  if (const int err = failed_error; err != 0)
    return "cannot remove dead letters: the dead-letter spool could not write a tombstone (" +
           std::string(std::strerror(err)) + "); try again";
  rows.push_back({{"removed", std::to_string(removed)}});
  return {};
}

}  // namespace mqkit::devices::detail
