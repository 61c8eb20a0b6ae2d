// Groups: declaring, forgetting and recovering the proxy's consumer groups,
// and routing topics to them.
#include "proxy/groups.hpp"

#include "mqkit/error.hpp"
#include "names.hpp"

namespace mqkit::devices::detail {

void Groups::recover(Spool& spool,
                     const std::map<std::string, std::vector<std::string>>& configured,
                     const std::map<std::string, GroupSettings>& configured_settings,
                     const std::unordered_map<MessageId, std::uint64_t>& schedule,
                     std::uint64_t now_ms) {
  auto saved = load_groups(spool_dir_);
  auto table = saved.value_or(GroupTable{});
  for (const auto& [name, patterns] : configured) {
    GroupRecord& record = table[name];
    record.filters = patterns;
    auto settings = configured_settings.find(name);
    record.settings = settings == configured_settings.end() ? GroupSettings{} : settings->second;
  }
  // Every name is checked before anything is written: a refused start
  // leaves the GROUPS file as it was (rewritten with some groups only, the
  // next start would take the others for deleted ones and ack their
  // messages away).
  for (const auto& [name, record] : table)
    if (!valid_name(name))
      throw Error(errc::bad_argument,
                  "group name '" + name + "' may only hold letters, digits, '-', '_' and '.'");
  for (const auto& name : spool.groups()) {
    if (table.contains(name)) continue;
    if (!saved) {  // a spool from before the GROUPS file: its records name the groups
      table.emplace(name, GroupRecord{});
      continue;
    }
    // Deleted (`group rm`) before its ACKs were durable: finish the deletion.
    for (const auto& id : spool.pending(name)) spool.ack(id, name, nullptr);
    spool.forget_group(name);
  }
  if (table.size() > Spool::kMaxGroups)
    throw Error(errc::bad_argument, "a proxy holds at most " + std::to_string(Spool::kMaxGroups) +
                                        " groups; " + std::to_string(table.size()) +
                                        " are declared or stored");
  for (const auto& [name, record] : table) {
    if (index_.contains(name)) continue;
    ConsumerGroup& g = make(name, record.filters);
    g.settings = record.settings;
    g.paused = record.paused;
    resolve(g);
    for (const auto& id : spool.pending(name)) {
      if (auto at = schedule.find(id); at != schedule.end() && at->second > now_ms)
        g.scheduled.add(at->second, id);
      else
        g.ready.push_back(id);
      if (auto h = spool.history(id, name)) g.failures[id] = *h;
    }
  }
  save();  // once, with every group
}

std::uint32_t Groups::declare(const std::string& name, const std::vector<std::string>& patterns) {
  if (auto it = index_.find(name); it != index_.end()) return it->second;
  if (index_.size() >= Spool::kMaxGroups)
    throw Error(errc::bad_argument, "cannot create group '" + name + "': a proxy holds at most " +
                                        std::to_string(Spool::kMaxGroups) +
                                        " groups (remove one with `mqkit group rm`)");
  // On disk first: a group the GROUPS file does not name would be taken
  // for a removed one at the next start, and its messages acked away.
  auto groups = table();
  groups[name].filters = patterns.empty() ? std::vector<std::string>{"#"} : patterns;
  save_groups(spool_dir_, groups);
  ConsumerGroup& g = make(name, patterns);
  resolve(g);  // a group made by a worker's ATTACH has the proxy's settings
  return index_.at(name);
}

ConsumerGroup& Groups::make(const std::string& name, const std::vector<std::string>& patterns) {
  auto g = std::make_unique<ConsumerGroup>();
  g->name = name;
  for (const auto& p : patterns.empty() ? std::vector<std::string>{"#"} : patterns)
    g->filters.emplace_back(p);
  const auto index = static_cast<std::uint32_t>(slots_.size());
  slots_.push_back(std::move(g));
  index_[name] = index;
  route_cache_.clear();
  return *slots_.back();
}

void Groups::set_paused(std::uint32_t index, bool paused) {
  ConsumerGroup& g = *slots_[index];
  if (g.paused == paused) return;
  g.paused = paused;
  try {
    save();
  } catch (...) {
    g.paused = !paused;
    throw;
  }
}

void Groups::erase(std::uint32_t index) {
  index_.erase(slots_[index]->name);
  route_cache_.clear();
  slots_[index].reset();  // the slot stays empty: timers naming it go stale
  save();
}

std::shared_ptr<const Route> Groups::route(std::string_view topic,
                                           const std::optional<std::string>& target) {
  route_key_.assign(target ? "\x01" + *target : std::string(topic));
  if (auto it = route_cache_.find(route_key_); it != route_cache_.end()) return it->second;
  if (route_cache_.size() >= 4096) route_cache_.clear();  // many one-off topics
  auto made = std::make_shared<Route>();
  Route& r = *made;
  if (target) {
    if (auto it = index_.find(*target); it != index_.end()) r.groups.push_back(it->second);
  } else {
    for (const auto& [name, index] : index_)
      if (slots_[index]->matches(topic)) r.groups.push_back(index);
  }
  for (auto g : r.groups) r.names.push_back(slots_[g]->name);
  route_cache_.emplace(route_key_, made);
  return made;
}

GroupTable Groups::table() const {
  GroupTable out;
  for (const auto& [name, index] : index_) {
    const ConsumerGroup& g = *slots_[index];
    out[name] = {g.patterns(), g.settings, g.paused};
  }
  return out;
}

}  // namespace mqkit::devices::detail
