// ProxyPump: the proxy's state and its event loop turn. One thread owns all
// of it; the spool's writer thread only hands completions over through a
// mutex-guarded list and an eventfd, so the loop never waits for the disk.
#include "mqkit/devices/proxy.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <unordered_map>
#include <unordered_set>

#include "detail/counter.hpp"
#include "detail/id_table.hpp"
#include "detail/wall_clock.hpp"
#include "envelope/codec.hpp"
#include "mqkit/error.hpp"
#include "names.hpp"
#include "protocol/commands.hpp"
#include "proxy/frame_cache.hpp"
#include "proxy/group.hpp"
#include "proxy/group_file.hpp"
#include "proxy/wakeup.hpp"
#include "publish_intake.hpp"
#include "pump.hpp"
#include "router_peers.hpp"
#include "wire/socket.hpp"

namespace mqkit::devices {
namespace {

using namespace mqkit::detail::protocol;
using detail::Clock;
using detail::ConsumerGroup;
using detail::FailureHistory;
namespace md = mqkit::detail;

constexpr int kMissedHeartbeats = 5;   // a worker silent this many intervals is lost
constexpr std::size_t kMaxBatch = 64;  // messages in one DELIVER
// A stored frame that did not read back is tried again this much later.
constexpr std::chrono::milliseconds kUnreadableRetryEvery{1000};
// What one worker may hold: its credit (messages) is capped, and so are the
// bytes sent to it that it has not answered, so that a worker that never
// reads cannot make the proxy queue its spool in memory.
constexpr std::uint32_t kMaxCredit = 65536;
constexpr std::uint64_t kMaxWorkerBytes = 8 * 1024 * 1024;

using detail::reply_error;
using detail::send_command;
using detail::Sent;
using detail::view;

using mqkit::detail::now_ms;

struct WorkerState {
  std::uint32_t group = 0;  // index into groups_
  std::uint32_t prefetch = 1;
  std::uint32_t unacked = 0;
  std::uint64_t unacked_bytes = 0;  // of the deliveries in flight to it
  // Of its deliveries that timed out: they may still wait in its socket
  // queue, unread, until it answers anything (ack, nack, in_progress).
  std::uint64_t unanswered_bytes = 0;
  Clock::time_point last_heard;
  std::uint32_t minor = 0;  // its protocol's minor version (from ATTACH)

  bool full() const noexcept {
    return unacked >= prefetch || unacked_bytes + unanswered_bytes >= kMaxWorkerBytes;
  }
  void release(std::uint32_t bytes) noexcept {
    if (unacked > 0) --unacked;
    unacked_bytes -= std::min<std::uint64_t>(unacked_bytes, bytes);
  }
};

// Which groups a topic goes to (and their names, as the spool wants them).
struct Route {
  std::vector<std::uint32_t> groups;
  std::vector<std::string> names;
};

// A message being stored (the intake answers its re-sends meanwhile).
struct Publishing {
  MessageId id;
  std::string producer;
  zmq::message_t frame;                // as received: kept, not copied, until it is durable
  std::shared_ptr<const Route> route;  // the cache may be cleared meanwhile
  std::uint64_t arrival = 0;           // its place among all publishes, in arrival order
};

// A producer with a publish refused `full`: the spool refuses its later
// publishes (keyed by the producer) until it sends that one again, so no
// later, smaller message is stored before it (a key's order holds).
struct FullLatch {
  MessageId first;  // the earliest of its refused publishes
  std::uint64_t arrival = 0;
  std::chrono::steady_clock::time_point since;
};
// A producer that gave its refused message up is refused no longer than this.
constexpr std::chrono::seconds kFullLatchTimeout{5};

struct SpoolDone {
  Publishing* publishing;  // a node of publishing_ (stable until erased)
  AppendResult result;
};

// A dead letter's DLQ append finished (on the DLQ's writer thread).
// An ATTEMPT record written, or not.
struct AttemptDone {
  std::uint32_t group;
  MessageId id;
  AppendResult result;
};

struct DeadLetterDone {
  std::uint32_t group;
  MessageId id;
  FailureHistory history;  // to put back if the DLQ refused it
  DeadLetterInfo info;
  AppendResult result;
};

// An ack deadline; stale once the delivery was settled or its deadline moved.
struct Deadline {
  Clock::time_point at;
  std::uint32_t group;
  MessageId id;
};

class ProxyPump final : public detail::Pump, private detail::PublishSink {
 public:
  explicit ProxyPump(const ProxyOptions& o)
      : options_(o),
        spool_(o.spool_dir, recalling(o.spool, o.dedup_window)),
        dlq_(o.dlq_dir.empty() ? o.spool_dir + ".dlq" : o.dlq_dir,
             dead_letter_options(o.spool, o.dlq_max_size)),
        front_(md::open_socket(zmq::socket_type::router, o.socket)),
        back_(md::open_socket(zmq::socket_type::router, o.socket)),
        frames_(o.frame_memory),
        intake_(o.dedup_window, o.socket.limits) {
    back_.set(zmq::sockopt::router_mandatory, true);  // a gone worker is an error, not a drop
    // Credit and kMaxWorkerBytes already bound what each worker holds; a
    // queue limit on top would only make a live worker look busy.
    back_.set(zmq::sockopt::sndhwm, 0);
    if (options_.heartbeat.count() <= 0) options_.heartbeat = std::chrono::milliseconds(1000);
    recover();
    front_endpoint_ = md::attach(front_, bind(o.front));
    back_endpoint_ = md::attach(back_, bind(o.back));
    next_heartbeat_ = Clock::now() + options_.heartbeat;
    refresh_counters();
  }

  const char* kind() const noexcept override { return "proxy"; }

