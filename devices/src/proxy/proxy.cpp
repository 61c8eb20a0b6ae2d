// ProxyPump: the proxy's event loop turn. It owns the sockets and moves
// events between the pieces that own the proxy's state: Groups (routing,
// the GROUPS file), Workers (credit, heartbeats), Redelivery (deadlines,
// retries, failures, dead letters), Admin (admin commands). One thread owns
// all of it; the spools' writer threads only hand completions over
// (Completions), so the loop never waits for the disk.
#include "mqkit/devices/proxy.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "detail/counter.hpp"
#include "detail/wall_clock.hpp"
#include "envelope/codec.hpp"
#include "mqkit/error.hpp"
#include "protocol/commands.hpp"
#include "proxy/admin.hpp"
#include "proxy/completions.hpp"
#include "proxy/frame_cache.hpp"
#include "proxy/group.hpp"
#include "proxy/groups.hpp"
#include "proxy/redelivery.hpp"
#include "proxy/workers.hpp"
#include "publish_intake.hpp"
#include "pump.hpp"
#include "router_peers.hpp"
#include "wire/socket.hpp"

namespace mqkit::devices {

namespace detail {

// A message being stored (the intake answers its re-sends meanwhile).
struct Publishing {
  MessageId id;
  std::string producer;
  zmq::message_t frame;                // as received: kept, not copied, until it is durable
  std::shared_ptr<const Route> route;  // the cache may be cleared meanwhile
  std::uint64_t arrival = 0;           // its place among all publishes, in arrival order
  std::uint64_t not_before = 0;        // the envelope's (0: none)
};

}  // namespace detail

namespace {

using namespace mqkit::detail::protocol;
using detail::Clock;
using detail::ConsumerGroup;
using detail::Publishing;
using detail::WorkerState;
namespace md = mqkit::detail;

constexpr std::size_t kMaxBatch = 64;  // messages in one DELIVER
// libzmq keeps a message this small in the message itself (its VSM size on
// 64-bit): copying it costs less than lending a buffer, which allocates.
constexpr std::size_t kInMessageBytes = 33;

using detail::reply_error;
using detail::send_command;
using detail::Sent;
using detail::view;

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

class ProxyPump final : public detail::Pump, private detail::PublishSink {
 public:
  explicit ProxyPump(const ProxyOptions& o)
      : options_(o),
        spool_(o.spool_dir, recalling(o.spool, o.dedup_window)),
        dlq_(o.dlq_dir.empty() ? o.spool_dir + ".dlq" : o.dlq_dir,
             dead_letter_options(o.spool, o.dlq_max_size)),
        front_(md::open_socket(zmq::socket_type::router, o.socket)),
        back_(md::open_socket(zmq::socket_type::router, o.socket)),
        groups_(o.spool_dir, o.retry, o.ack_timeout),
        frames_(o.frame_memory),
        redelivery_(groups_, workers_, spool_, dlq_, frames_, completions_),
        admin_(groups_, workers_, redelivery_, spool_, dlq_, frames_, detail::RouterPeers(back_)),
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
    items[2] = {nullptr, completions_.fd(), ZMQ_POLLIN, 0};
    return 3;
  }

  std::chrono::milliseconds poll_timeout() const override {
    auto next = redelivery_.next_due(next_heartbeat_);
    if (scheduled_groups_ > 0)
      if (auto due = next_scheduled()) next = std::min(next, *due);
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(next - Clock::now());
    return std::max(left + std::chrono::milliseconds(1), std::chrono::milliseconds(0));
  }

