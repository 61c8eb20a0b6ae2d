// Groups: declaring, forgetting and recovering the proxy's consumer groups,
// and routing topics to them.
#include "proxy/groups.hpp"

#include "mqkit/error.hpp"
#include "names.hpp"

namespace mqkit::devices::detail {

void Groups::recover(Spool& spool,
                     const std::map<std::string, std::vector<std::string>>& configured) {
  auto saved = load_groups(spool_dir_);
  auto table = saved.value_or(GroupTable{});
  for (const auto& [name, patterns] : configured) table[name] = patterns;
  for (const auto& name : spool.groups()) {
    if (table.contains(name)) continue;
    if (!saved) {  // a spool from before the GROUPS file: its records name the groups
      table.emplace(name, std::vector<std::string>{});
      continue;
    }
    // Deleted (`group rm`) before its ACKs were durable: finish the deletion.
    for (const auto& id : spool.pending(name)) spool.ack(id, name, nullptr);
    spool.forget_group(name);
  }
  for (const auto& [name, patterns] : table) {
    if (!valid_name(name))
      throw Error(errc::bad_argument,
                  "group name '" + name + "' may only hold letters, digits, '-', '_' and '.'");
    ConsumerGroup& g = *slots_[declare(name, patterns)];
    if (!patterns.empty() && g.patterns() != patterns) {  // the configuration wins
      g.filters.clear();
      route_cache_.clear();
      for (const auto& p : patterns) g.filters.emplace_back(p);
    }
    for (const auto& id : spool.pending(name)) {
      g.ready.push_back(id);
      if (auto h = spool.history(id, name)) g.failures[id] = *h;
    }
  }
  save();
}

std::uint32_t Groups::declare(const std::string& name, const std::vector<std::string>& patterns) {
  if (auto it = index_.find(name); it != index_.end()) return it->second;
  if (index_.size() >= Spool::kMaxGroups)
    throw Error(errc::bad_argument, "cannot create group '" + name + "': a proxy holds at most " +
                                        std::to_string(Spool::kMaxGroups) +
                                        " groups (remove one with `mqkit group rm`)");
  auto g = std::make_unique<ConsumerGroup>();
  g->name = name;
  for (const auto& p : patterns.empty() ? std::vector<std::string>{"#"} : patterns)
    g->filters.emplace_back(p);
  // On disk first: a group the GROUPS file does not name would be taken
  // for a removed one at the next start, and its messages acked away.
  auto groups = table();
  groups[name] = g->patterns();
  save_groups(spool_dir_, groups);
  const auto index = static_cast<std::uint32_t>(slots_.size());
  slots_.push_back(std::move(g));
  index_[name] = index;
  route_cache_.clear();
  return index;
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
  for (const auto& [name, index] : index_) out[name] = slots_[index]->patterns();
  return out;
}

}  // namespace mqkit::devices::detail