  void announce_admin_endpoint(const std::string& endpoint) {
    spool_.set_admin_endpoint(endpoint);
    dlq_.set_admin_endpoint(endpoint);
  }
  std::string in_endpoint() const override { return front_endpoint_; }
  std::string out_endpoint() const override { return back_endpoint_; }

  std::vector<zmq::socket_t*> bound_sockets() override { return {&front_, &back_}; }

  std::size_t poll_items(zmq::pollitem_t* items) override {
    items[0] = {front_.handle(), 0, ZMQ_POLLIN, 0};
    items[1] = {back_.handle(), 0, ZMQ_POLLIN, 0};
    items[2] = {nullptr, wakeup_.fd(), ZMQ_POLLIN, 0};
    return 3;
  }

  std::chrono::milliseconds poll_timeout() const override {
    auto next = next_heartbeat_;
    if (!retries_.empty()) next = std::min(next, retries_.begin()->first);
    if (!deadlines_.empty()) next = std::min(next, deadlines_.front().at);
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(next - Clock::now());
    return std::max(left + std::chrono::milliseconds(1), std::chrono::milliseconds(0));
  }

  void pump(const zmq::pollitem_t* items) override {
    if (items[2].revents & ZMQ_POLLIN) wakeup_.drain();
    take_spool_completions();
    for (int i = 0; i < 256 && intake_.read(front_, *this); ++i) {
    }
    for (int i = 0; i < 1024 && read_back(); ++i) {
    }
    run_timers();
    for (auto& group : groups_)
      if (group) dispatch(*group);
    intake_.end_turn(front_);
    if (Clock::now() >= next_snapshot_) refresh_counters();
  }

  Counters counters() const override {
    Counters out{{"published", intake_.published().get()},
                 {"stored", stored_.get()},
                 {"unroutable", intake_.unroutable().get()},
                 {"duplicate", intake_.duplicates().get()},
                 {"full", intake_.full().get()},
                 {"rejected", intake_.rejected().get()},
                 {"delivered", delivered_.get()},
                 {"acked", acked_.get()},
                 {"retried", retried_.get()},
                 {"dead", dead_.get()},
                 {"dead_letter_failed", dead_letter_failed_.get()},
                 {"unreadable", unreadable_.get()},
                 {"malformed", malformed_.get() + intake_.malformed().get()},
                 {"lost_workers", lost_workers_.get()},
                 {"spool_bytes", spool_.bytes()},
                 {"dlq_bytes", dlq_.bytes()}};
    std::lock_guard lock(snapshot_mutex_);
    out.insert(out.end(), snapshot_.begin(), snapshot_.end());
    return out;
  }

  // Totals and per-group figures, copied out of the loop's own state.
  void refresh_counters() override {
    Counters snapshot;
    std::uint64_t pending = 0;
    for (const auto& g : groups_) {
      if (!g) continue;
      pending += g->pending();
      const std::string prefix = "group." + g->name + ".";
      snapshot.emplace_back(prefix + "pending", g->pending());
      snapshot.emplace_back(prefix + "in_flight", g->in_flight.size());
      snapshot.emplace_back(prefix + "workers", g->workers.size());
      snapshot.emplace_back(prefix + "delivered", g->delivered);
      snapshot.emplace_back(prefix + "acked", g->acked);
      snapshot.emplace_back(prefix + "retried", g->retried);
      snapshot.emplace_back(prefix + "dead", g->dead);
    }
    snapshot.insert(snapshot.begin(), {{"pending", pending}, {"workers", workers_.size()}});
    std::lock_guard lock(snapshot_mutex_);
    snapshot_ = std::move(snapshot);
    next_snapshot_ = Clock::now() + std::chrono::milliseconds(200);
  }