  void pump(const zmq::pollitem_t* items) override {
    if (items[2].revents & ZMQ_POLLIN) completions_.drain();
    take_spool_completions();
    for (int i = 0; i < 256 && intake_.read(front_, *this); ++i) {
    }
    for (int i = 0; i < 1024 && read_back(); ++i) {
    }
    run_timers();
    for (auto& group : groups_.slots())
      if (group && !group->paused) dispatch(*group);
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
                 {"retried", redelivery_.retried()},
                 {"dead", redelivery_.dead()},
                 {"dead_letter_failed", redelivery_.dead_letter_failed()},
                 {"unreadable", redelivery_.unreadable()},
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
    for (const auto& g : groups_.slots()) {
      if (!g) continue;
      pending += g->pending();
      const std::string prefix = "group." + g->name + ".";
      snapshot.emplace_back(prefix + "pending", g->pending());
      snapshot.emplace_back(prefix + "in_flight", g->in_flight.size());
      snapshot.emplace_back(prefix + "scheduled", g->scheduled.size());
      snapshot.emplace_back(prefix + "workers", g->workers.size());
      snapshot.emplace_back(prefix + "delivered", g->delivered);
      snapshot.emplace_back(prefix + "acked", g->acked);
      snapshot.emplace_back(prefix + "retried", g->retried);
      snapshot.emplace_back(prefix + "dead", g->dead);
      snapshot.emplace_back(prefix + "paused", g->paused ? 1 : 0);
    }
    snapshot.insert(snapshot.begin(), {{"pending", pending}, {"workers", workers_.size()}});
    std::lock_guard lock(snapshot_mutex_);
    snapshot_ = std::move(snapshot);
    next_snapshot_ = Clock::now() + std::chrono::milliseconds(200);
  }

  std::string admin(const std::vector<std::string>& command, std::vector<AdminRow>& rows) override {
    bool groups_changed = false;
    std::string error = admin_.run(command, rows, groups_changed);
    if (groups_changed) refresh_counters();
    return error;
  }