  std::string admin(const std::vector<std::string>& command, std::vector<AdminRow>& rows) override {
    if (command.size() == 2 && command[0] == "group" && command[1] == "ls") {
      for (const auto& [name, index] : group_index_) {
        const ConsumerGroup& g = *groups_[index];
        std::string filters;
        for (const auto& p : g.patterns()) filters += (filters.empty() ? "" : " ") + p;
        rows.push_back({{"group", name},
                        {"filters", filters},
                        {"workers", std::to_string(g.workers.size())},
                        {"pending", std::to_string(g.pending())},
                        {"in_flight", std::to_string(g.in_flight.size())},
                        {"delivered", std::to_string(g.delivered)},
                        {"acked", std::to_string(g.acked)},
                        {"retried", std::to_string(g.retried)},
                        {"dead", std::to_string(g.dead)}});
      }
      return {};
    }
    if (command.size() == 3 && command[0] == "group" && command[1] == "rm") {
      auto it = group_index_.find(command[2]);
      if (it == group_index_.end()) return "no group named '" + command[2] + "'";
      const std::size_t removed = delete_group(it->second);
      rows.push_back({{"group", command[2]}, {"removed_pending", std::to_string(removed)}});
      refresh_counters();
      return {};
    }
    if (command.size() >= 3 && command[0] == "dlq" && command[1] == "rm") {
      // Dead letters replayed or purged by `mqkit dlq`: tombstones, durable
      // before the answer.
      // Each word is ID:GROUP (one dead letter) or ID (all of the message's).
      // A replayed copy was confirmed by the main spool, under interval
      // before its sync: synced first, or a power loss could keep the
      // tombstone and take the copy (the message in neither).
      if (const int err = spool_.sync(); err != 0)
        return "cannot remove dead letters: the spool cannot sync (" +
               std::string(std::strerror(err)) + "); try again";
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
    return "unknown admin command: the proxy answers 'stats', 'group ls', 'group rm NAME', "
           "'dlq rm ID[:GROUP]...'";
  }

 private:
  // The dedup window survives a restart: rebuilt from the spool's records.
  static SpoolOptions recalling(SpoolOptions o, std::size_t window) {
    o.recall_recent_ids = window;
    return o;
  }
  static SpoolOptions dead_letter_options(SpoolOptions o, std::uint64_t max_size) {
    o.dead_letters = true;
    o.max_size = max_size;  // its own limit: a full spool must not stop dead letters
    // The main spool lets a dead message go once its dead letter is stored:
    // under interval that must mean synced, or a power loss could take the
    // dead letter and keep the ack (the message in neither).
    if (o.durability == Durability::interval) o.durability = Durability::always;
    return o;
  }

  // ---- groups ----

  ConsumerGroup* find_group(const std::string& name) {
    auto it = group_index_.find(name);
    return it == group_index_.end() ? nullptr : groups_[it->second].get();
  }

  // Creates the group (persisting it) or returns the existing one.
  std::uint32_t declare_group(const std::string& name, const std::vector<std::string>& patterns) {
    if (auto it = group_index_.find(name); it != group_index_.end()) return it->second;
    if (group_index_.size() >= Spool::kMaxGroups)
      throw Error(errc::bad_argument, "cannot create group '" + name + "': a proxy holds at most " +
                                          std::to_string(Spool::kMaxGroups) +
                                          " groups (remove one with `mqkit group rm`)");
    auto g = std::make_unique<ConsumerGroup>();
    g->name = name;
    for (const auto& p : patterns.empty() ? std::vector<std::string>{"#"} : patterns)
      g->filters.emplace_back(p);
    // On disk first: a group the GROUPS file does not name would be taken
    // for a removed one at the next start, and its messages acked away.
    auto table = group_table();
    table[name] = g->patterns();
    detail::save_groups(options_.spool_dir, table);
    const auto index = static_cast<std::uint32_t>(groups_.size());
    groups_.push_back(std::move(g));
    group_index_[name] = index;
    route_cache_.clear();
    return index;
  }

  detail::GroupTable group_table() const {
    detail::GroupTable table;
    for (const auto& [name, index] : group_index_) table[name] = groups_[index]->patterns();
    return table;
  }
  void save_group_table() { detail::save_groups(options_.spool_dir, group_table()); }

  // Acks away everything pending for the group and forgets it.
  std::size_t delete_group(std::uint32_t index) {
    ConsumerGroup& g = *groups_[index];
    std::vector<MessageId> ids(g.ready.begin(), g.ready.end());
    for (const auto& [id, d] : g.in_flight) ids.push_back(id);
    for (auto it = retries_.begin(); it != retries_.end();) {
      if (it->second.first == index) {
        ids.push_back(it->second.second);
        it = retries_.erase(it);
      } else {
        ++it;
      }
    }
    for (const auto& id : ids) {
      spool_.ack(id, g.name, nullptr);
      frames_.release(id);
      forget_unreadable(id);
    }
    spool_.forget_group(g.name);  // its place in the spool goes to the next new group
    for (const auto& worker : g.workers) {
      reply_error(back_, worker,
                  std::string(kNotAttached) + ": group '" + g.name + "' was deleted");
      workers_.erase(worker);
    }
    group_index_.erase(g.name);
    route_cache_.clear();
    groups_[index].reset();  // the slot stays empty: timers naming it go stale
    save_group_table();
    return ids.size();
  }

  // Everything the spool holds goes back into its groups' queues, with the
  // failed-attempt counts it had.
  void recover() {
    for (const auto& id : spool_.take_recent_ids()) intake_.remember(id);
    auto saved = detail::load_groups(options_.spool_dir);
    auto table = saved.value_or(detail::GroupTable{});
    for (const auto& [name, patterns] : options_.groups) table[name] = patterns;
    for (const auto& name : spool_.groups()) {
      if (table.contains(name)) continue;
      if (!saved) {  // a spool from before the GROUPS file: its records name the groups
        table.emplace(name, std::vector<std::string>{});
        continue;
      }
      // Deleted (`group rm`) before its ACKs were durable: finish the deletion.
      for (const auto& id : spool_.pending(name)) spool_.ack(id, name, nullptr);
      spool_.forget_group(name);
    }
    for (const auto& [name, patterns] : table) {
      if (!detail::valid_name(name))
        throw Error(errc::bad_argument,
                    "group name '" + name + "' may only hold letters, digits, '-', '_' and '.'");
      ConsumerGroup& g = *groups_[declare_group(name, patterns)];
      if (!patterns.empty() && g.patterns() != patterns) {  // the configuration wins
        g.filters.clear();
        route_cache_.clear();
        for (const auto& p : patterns) g.filters.emplace_back(p);
      }
      for (const auto& id : spool_.pending(name)) {
        g.ready.push_back(id);
        intake_.remember(id);
        if (auto h = spool_.history(id, name)) g.failures[id] = *h;
      }
    }
    save_group_table();
  }

  // ---- producers ----

  // The groups a topic goes to, cached per topic (and per target group).
  std::shared_ptr<const Route> route(std::string_view topic,
                                     const std::optional<std::string>& target) {
    route_key_.assign(target ? "\x01" + *target : std::string(topic));
    if (auto it = route_cache_.find(route_key_); it != route_cache_.end()) return it->second;
    if (route_cache_.size() >= 4096) route_cache_.clear();  // many one-off topics
    auto made = std::make_shared<Route>();
    Route& r = *made;
    if (target) {
      if (auto it = group_index_.find(*target); it != group_index_.end())
        r.groups.push_back(it->second);
    } else {
      for (const auto& [name, index] : group_index_)
        if (groups_[index]->matches(topic)) r.groups.push_back(index);
    }
    for (auto g : r.groups) r.names.push_back(groups_[g]->name);
    route_cache_.emplace(route_key_, made);
    return made;
  }

  // ---- producers: new messages from the intake ----

  // Still held, whatever the dedup window says: a re-send is a duplicate.
  bool holds(const MessageId& id) const override { return spool_.holds(id); }

  // The refused one is here again: it goes first, unless one of this
  // producer's stores is still in progress (an earlier message may yet be
  // refused: its answer comes first, and the next round tries again). Its
  // answer may be `duplicate` (stored meanwhile from another connection):
  // the producer is let go all the same.
  void arrived(const std::string& producer, const MessageId& id) override {
    auto latch = full_latches_.find(producer);
    if (latch == full_latches_.end()) return;
    if ((latch->second.first == id && !intake_.in_progress(id) && !storing_for(producer)) ||
        Clock::now() - latch->second.since >= kFullLatchTimeout)
      release_latch(latch);
  }

  bool store(detail::Publish& m) override {
    const MessageId& id = m.id;
    const std::string& producer = m.producer;
    auto r = route(m.message.topic(), m.target_group);
    if (r->groups.empty()) {
      intake_.answer(producer, id, ConfirmStatus::unroutable,
                     m.target_group ? "the target group does not exist"
                                    : "no group's filters match the topic");
      return false;
    }
    auto [entry, fresh] = publishing_.try_emplace(id);
    if (!fresh) {  // never: the intake answers a re-send of a message in progress itself
      intake_.answer(producer, id, ConfirmStatus::rejected, "its earlier store is still under way");
      return false;
    }
    Publishing* p = &entry->second;
    *p = {id, producer, std::move(m.held), r, next_arrival_++};
    // The completion captures two pointers: small enough for std::function
    // to keep without allocating.
    try {
      spool_.publish(
          id, r->names, view(p->frame), [this, p](AppendResult result) { spool_done(p, result); },
          order_key(producer));
    } catch (const Error& e) {  // refused before its append started: nothing is in progress
      publishing_.erase(id);
      intake_.answer(producer, id, ConfirmStatus::rejected, e.what());
      return false;
    }
    return true;
  }

  // A producer's ordering key. libzmq's own identities (5 bytes) map to
  // their bytes, one to one; any other identity (a peer may choose its own)
  // to a hash with this proxy's secret salt, so that no peer can pick one
  // whose key holds another producer back.
  std::uint64_t order_key(const std::string& producer) const {
    if (producer.size() <= 7) {
      std::uint64_t key = (1ull << 63) | (std::uint64_t(producer.size()) << 56);
      for (std::size_t i = 0; i < producer.size(); ++i)
        key |= std::uint64_t(static_cast<unsigned char>(producer[i])) << (8 * i);
      return key;
    }
    const std::uint64_t h = std::hash<std::string_view>{}(producer) ^ key_salt_;
    const std::uint64_t mixed = (h * 0x9e3779b97f4a7c15ull) ^ (key_salt_ >> 7);
    return (mixed & ~(1ull << 63)) | 1;  // never 0 ("no key"), never a short identity's key
  }

  bool storing_for(const std::string& producer) const {
    return std::any_of(publishing_.begin(), publishing_.end(),
                       [&](const auto& entry) { return entry.second.producer == producer; });
  }

  // The producer's earliest refused publish, which must come again first.
  void latch(const Publishing& p) {
    auto [it, made] =
        full_latches_.try_emplace(p.producer, FullLatch{p.id, p.arrival, Clock::now()});
    if (!made && p.arrival < it->second.arrival) {
      it->second.first = p.id;
      it->second.arrival = p.arrival;
    }
  }

  void release_latch(std::unordered_map<std::string, FullLatch>::iterator latch) {
    spool_.release_order_key(order_key(latch->first));
    full_latches_.erase(latch);
  }

  // On the spool's writer thread: hand the result to the loop.
  void spool_done(Publishing* p, AppendResult r) {
    bool wake;
    {
      std::lock_guard lock(completions_mutex_);
      wake = completions_.empty();
      completions_.push_back({p, r});
    }
    if (wake) wakeup_.poke();
  }

  void take_spool_completions() {
    {
      std::lock_guard lock(completions_mutex_);
      taken_.swap(completions_);
      dead_taken_.swap(dead_completions_);
      attempts_taken_.swap(attempt_completions_);
    }
    for (auto& d : dead_taken_) dead_letter_done(d);
    dead_taken_.clear();
    for (const auto& a : attempts_taken_) attempt_done(a);
    attempts_taken_.clear();
    for (auto& c : taken_) {
      Publishing& p = *c.publishing;
      const MessageId id = p.id;
      if (c.result.status == AppendStatus::full) {
        latch(p);
        intake_.settle(id, ConfirmStatus::full, "the spool is full; retry later");
      } else if (!c.result) {
        intake_.settle(
            id, ConfirmStatus::rejected,
            "the spool could not store it: " + std::string(std::strerror(c.result.error)));
      } else {
        stored_.add();
        std::uint32_t remaining = 0;
        for (auto g : p.route->groups)
          if (groups_[g]) {
            groups_[g]->ready.push_back(id);
            ++remaining;
          }
        frames_.keep(id, remaining, view(p.frame));
        intake_.settle(id, ConfirmStatus::stored, "");
      }
      publishing_.erase(id);
    }
    taken_.clear();
  }

  // ---- workers ----

  bool read_back() {
    zmq::message_t identity, command;
    extra_frames_.clear();
    if (!detail::receive_command(back_, identity, command, extra_frames_)) return false;
    const bool extra = !extra_frames_.empty();
    const std::string worker(view(identity));
    const auto decoded = decode_command(view(command), cmd_);
    if (!decoded || extra) {
      malformed_.add();
      reply_error(back_, worker, decoded ? "worker commands are one frame" : decoded.detail);
      return true;
    }
    if (cmd_.command == Command::attach) {
      attach(worker, cmd_);
      return true;
    }
    auto it = workers_.find(worker);
    if (it == workers_.end()) {
      // A restarted proxy, or a worker given up as lost: it must attach again.
      if (cmd_.command != Command::detach)
        reply_error(back_, worker, std::string(kNotAttached) + ": send attach again");
      return true;
    }
    WorkerState& w = it->second;
    w.last_heard = Clock::now();
    ConsumerGroup& g = *groups_[w.group];
    // An answer shows it reads: what timed out has left its socket queue.
    if (cmd_.command == Command::ack || cmd_.command == Command::nack ||
        cmd_.command == Command::in_progress)
      w.unanswered_bytes = 0;
    switch (cmd_.command) {
      case Command::credit:
        w.prefetch = std::clamp<std::uint32_t>(cmd_.credit, 1, kMaxCredit);
        break;
      case Command::ack:
        for (const auto& id : cmd_.ids) ack(g, worker, w, id);
        break;
      case Command::nack:
        if (take_delivery(g, worker, w, cmd_.ids.at(0))) {
          if (cmd_.action == NackAction::dead)
            dead_letter(w.group, cmd_.ids[0], "nack dead", cmd_.reason, /*delivery_failed=*/true);
          else
            fail(w.group, cmd_.ids[0], cmd_.reason.empty() ? "nack" : cmd_.reason);
        }
        break;
      case Command::in_progress:
        for (std::size_t i = 0; i < cmd_.ids.size(); ++i)
          if (auto d = g.in_flight.find(cmd_.ids[i]);
              d != g.in_flight.end() && d->second.worker == worker) {
            d->second.deadline = Clock::now() + options_.ack_timeout;
            d->second.started = !cmd_.started || i < *cmd_.started;
            deadlines_.push_back({d->second.deadline, w.group, cmd_.ids[i]});
          }
        break;
      case Command::detach:
        detach(worker);
        break;
      case Command::heartbeat:
        break;
      default:
        malformed_.add();
        reply_error(back_, worker,
                    "workers may attach, credit, ack, nack, in_progress, heartbeat, detach");
    }
    return true;
  }

  void attach(const std::string& worker, const CommandFrame& cmd) {
    if (!detail::valid_name(cmd.group)) {
      reply_error(back_, worker,
                  "group name '" + cmd.group +
                      "' is not valid: use 1-128 letters, digits, '-', '_' or '.'");
      return;
    }
    std::vector<TopicFilter> parsed;
    try {
      for (const auto& p : cmd.filters) parsed.emplace_back(p);
    } catch (const Error& e) {
      reply_error(back_, worker, e.what());
      return;
    }
    if (auto* existing = find_group(cmd.group);
        existing != nullptr && !cmd.filters.empty() && existing->patterns() != cmd.filters) {
      std::string have;
      for (const auto& p : existing->patterns()) have += " " + p;
      reply_error(back_, worker,
                  "group '" + cmd.group + "' exists with filters" + have +
                      "; attach without filters or with the same ones");
      return;
    }
    std::uint32_t index;
    try {
      index = declare_group(cmd.group, cmd.filters);
    } catch (const Error& e) {
      reply_error(back_, worker, e.what());
      return;
    }
    auto it = workers_.find(worker);
    if (it != workers_.end() && it->second.group != index) {
      detach(worker);  // moving to another group: hand the old one's messages back
      it = workers_.end();
    }
    if (it == workers_.end()) {
      it = workers_.emplace(worker, WorkerState{.group = index, .last_heard = Clock::now()}).first;
      groups_[index]->workers.push_back(worker);
    }
    it->second.prefetch = std::clamp<std::uint32_t>(cmd.credit, 1, kMaxCredit);
    it->second.last_heard = Clock::now();
    it->second.minor = cmd.minor;
    CommandFrame reply{.command = Command::attached,
                       .group = cmd.group,
                       .filters = groups_[index]->patterns(),
                       .ack_timeout_ms = static_cast<std::uint64_t>(options_.ack_timeout.count()),
                       .heartbeat_ms = static_cast<std::uint64_t>(options_.heartbeat.count())};
    if (send_command(back_, worker, encode_command(reply)) == Sent::gone)
      lose_worker(worker, "gone");
  }

  // DETACH: unacked messages go back at once and cost no attempt.
  void detach(const std::string& worker) {
    auto w = workers_.find(worker);
    if (w == workers_.end()) return;
    ConsumerGroup& g = *groups_[w->second.group];
    std::vector<MessageId> handed_back;
    for (const auto& [id, d] : g.in_flight)
      if (d.worker == worker) handed_back.push_back(id);
    for (const auto& id : handed_back) {
      g.in_flight.erase(id);
      g.ready.push_front(id);
    }
    remove_worker(g, w);
  }

  // A worker that disconnected or stopped heartbeating: its deliveries failed.
  void lose_worker(const std::string& worker, const std::string& why) {
    auto w = workers_.find(worker);
    if (w == workers_.end()) return;
    lost_workers_.add();
    const std::uint32_t index = w->second.group;
    ConsumerGroup& g = *groups_[index];
    std::vector<MessageId> lost, never_started;
    for (const auto& [id, d] : g.in_flight)
      if (d.worker == worker) (d.started ? lost : never_started).push_back(id);
    remove_worker(g, w);
    for (const auto& id : never_started) {  // it said it had not started them: no attempt
      g.in_flight.erase(id);
      g.ready.push_front(id);
    }
    for (const auto& id : lost) {
      g.in_flight.erase(id);
      fail(index, id, "worker " + why);
    }
  }

  void remove_worker(ConsumerGroup& g, std::unordered_map<std::string, WorkerState>::iterator w) {
    std::erase(g.workers, w->first);
    workers_.erase(w);
  }

  // Removes the worker's delivery of `id`; false when it is not the worker's
  // (a late answer after a redelivery, which is ignored).
  bool take_delivery(ConsumerGroup& g, const std::string& worker, WorkerState& w,
                     const MessageId& id) {
    auto d = g.in_flight.find(id);
    if (d == g.in_flight.end() || d->second.worker != worker) return false;
    w.release(d->second.bytes);
    g.in_flight.erase(d);
    return true;
  }

  // A late ack (the delivery timed out, or its worker was taken for lost):
  // the work was done, so it settles the message if the group still holds
  // it, wherever it is now: waiting to be redelivered, or redelivered to
  // another worker (whose own ack is then ignored). Rare, so searched for.
  bool take_late(ConsumerGroup& g, const MessageId& id) {
    if (!spool_.holds(id)) return false;  // settled by every group
    if (auto d = g.in_flight.find(id); d != g.in_flight.end()) {
      if (auto other = workers_.find(d->second.worker); other != workers_.end())
        other->second.release(d->second.bytes);
      g.in_flight.erase(d);
      return true;
    }
    if (auto r = std::find(g.ready.begin(), g.ready.end(), id); r != g.ready.end()) {
      g.ready.erase(r);
      return true;
    }
    const auto index = group_index_.at(g.name);
    for (auto r = retries_.begin(); r != retries_.end(); ++r)
      if (r->second.first == index && r->second.second == id) {
        retries_.erase(r);
        --g.retrying;
        return true;
      }
    return false;  // this group settled it already
  }

  void ack(ConsumerGroup& g, const std::string& worker, WorkerState& w, const MessageId& id) {
    if (!take_delivery(g, worker, w, id) && !take_late(g, id)) return;
    acked_.add();
    ++g.acked;
    spool_.ack(id, g.name, nullptr);
    g.failures.erase(id);
    g.attempt_unrecorded.erase(id);
    frames_.release(id);
    forget_unreadable(id);
  }

  // A failed delivery (its in-flight entry already removed): retry after the
  // policy's delay, or dead-letter once the attempts are spent.
  void fail(std::uint32_t index, const MessageId& id, const std::string& error) {
    ConsumerGroup& g = *groups_[index];
    FailureHistory& h = g.failures[id];
    ++h.attempts;
    if (h.first_failure_ms == 0) h.first_failure_ms = now_ms();
    h.last_error = error;
    if (options_.retry.exhausted(h.attempts)) {
      dead_letter(index, id, "max attempts", error, /*delivery_failed=*/false);
      return;
    }
    record_attempt(index, id);
    retried_.add();
    ++g.retried;
    ++g.retrying;
    retries_.emplace(Clock::now() + options_.retry.delay(h.attempts, rng_), std::pair{index, id});
  }

  // Writes the group's failure history of the message; the retry timer
  // does not hand the message out again until this is durable.
  void record_attempt(std::uint32_t index, const MessageId& id) {
    ConsumerGroup& g = *groups_[index];
    g.attempt_unrecorded[id] = true;
    spool_.record_attempt(id, g.name, g.failures[id], [this, index, id](AppendResult r) {
      bool wake;
      {
        std::lock_guard lock(completions_mutex_);
        wake = completions_.empty() && dead_completions_.empty() && attempt_completions_.empty();
        attempt_completions_.push_back({index, id, r});
      }
      if (wake) wakeup_.poke();
    });
  }

  void attempt_done(const AttemptDone& d) {
    if (d.group >= groups_.size() || !groups_[d.group]) return;
    ConsumerGroup& g = *groups_[d.group];
    auto it = g.attempt_unrecorded.find(d.id);
    if (it == g.attempt_unrecorded.end()) return;  // settled meanwhile
    if (d.result)
      g.attempt_unrecorded.erase(it);
    else
      it->second = false;  // written again when its retry comes due
  }

  // Copies the message into the dead-letter spool and, once that is durable,
  // settles it in the main spool (a crash in between redelivers, never loses).
  void dead_letter(std::uint32_t index, const MessageId& id, const std::string& reason,
                   const std::string& error, bool delivery_failed) {
    ConsumerGroup& g = *groups_[index];
    FailureHistory h = g.failures[id];
    g.failures.erase(id);
    g.attempt_unrecorded.erase(id);
    const std::uint64_t now = now_ms();
    if (delivery_failed) ++h.attempts;  // the delivery that was nacked dead
    DeadLetterInfo info{g.name,     reason,
                        h.attempts, h.first_failure_ms == 0 ? now : h.first_failure_ms,
                        now,        error.empty() ? h.last_error : error};
    const auto frame = frame_of(id);
    if (!frame) {  // never an empty dead letter (whose DEAD would settle the original)
      g.failures[id] = h;
      // The failure that brought it here is counted: on disk too, before
      // it is handed out again (a restart must not give a lower attempt).
      record_attempt(index, id);
      keep_unreadable(index, id);
      return;
    }
    ++g.dying;
    dlq_.add_dead_letter(id, *frame, info, [this, index, id, h, info](AppendResult r) {
      if (r) spool_.dead(id, info.group, info.reason, info.attempts, info.last_error, nullptr);
      bool wake;
      {
        std::lock_guard lock(completions_mutex_);
        wake = completions_.empty() && dead_completions_.empty() && attempt_completions_.empty();
        dead_completions_.push_back({index, id, h, info, r});
      }
      if (wake) wakeup_.poke();
    });
  }

  // The DLQ took the message (it is settled for the group), or could not:
  // then it stays pending and waits out the retry delay, to be delivered
  // and, failing again, dead-lettered again; never lost in between.
  void dead_letter_done(const DeadLetterDone& d) {
    if (d.group >= groups_.size() || !groups_[d.group]) {  // deleted meanwhile: done with it
      frames_.release(d.id);
      return;
    }
    ConsumerGroup& g = *groups_[d.group];
    --g.dying;
    if (d.result) {
      dead_.add();
      ++g.dead;
      frames_.release(d.id);
      return;
    }
    dead_letter_failed_.add();
    g.failures[d.id] = d.history;  // its next failure dead-letters it again
    // The failed delivery that led here (a NACK dead, or the last attempt)
    // counts: its ATTEMPT record is written, and the retry timer does not
    // hand the message out again before it is durable, so that a restart
    // never delivers it with a lower attempt number than the next one here.
    record_attempt(d.group, d.id);
    ++g.retrying;
    retries_.emplace(
        Clock::now() + options_.retry.delay(std::max<std::uint32_t>(d.history.attempts, 1), rng_),
        std::pair{d.group, d.id});
  }

  // The message's frame; nullopt when its stored record no longer reads
  // back (damaged on disk).
  std::optional<std::string> frame_of(const MessageId& id) {
    if (const auto kept = frames_.frame(id); !kept.empty()) return std::string(kept);
    auto stored = spool_.read(id);
    if (!stored) return std::nullopt;
    forget_unreadable(id);  // a read error that passed (EIO once) may be said again
    return std::move(stored->frame);
  }

  // A message whose stored frame cannot be read stays pending (never
  // delivered or dead-lettered empty): counted, said once on stderr, and
  // read again after a while.
  void keep_unreadable(std::uint32_t index, const MessageId& id) {
    unreadable_.add();
    if (unreadable_said_.insert(id).second)
      std::fprintf(stderr,
                   "mqkit proxy: the stored frame of message %s cannot be read back (damaged on "
                   "disk?); it stays pending and is read again every %lld ms\n",
                   id.to_string().c_str(), static_cast<long long>(kUnreadableRetryEvery.count()));
    ++groups_[index]->retrying;
    retries_.emplace(Clock::now() + kUnreadableRetryEvery, std::pair{index, id});
  }

  // A message that left a group: it need not be remembered as said (a
  // message unreadable in two groups may be said once more; the set stays
  // as small as what is damaged and still pending).
  void forget_unreadable(const MessageId& id) {
    if (!unreadable_said_.empty()) unreadable_said_.erase(id);
  }

  // ---- timers ----

  void run_timers() {
    const auto now = Clock::now();
    while (!deadlines_.empty() && deadlines_.front().at <= now) {
      const Deadline d = deadlines_.front();
      deadlines_.pop_front();
      if (d.group >= groups_.size() || !groups_[d.group]) continue;
      ConsumerGroup& g = *groups_[d.group];
      auto it = g.in_flight.find(d.id);
      if (it == g.in_flight.end() || it->second.deadline != d.at) continue;  // stale
      if (auto w = workers_.find(it->second.worker); w != workers_.end()) {
        w->second.release(it->second.bytes);
        w->second.unanswered_bytes += it->second.bytes;
      }
      g.in_flight.erase(it);
      fail(d.group, d.id, "ack timeout");
    }
    while (!retries_.empty() && retries_.begin()->first <= now) {
      const auto [index, id] = retries_.begin()->second;
      retries_.erase(retries_.begin());
      if (!groups_[index]) continue;
      ConsumerGroup& g = *groups_[index];
      if (auto a = g.attempt_unrecorded.find(id); a != g.attempt_unrecorded.end()) {
        // Its failure is not on disk yet: wait for it, writing it again if
        // that failed.
        if (!a->second) record_attempt(index, id);
        // Never "now" (a zero retry delay): the record's completion is taken
        // on this thread, between turns.
        retries_.emplace(now + std::max<std::chrono::milliseconds>(options_.retry.delay(1, rng_),
                                                                   std::chrono::milliseconds(10)),
                         std::pair{index, id});
        continue;
      }
      --g.retrying;
      g.ready.push_front(id);
    }
    if (now >= next_heartbeat_) {
      next_heartbeat_ = now + options_.heartbeat;
      heartbeat_workers(now);
    }
    for (auto it = full_latches_.begin(); it != full_latches_.end();) {
      auto next = std::next(it);
      if (now - it->second.since >= kFullLatchTimeout) release_latch(it);
      it = next;
    }
  }

  void heartbeat_workers(Clock::time_point now) {
    static const std::string beat = encode_command({.command = Command::heartbeat});
    std::vector<std::pair<std::string, std::string>> lost;
    for (const auto& [worker, w] : workers_) {
      if (now - w.last_heard > kMissedHeartbeats * options_.heartbeat)
        lost.emplace_back(worker, "missed heartbeats");
      else if (send_command(back_, worker, beat) == Sent::gone)
        lost.emplace_back(worker, "disconnected");
    }
    for (const auto& [worker, why] : lost) lose_worker(worker, why);
  }

  // ---- delivery ----

  void dispatch(ConsumerGroup& g) {
    std::size_t idle_workers = 0;
    while (!g.ready.empty() && !g.workers.empty() && idle_workers < g.workers.size()) {
      const std::string worker = g.workers[g.next_worker++ % g.workers.size()];
      WorkerState& w = workers_.at(worker);
      if (w.full()) {
        ++idle_workers;
        continue;
      }
      idle_workers = 0;
      const std::size_t n =
          std::min<std::size_t>({w.prefetch - w.unacked, g.ready.size(), kMaxBatch});
      if (!deliver(g, worker, w, n)) return;  // try again next turn
    }
  }

  // Sends the next `n` ready messages to the worker in one DELIVER. False
  // when it could not be sent now (the messages stay ready).
  bool deliver(ConsumerGroup& g, const std::string& worker, WorkerState& w, std::size_t n) {
    const std::uint32_t index = group_index_.at(g.name);
    std::vector<zmq::message_t> frames;
    std::vector<std::uint32_t> sizes;  // the frames are gone once sent
    CommandFrame command{.command = Command::deliver, .group = g.name};
    frames.reserve(n);
    sizes.reserve(n);
    command.attempts.reserve(n);
    std::uint64_t bytes = w.unacked_bytes + w.unanswered_bytes;
    for (std::size_t i = 0; i < n && bytes < kMaxWorkerBytes; ++i) {
      const MessageId& id = g.ready[i];
      std::optional<std::string> loaded;
      auto h = g.failures.find(id);
      const std::uint32_t attempt = h == g.failures.end() ? 1 : h->second.attempts + 1;
      std::string_view frame = frames_.frame(id);
      if (frame.empty()) {
        if (!(loaded = frame_of(id))) {  // not sent: it waits and is read again
          const MessageId unreadable = id;
          g.ready.erase(g.ready.begin() + static_cast<std::ptrdiff_t>(i));
          keep_unreadable(index, unreadable);
          --n;
          --i;
          continue;
        }
        frame = *loaded;
      }
      // DELIVER carries the attempt (1.3). Only a worker older than that
      // reads it from the envelope: for it alone a retry is re-encoded.
      if (attempt > 1 && w.minor < kAttemptsInDeliver &&
          codec_.decode(frame, decoded_, options_.socket.limits)) {
        decoded_.envelope.attempt = attempt;
        loaded = encode(decoded_.envelope, decoded_.payload());
        frame = *loaded;
      }
      command.attempts.push_back(attempt);
      frames.emplace_back(frame.data(), frame.size());
      bytes += frame.size();
      sizes.push_back(static_cast<std::uint32_t>(frame.size()));
    }
    n = frames.size();        // fewer when some could not be read, or past the byte bound
    if (n == 0) return true;  // none of them could be read
    const std::string encoded = encode_command(command);
    try {
      if (!back_.send(zmq::buffer(worker), zmq::send_flags::sndmore | zmq::send_flags::dontwait))
        return false;  // its queue is full for now
      // The rest of an accepted message is always accepted.
      (void)back_.send(zmq::buffer(encoded), zmq::send_flags::sndmore);
      for (std::size_t i = 0; i < frames.size(); ++i)
        (void)back_.send(frames[i],
                         i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    } catch (const zmq::error_t&) {
      lose_worker(worker, "disconnected");
      return false;
    }
    const auto deadline = Clock::now() + options_.ack_timeout;
    for (std::size_t i = 0; i < n; ++i) {
      const MessageId id = g.ready.front();
      g.ready.pop_front();
      g.in_flight.try_emplace(id).first->second = {worker, deadline, true, sizes[i]};
      w.unacked_bytes += sizes[i];
      deadlines_.push_back({deadline, index, id});
    }
    w.unacked += static_cast<std::uint32_t>(n);
    g.delivered += n;
    delivered_.add(n);
    return true;
  }

  ProxyOptions options_;
  // What the spools' completions reach: declared before the spools, so it is
  // destroyed after them (~Spool completes everything still queued).
  detail::Wakeup wakeup_;
  std::mutex completions_mutex_;
  std::vector<SpoolDone> completions_;            // guarded by completions_mutex_
  std::vector<DeadLetterDone> dead_completions_;  // guarded by completions_mutex_
  std::vector<AttemptDone> attempt_completions_;  // guarded by completions_mutex_
  std::vector<AttemptDone> attempts_taken_;
  std::vector<SpoolDone> taken_;
  std::vector<DeadLetterDone> dead_taken_;
  Spool spool_, dlq_;
  zmq::socket_t front_, back_;
  std::string front_endpoint_, back_endpoint_;
  md::EnvelopeCodec codec_;
  Message decoded_;
  CommandFrame cmd_;
  std::vector<zmq::message_t> extra_frames_;  // after a worker's command: not allowed

  std::vector<std::unique_ptr<ConsumerGroup>> groups_;  // deleted groups leave a null slot
  std::map<std::string, std::uint32_t> group_index_;
  std::unordered_map<std::string, WorkerState> workers_;
  std::unordered_map<MessageId, Publishing> publishing_;
  std::uint64_t next_arrival_ = 0;
  std::unordered_map<std::string, FullLatch> full_latches_;  // by producer
  const std::uint64_t key_salt_ = std::random_device{}() * 0x100000001ull ^ std::random_device{}();
  detail::FrameCache frames_;
  std::deque<Deadline> deadlines_;  // in deadline order: the ack timeout is one constant
  std::multimap<Clock::time_point, std::pair<std::uint32_t, MessageId>> retries_;
  std::unordered_map<std::string, std::shared_ptr<const Route>> route_cache_;  // per topic
  std::string route_key_;
  detail::PublishIntake intake_;
  Clock::time_point next_heartbeat_, next_snapshot_;
  std::mt19937_64 rng_{std::random_device{}()};

  mutable std::mutex snapshot_mutex_;
  Counters snapshot_;  // guarded by snapshot_mutex_
  md::Counter stored_, delivered_, acked_, retried_, dead_, dead_letter_failed_, malformed_,
      lost_workers_, unreadable_;
  std::unordered_set<MessageId> unreadable_said_;  // said once on stderr
};

}  // namespace

Proxy::Proxy(const ProxyOptions& options)
    : Device({options.front, options.back, options.stats, options.socket},
             std::make_unique<ProxyPump>(options)) {
  // DLQ tools find the running proxy through its spools' LOCK files.
  if (!stats_endpoint().empty())
    static_cast<ProxyPump&>(pump()).announce_admin_endpoint(stats_endpoint());
}

}  // namespace mqkit::devices