 private:
  // The dedup window survives a restart: rebuilt from the spool's records.
  static SpoolOptions recalling(SpoolOptions o, std::size_t window) {
    o.recall_recent_ids = window;
    o.recall_schedule = true;  // scheduled messages stay scheduled across a restart
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

  // Everything the spool holds goes back into its groups' queues (Groups),
  // and into the dedup window.
  void recover() {
    for (const auto& id : spool_.take_recent_ids()) intake_.remember(id);
    groups_.recover(spool_, options_.groups, options_.group_settings, spool_.take_schedule(),
                    md::now_ms());
    for (const auto& [name, index] : groups_.by_name()) {
      for (const auto& id : groups_[index].ready) intake_.remember(id);
      for (const auto& id : groups_[index].scheduled.ids()) intake_.remember(id);
      if (!groups_[index].scheduled.empty()) ++scheduled_groups_;
    }
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
    auto r = groups_.route(m.message.topic(), m.target_group);
    if (r->groups.empty()) {
      intake_.answer(producer, id, ConfirmStatus::unroutable,
                     m.target_group ? "the target group does not exist"
                                    : "no group's filters match the topic");
      return false;
    }
    if (publishing_.contains(id)) {  // never: the intake answers a re-send in progress itself
      intake_.answer(producer, id, ConfirmStatus::rejected, "its earlier store is still under way");
      return false;
    }
    Publishing* p = start_publishing(id);
    *p = {id, producer, std::move(m.held), r, next_arrival_++, m.message.envelope.not_before};
    // The completion captures two pointers: small enough for std::function
    // to keep without allocating.
    try {
      spool_.publish(
          id, r->names, view(p->frame),
          [this, p](AppendResult result) { completions_.stored(p, result); }, order_key(producer));
    } catch (const Error& e) {  // refused before its append started: nothing is in progress
      end_publishing(id);
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

  // A message's entry while it is stored. Its node is reused from an
  // earlier publish when one is spare: no allocation per message (the entry
  // must not move while the spool's completion points at it, so no flat table).
  Publishing* start_publishing(const MessageId& id) {
    if (spare_publishing_.empty()) return &publishing_.try_emplace(id).first->second;
    auto node = std::move(spare_publishing_.back());
    spare_publishing_.pop_back();
    node.key() = id;
    return &publishing_.insert(std::move(node)).position->second;
  }
  void end_publishing(const MessageId& id) {
    auto node = publishing_.extract(id);
    if (node.empty()) return;
    node.mapped() = {};  // the frame and the route go now, not when the node is reused
    if (spare_publishing_.size() < kSparePublishing) spare_publishing_.push_back(std::move(node));
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

  void take_spool_completions() {
    completions_.take(taken_, dead_taken_, attempts_taken_);
    for (auto& d : dead_taken_) redelivery_.dead_letter_done(d);
    dead_taken_.clear();
    for (const auto& a : attempts_taken_) redelivery_.attempt_done(a);
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
        const bool scheduled = p.not_before != 0 && p.not_before > md::now_ms();
        for (auto g : p.route->groups)
          if (ConsumerGroup* group = groups_.at(g)) {
            if (scheduled)
              schedule(*group, p.not_before, id);
            else
              group->ready.push_back(id);
            ++remaining;
          }
        frames_.keep(id, remaining, view(p.frame));
        intake_.settle(id, ConfirmStatus::stored, "");
      }
      end_publishing(id);
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
    WorkerState* found = workers_.find(worker);
    if (found == nullptr) {
      // A restarted proxy, or a worker given up as lost: it must attach again.
      if (cmd_.command != Command::detach)
        reply_error(back_, worker, std::string(kNotAttached) + ": send attach again");
      return true;
    }
    WorkerState& w = *found;
    w.last_heard = Clock::now();
    ConsumerGroup& g = groups_[w.group];
    // An answer shows it reads: what timed out has left its socket queue.
    if (cmd_.command == Command::ack || cmd_.command == Command::nack ||
        cmd_.command == Command::in_progress)
      w.unanswered_bytes = 0;
    switch (cmd_.command) {
      case Command::credit:
        w.set_credit(cmd_.credit);
        break;
      case Command::ack:
        for (const auto& id : cmd_.ids) ack(g, worker, w, id);
        break;
      case Command::nack:
        if (take_delivery(g, worker, w, cmd_.ids.at(0))) {
          if (cmd_.action == NackAction::dead)
            redelivery_.dead_letter(w.group, cmd_.ids[0], "nack dead", cmd_.reason,
                                    /*delivery_failed=*/true);
          else
            redelivery_.fail(w.group, cmd_.ids[0], cmd_.reason.empty() ? "nack" : cmd_.reason);
        }
        break;
      case Command::in_progress:
        for (std::size_t i = 0; i < cmd_.ids.size(); ++i)
          if (auto d = g.in_flight.find(cmd_.ids[i]);
              d != g.in_flight.end() && d->second.worker == worker) {
            d->second.deadline = Clock::now() + g.ack_timeout;
            d->second.started = !cmd_.started || i < *cmd_.started;
            redelivery_.expect(d->second.deadline, w.group, cmd_.ids[i]);
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
    if (std::string error = detail::Workers::attach_error(cmd, groups_); !error.empty()) {
      reply_error(back_, worker, error);
      return;
    }
    std::uint32_t index;
    try {
      index = groups_.declare(cmd.group, cmd.filters);
    } catch (const Error& e) {
      reply_error(back_, worker, e.what());
      return;
    }
    WorkerState* w = workers_.find(worker);
    if (w != nullptr && w->group != index) {
      detach(worker);  // moving to another group: hand the old one's messages back
      w = nullptr;
    }
    if (w == nullptr) w = &workers_.join(worker, index, groups_[index]);
    w->set_credit(cmd.credit);
    w->last_heard = Clock::now();
    w->minor = cmd.minor;
    CommandFrame reply{
        .command = Command::attached,
        .group = cmd.group,
        .filters = groups_[index].patterns(),
        .ack_timeout_ms = static_cast<std::uint64_t>(groups_[index].ack_timeout.count()),
        .heartbeat_ms = static_cast<std::uint64_t>(options_.heartbeat.count())};
    if (send_command(back_, worker, encode_command(reply)) == Sent::gone)
      lose_worker(worker, "gone");
  }

  // DETACH: unacked messages go back at once and cost no attempt.
  void detach(const std::string& worker) {
    WorkerState* w = workers_.find(worker);
    if (w == nullptr) return;
    ConsumerGroup& g = groups_[w->group];
    std::vector<MessageId> handed_back;
    for (const auto& [id, d] : g.in_flight)
      if (d.worker == worker) handed_back.push_back(id);
    for (const auto& id : handed_back) {
      g.in_flight.erase(id);
      g.ready.push_front(id);
    }
    workers_.remove(g, worker);
  }

  // A worker that disconnected or stopped heartbeating: its deliveries failed.
  void lose_worker(const std::string& worker, const std::string& why) {
    WorkerState* w = workers_.find(worker);
    if (w == nullptr) return;
    lost_workers_.add();
    const std::uint32_t index = w->group;
    ConsumerGroup& g = groups_[index];
    std::vector<MessageId> lost, never_started;
    for (const auto& [id, d] : g.in_flight)
      if (d.worker == worker) (d.started ? lost : never_started).push_back(id);
    workers_.remove(g, worker);
    for (const auto& id : never_started) {  // it said it had not started them: no attempt
      g.in_flight.erase(id);
      g.ready.push_front(id);
    }
    for (const auto& id : lost) {
      g.in_flight.erase(id);
      redelivery_.fail(index, id, "worker " + why);
    }
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
      workers_.release(d->second.worker, d->second.bytes);
      g.in_flight.erase(d);
      return true;
    }
    if (auto r = std::find(g.ready.begin(), g.ready.end(), id); r != g.ready.end()) {
      g.ready.erase(r);
      return true;
    }
    if (g.scheduled.remove(id)) return true;  // a replayed copy's, say
    // Waiting out a retry delay; if not, this group settled it already.
    return redelivery_.cancel_retry(groups_.index_of(g.name), g, id);
  }

  void ack(ConsumerGroup& g, const std::string& worker, WorkerState& w, const MessageId& id) {
    if (!take_delivery(g, worker, w, id) && !take_late(g, id)) return;
    acked_.add();
    ++g.acked;
    spool_.ack(id, g.name, nullptr);
    redelivery_.settled(g, id);
    frames_.release(id);
    redelivery_.forget_unreadable(id);
  }

  // ---- timers ----

  // ---- scheduled messages ----

  void schedule(ConsumerGroup& g, std::uint64_t not_before, const MessageId& id) {
    if (g.scheduled.empty()) ++scheduled_groups_;
    g.scheduled.add(not_before, id);
  }

  // When the earliest scheduled message falls due, on the loop's clock.
  std::optional<Clock::time_point> next_scheduled() const {
    std::optional<std::uint64_t> earliest;
    for (const auto& g : groups_.slots())
      if (g)
        if (auto at = g->scheduled.next(); at && (!earliest || *at < *earliest)) earliest = at;
    if (!earliest) return std::nullopt;
    const std::uint64_t now = md::now_ms();
    return Clock::now() + std::chrono::milliseconds(*earliest > now ? *earliest - now : 0);
  }

  // Due messages join the end of their group's ready queue.
  void release_scheduled() {
    const std::uint64_t now = md::now_ms();
    std::size_t still = 0;
    for (const auto& g : groups_.slots()) {
      if (!g || g->scheduled.empty()) continue;
      g->scheduled.take_due(now, [&](const MessageId& id) { g->ready.push_back(id); });
      if (!g->scheduled.empty()) ++still;
    }
    scheduled_groups_ = still;
  }

  void run_timers() {
    const auto now = Clock::now();
    if (scheduled_groups_ > 0) release_scheduled();
    redelivery_.run_timers(now);
    if (now >= next_heartbeat_) {
      next_heartbeat_ = now + options_.heartbeat;
      std::vector<std::pair<std::string, std::string>> lost;
      workers_.heartbeat(now, options_.heartbeat, detail::RouterPeers(back_), lost);
      for (const auto& [worker, why] : lost) lose_worker(worker, why);
    }
    for (auto it = full_latches_.begin(); it != full_latches_.end();) {
      auto next = std::next(it);
      if (now - it->second.since >= kFullLatchTimeout) release_latch(it);
      it = next;
    }
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
    const std::uint32_t index = groups_.index_of(g.name);
    std::vector<zmq::message_t> frames;
    std::vector<std::uint32_t> sizes;  // the frames are gone once sent
    CommandFrame command{.command = Command::deliver, .group = g.name};
    frames.reserve(n);
    sizes.reserve(n);
    command.attempts.reserve(n);
    std::uint64_t bytes = w.unacked_bytes + w.unanswered_bytes;
    for (std::size_t i = 0; i < n && bytes < detail::kMaxWorkerBytes; ++i) {
      const MessageId& id = g.ready[i];
      std::optional<std::string> loaded;
      const std::uint32_t attempt = detail::Redelivery::attempt(g, id);
      std::string_view frame = frames_.frame(id);
      if (frame.empty()) {
        if (!(loaded = redelivery_.frame_of(id))) {  // not sent: it waits and is read again
          const MessageId unreadable = id;
          g.ready.erase(g.ready.begin() + static_cast<std::ptrdiff_t>(i));
          redelivery_.keep_unreadable(index, unreadable);
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
      // The kept frame itself is lent, not copied. One small enough for a
      // ZeroMQ message's own bytes is copied there, which allocates nothing.
      detail::FrameCache::Lent lent;
      if (!loaded && frame.size() > kInMessageBytes) lent = frames_.lend(id);
      if (lent.data != nullptr) {
        try {
          frames.emplace_back(lent.data, lent.size, &detail::FrameCache::give_back, lent.hint);
        } catch (...) {
          detail::FrameCache::give_back(lent.data, lent.hint);
          throw;
        }
      } else {
        frames.emplace_back(frame.data(), frame.size());
      }
      bytes += frame.size();
      sizes.push_back(static_cast<std::uint32_t>(frame.size()));
    }
    n = frames.size();        // fewer when some could not be read, or past the byte bound
    if (n == 0) return true;  // none of them could be read
    const std::string encoded = encode_command(command);
    const Sent sent =
        detail::RouterPeers(back_).send_with_frames(worker, encoded, frames.data(), frames.size());
    if (sent == Sent::busy) return false;  // its queue is full for now
    if (sent == Sent::gone) {
      lose_worker(worker, "disconnected");
      return false;
    }
    const auto deadline = Clock::now() + g.ack_timeout;
    for (std::size_t i = 0; i < n; ++i) {
      const MessageId id = g.ready.front();
      g.ready.pop_front();
      g.in_flight.try_emplace(id).first->second = {worker, deadline, true, sizes[i]};
      w.unacked_bytes += sizes[i];
      redelivery_.expect(deadline, index, id);
    }
    w.unacked += static_cast<std::uint32_t>(n);
    g.delivered += n;
    delivered_.add(n);
    return true;
  }

  ProxyOptions options_;
  // What the spools' completions reach: declared before the spools, so it is
  // destroyed after them (~Spool completes everything still queued).
  detail::Completions completions_;
  std::vector<detail::SpoolDone> taken_;
  std::vector<detail::DeadLetterDone> dead_taken_;
  std::vector<detail::AttemptDone> attempts_taken_;
  // The DLQ's completions write to the main spool: it is destroyed after the DLQ.
  Spool spool_, dlq_;
  zmq::socket_t front_, back_;
  std::string front_endpoint_, back_endpoint_;
  md::EnvelopeCodec codec_;
  Message decoded_;
  CommandFrame cmd_;
  std::vector<zmq::message_t> extra_frames_;  // after a worker's command: not allowed

  detail::Groups groups_;
  detail::Workers workers_;
  detail::FrameCache frames_;
  detail::Redelivery redelivery_;
  detail::Admin admin_;
  std::unordered_map<MessageId, Publishing> publishing_;
  static constexpr std::size_t kSparePublishing = 4096;
  std::vector<std::unordered_map<MessageId, Publishing>::node_type> spare_publishing_;
  std::uint64_t next_arrival_ = 0;
  std::size_t scheduled_groups_ = 0;  // groups with scheduled messages: 0 spares the clock
  std::unordered_map<std::string, FullLatch> full_latches_;  // by producer
  const std::uint64_t key_salt_ = std::random_device{}() * 0x100000001ull ^ std::random_device{}();
  detail::PublishIntake intake_;
  Clock::time_point next_heartbeat_, next_snapshot_;

  mutable std::mutex snapshot_mutex_;
  Counters snapshot_;  // guarded by snapshot_mutex_
  md::Counter stored_, delivered_, acked_, malformed_, lost_workers_;
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
