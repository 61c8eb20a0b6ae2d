// ProxyPump: the proxy's state and its event loop turn. One thread owns all
// of it; the spool's writer thread only hands completions over through a
// mutex-guarded list and an eventfd, so the loop never waits for the disk.
#include "mqkit/devices/proxy.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <unordered_map>
#include <unordered_set>

#include "detail/counter.hpp"
#include "envelope/codec.hpp"
#include "mqkit/error.hpp"
#include "mqkit/topic_filter.hpp"
#include "pump.hpp"
#include "reliable/protocol.hpp"
#include "wire/socket.hpp"

namespace mqkit::devices {
namespace {

using Clock = std::chrono::steady_clock;
using namespace mqkit::detail::proxy;
namespace md = mqkit::detail;

std::string_view view(const zmq::message_t& m) {
  return {static_cast<const char*>(m.data()), m.size()};
}

std::uint64_t now_ms() {
  using namespace std::chrono;
  return static_cast<std::uint64_t>(
      duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count());
}

// An eventfd the spool's writer thread pokes when completions are waiting.
class Wakeup {
 public:
  Wakeup() : fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (fd_ < 0) throw Error(errc::unsupported, "cannot create an eventfd for the proxy");
  }
  ~Wakeup() { ::close(fd_); }
  Wakeup(const Wakeup&) = delete;
  Wakeup& operator=(const Wakeup&) = delete;
  void poke() noexcept {
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(fd_, &one, sizeof one);
  }
  void drain() noexcept {
    std::uint64_t value;
    [[maybe_unused]] auto n = ::read(fd_, &value, sizeof value);
  }
  int fd() const noexcept { return fd_; }

 private:
  int fd_;
};

struct Group {
  std::vector<TopicFilter> filters;
  std::deque<MessageId> ready;       // stored, waiting for a worker
  std::vector<std::string> workers;  // identities, served round-robin
  std::size_t next_worker = 0;

  bool matches(std::string_view topic) const {
    for (const auto& f : filters)
      if (f.matches(topic)) return true;
    return false;
  }
};

struct WorkerState {
  std::string group;
  std::uint32_t prefetch = 0;
  std::uint32_t unacked = 0;
};

struct DeliveryKey {
  MessageId id;
  std::string group;
  auto operator<=>(const DeliveryKey&) const = default;
};

struct InFlight {
  std::string worker;
  Clock::time_point deadline;
};

struct Completion {
  std::string producer;
  MessageId id;
  AppendResult result;
};

std::vector<std::string> filter_patterns(const std::vector<TopicFilter>& filters) {
  std::vector<std::string> out;
  for (const auto& f : filters) out.push_back(f.pattern());
  return out;
}

class ProxyPump final : public detail::Pump {
 public:
  explicit ProxyPump(const ProxyOptions& o)
      : options_(o),
        spool_(o.spool_dir, o.spool),
        dlq_(o.dlq_dir.empty() ? o.spool_dir + ".dlq" : o.dlq_dir, dead_letter_options(o.spool)),
        front_(md::open_socket(zmq::socket_type::router, o.socket)),
        back_(md::open_socket(zmq::socket_type::router, o.socket)) {
    back_.set(zmq::sockopt::router_mandatory, true);  // a gone worker is an error, not a drop
    // Credit already bounds what each worker holds; a queue limit on top
    // would only make a live worker look busy.
    back_.set(zmq::sockopt::sndhwm, 0);
    for (const auto& [name, patterns] : o.groups) declare_group(name, patterns);
    recover();
    front_endpoint_ = md::attach(front_, bind(o.front));
    back_endpoint_ = md::attach(back_, bind(o.back));
  }

  const char* kind() const noexcept override { return "proxy"; }
  std::string in_endpoint() const override { return front_endpoint_; }
  std::string out_endpoint() const override { return back_endpoint_; }

  std::size_t poll_items(zmq::pollitem_t* items) override {
    items[0] = {front_.handle(), 0, ZMQ_POLLIN, 0};
    items[1] = {back_.handle(), 0, ZMQ_POLLIN, 0};
    items[2] = {nullptr, wakeup_.fd(), ZMQ_POLLIN, 0};
    return 3;
  }

  std::chrono::milliseconds poll_timeout() const override {
    auto next = Clock::now() + std::chrono::milliseconds(100);
    if (!retries_.empty()) next = std::min(next, retries_.begin()->first);
    if (next_deadline_ < next) next = next_deadline_;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(next - Clock::now());
    return std::max(left, std::chrono::milliseconds(0));
  }

  void pump(const zmq::pollitem_t* items) override {
    if (items[2].revents & ZMQ_POLLIN) wakeup_.drain();
    take_completions();
    for (int i = 0; i < 256 && read_front(); ++i) {
    }
    for (int i = 0; i < 1024 && read_back(); ++i) {
    }
    run_timers();
    for (auto& [name, group] : groups_) dispatch(name, group);
    flush_confirms();
  }

  Counters counters() const override {
    return {{"published", published_.get()},
            {"stored", stored_.get()},
            {"unroutable", unroutable_.get()},
            {"duplicate", duplicates_.get()},
            {"full", full_.get()},
            {"delivered", delivered_.get()},
            {"acked", acked_.get()},
            {"retried", retried_.get()},
            {"dead", dead_.get()},
            {"malformed", malformed_.get()},
            {"pending", pending_.get()}};
  }

 private:
  static SpoolOptions dead_letter_options(SpoolOptions o) {
    o.dead_letters = true;
    return o;
  }

  Group& declare_group(const std::string& name, const std::vector<std::string>& patterns) {
    Group& g = groups_[name];
    if (g.filters.empty()) {
      for (const auto& p : patterns.empty() ? std::vector<std::string>{"#"} : patterns)
        g.filters.emplace_back(p);
    }
    return g;
  }

  // Everything the spool holds goes back into its groups' queues.
  void recover() {
    std::size_t pending = 0;
    for (const auto& name : spool_.groups()) {
      Group& g = declare_group(name, {});
      for (const auto& id : spool_.pending(name)) {
        if (!frames_.contains(id)) {
          auto stored = spool_.read(id);
          if (!stored) continue;
          frames_[id] = std::move(stored->frame);
        }
        ++remaining_[id];
        g.ready.push_back(id);
        remember(id);
        ++pending;
      }
    }
    pending_.add(pending);
  }

  // ---- producers ----

  bool read_front() {
    zmq::message_t identity, command;
    if (!front_.recv(identity, zmq::recv_flags::dontwait)) return false;
    std::vector<zmq::message_t> frames;
    bool more = identity.more();
    if (more) {
      (void)front_.recv(command, zmq::recv_flags::dontwait);
      more = command.more();
    }
    while (more) {
      frames.emplace_back();
      (void)front_.recv(frames.back(), zmq::recv_flags::dontwait);
      more = frames.back().more();
    }
    CommandFrame cmd;
    const auto decoded = decode_command(view(command), cmd);
    if (!decoded || cmd.command != Command::publish) {
      malformed_.add();
      reply_error(front_, identity, decoded ? "producers may only PUBLISH" : decoded.detail);
      return true;
    }
    const std::string producer(view(identity));
    for (const auto& frame : frames) publish(producer, view(frame), cmd.target_group);
    return true;
  }

  void publish(const std::string& producer, std::string_view frame,
               const std::optional<std::string>& target) {
    Message m;
    if (!has_envelope(frame) || decode(frame, m)) {
      malformed_.add();
      return;  // without an id there is nothing to confirm
    }
    published_.add();
    if (recent_.contains(m.id()) || publishing_.contains(m.id())) {
      duplicates_.add();
      confirm(producer, m.id(), ConfirmStatus::duplicate, "");
      return;
    }
    std::vector<std::string> groups;
    if (target) {
      if (groups_.contains(*target)) groups.push_back(*target);
    } else {
      for (const auto& [name, g] : groups_)
        if (g.matches(m.topic())) groups.push_back(name);
    }
    if (groups.empty()) {
      unroutable_.add();
      confirm(producer, m.id(), ConfirmStatus::unroutable, "no group's filters match the topic");
      return;
    }
    publishing_[m.id()] = {std::string(frame), groups};
    spool_.publish(m.id(), groups, frame, [this, producer, id = m.id()](AppendResult r) {
      {
        std::lock_guard lock(completions_mutex_);
        completions_.push_back({producer, id, r});
      }
      wakeup_.poke();
    });
  }

  void take_completions() {
    std::vector<Completion> done;
    {
      std::lock_guard lock(completions_mutex_);
      done.swap(completions_);
    }
    for (auto& c : done) {
      auto it = publishing_.find(c.id);
      if (it == publishing_.end()) continue;
      auto [frame, groups] = std::move(it->second);
      publishing_.erase(it);
      if (c.result.status == AppendStatus::full) {
        full_.add();
        confirm(c.producer, c.id, ConfirmStatus::full, "the spool is full; retry later");
        continue;
      }
      if (!c.result) {
        confirm(c.producer, c.id, ConfirmStatus::rejected,
                "the spool could not store it: " + std::string(std::strerror(c.result.error)));
        continue;
      }
      stored_.add();
      remember(c.id);
      frames_[c.id] = std::move(frame);
      for (const auto& g : groups) {
        groups_[g].ready.push_back(c.id);
        ++remaining_[c.id];
        pending_.add();
      }
      confirm(c.producer, c.id, ConfirmStatus::stored, "");
    }
  }

  // The dedup window: the last `dedup_window` ids stored, oldest forgotten first.
  void remember(const MessageId& id) {
    if (options_.dedup_window == 0 || !recent_.insert(id).second) return;
    recent_order_.push_back(id);
    if (recent_order_.size() > options_.dedup_window) {
      recent_.erase(recent_order_.front());
      recent_order_.pop_front();
    }
  }

  void confirm(const std::string& producer, const MessageId& id, ConfirmStatus status,
               std::string reason) {
    confirms_[producer].push_back({id, status, std::move(reason)});
  }

  void flush_confirms() {
    for (auto& [producer, list] : confirms_) {
      CommandFrame c{.command = Command::confirm, .confirmations = std::move(list)};
      const auto encoded = encode_command(c);
      try {
        (void)front_.send(zmq::buffer(producer),
                          zmq::send_flags::sndmore | zmq::send_flags::dontwait);
        (void)front_.send(zmq::buffer(encoded), zmq::send_flags::dontwait);
      } catch (const zmq::error_t&) {
        // The producer is gone: it re-sends unconfirmed messages when it returns.
      }
    }
    confirms_.clear();
  }

  // ---- workers ----

  bool read_back() {
    zmq::message_t identity, command;
    if (!back_.recv(identity, zmq::recv_flags::dontwait)) return false;
    bool extra = false;
    if (identity.more()) {
      (void)back_.recv(command, zmq::recv_flags::dontwait);
      zmq::message_t rest;
      for (bool more = command.more(); more; more = rest.more()) {
        (void)back_.recv(rest, zmq::recv_flags::dontwait);
        extra = true;
      }
    }
    CommandFrame cmd;
    const auto decoded = decode_command(view(command), cmd);
    const std::string worker(view(identity));
    if (!decoded || extra) {
      malformed_.add();
      reply_error(back_, identity, decoded ? "worker commands are one frame" : decoded.detail);
      return true;
    }
    switch (cmd.command) {
      case Command::attach:
        attach(worker, cmd);
        break;
      case Command::credit:
        if (auto* w = find_worker(worker)) w->prefetch = cmd.credit;
        break;
      case Command::ack:
        for (const auto& id : cmd.ids) ack(worker, id);
        break;
      case Command::nack:
        if (auto* w = find_worker(worker)) {
          const DeliveryKey key{cmd.ids.at(0), w->group};
          if (owned_by(key, worker)) {
            if (cmd.action == NackAction::dead)
              dead_letter(key, "nack dead", cmd.reason);
            else
              fail(key, cmd.reason.empty() ? "nack" : cmd.reason);
          }
        }
        break;
      case Command::in_progress:
        if (auto* w = find_worker(worker))
          for (const auto& id : cmd.ids)
            if (auto it = in_flight_.find({id, w->group});
                it != in_flight_.end() && it->second.worker == worker)
              it->second.deadline = Clock::now() + options_.ack_timeout;
        break;
      case Command::detach:
        detach(worker);
        break;
      case Command::heartbeat:
        break;
      default:
        malformed_.add();
        reply_error(back_, identity, "workers may attach, credit, ack, nack, in_progress, detach");
    }
    return true;
  }

  WorkerState* find_worker(const std::string& identity) {
    auto it = workers_.find(identity);
    return it == workers_.end() ? nullptr : &it->second;
  }

  bool owned_by(const DeliveryKey& key, const std::string& worker) const {
    auto it = in_flight_.find(key);
    return it != in_flight_.end() && it->second.worker == worker;
  }

  void attach(const std::string& worker, const CommandFrame& cmd) {
    auto existing = groups_.find(cmd.group);
    if (existing != groups_.end() && !cmd.filters.empty() &&
        filter_patterns(existing->second.filters) != cmd.filters) {
      std::string have;
      for (const auto& p : filter_patterns(existing->second.filters)) have += " " + p;
      reply_error(back_, worker,
                  "group '" + cmd.group + "' exists with filters" + have +
                      "; attach without filters or with the same ones");
      return;
    }
    Group& g = declare_group(cmd.group, cmd.filters);
    if (find_worker(worker) == nullptr) g.workers.push_back(worker);
    workers_[worker] = {cmd.group, std::max<std::uint32_t>(cmd.credit, 1), 0};
    CommandFrame reply{
        .command = Command::attached, .group = cmd.group, .filters = filter_patterns(g.filters)};
    (void)send_to_worker(worker, encode_command(reply), nullptr);
  }

  void detach(const std::string& worker) {
    auto w = workers_.find(worker);
    if (w == workers_.end()) return;
    // Prefetched, unacked messages go back at once and cost no attempt.
    for (auto it = in_flight_.begin(); it != in_flight_.end();) {
      if (it->second.worker != worker) {
        ++it;
        continue;
      }
      auto& attempts = attempts_[it->first];
      if (attempts > 0) --attempts;
      groups_[it->first.group].ready.push_front(it->first.id);
      it = in_flight_.erase(it);
    }
    auto& list = groups_[w->second.group].workers;
    list.erase(std::remove(list.begin(), list.end(), worker), list.end());
    workers_.erase(w);
  }

  void ack(const std::string& worker, const MessageId& id) {
    auto* w = find_worker(worker);
    if (w == nullptr) return;
    const DeliveryKey key{id, w->group};
    if (!owned_by(key, worker)) return;  // late ack after a redelivery: ignore
    in_flight_.erase(key);
    --w->unacked;
    acked_.add();
    spool_.ack(id, key.group, nullptr);
    settle(key);
  }

  // The message is done for this group (acked or dead).
  void settle(const DeliveryKey& key) {
    attempts_.erase(key);
    first_failure_.erase(key);
    pending_.sub();
    if (--remaining_[key.id] == 0) {
      remaining_.erase(key.id);
      frames_.erase(key.id);
    }
  }

  void fail(const DeliveryKey& key, const std::string& error) {
    auto it = in_flight_.find(key);
    if (it == in_flight_.end()) return;
    if (auto* w = find_worker(it->second.worker)) --w->unacked;
    in_flight_.erase(it);
    first_failure_.try_emplace(key, now_ms());
    last_error_[key] = error;
    const std::uint32_t attempts = attempts_[key];
    if (options_.retry.exhausted(attempts)) {
      dead_letter_after_failure(key, "max attempts", error);
      return;
    }
    retried_.add();
    retries_.emplace(Clock::now() + options_.retry.delay(attempts, rng_), key);
  }

  void dead_letter(const DeliveryKey& key, const std::string& reason, const std::string& error) {
    if (auto it = in_flight_.find(key); it != in_flight_.end()) {
      if (auto* w = find_worker(it->second.worker)) --w->unacked;
      in_flight_.erase(it);
    }
    first_failure_.try_emplace(key, now_ms());
    dead_letter_after_failure(key, reason, error);
  }

  void dead_letter_after_failure(const DeliveryKey& key, const std::string& reason,
                                 const std::string& error) {
    const std::uint32_t attempts = attempts_[key];
    DeadLetterInfo info{key.group, reason, attempts, first_failure_[key], now_ms(), error};
    dlq_.add_dead_letter(key.id, frames_[key.id], info, nullptr);
    spool_.dead(key.id, key.group, reason, attempts, error, nullptr);
    last_error_.erase(key);
    dead_.add();
    settle(key);
  }

  void run_timers() {
    const auto now = Clock::now();
    std::vector<DeliveryKey> expired;
    next_deadline_ = Clock::time_point::max();
    for (const auto& [key, flight] : in_flight_) {
      if (flight.deadline <= now)
        expired.push_back(key);
      else
        next_deadline_ = std::min(next_deadline_, flight.deadline);
    }
    for (const auto& key : expired) fail(key, "ack timeout");
    while (!retries_.empty() && retries_.begin()->first <= now) {
      const DeliveryKey key = retries_.begin()->second;
      retries_.erase(retries_.begin());
      groups_[key.group].ready.push_front(key.id);
    }
  }

  void dispatch(const std::string& name, Group& g) {
    while (!g.ready.empty() && !g.workers.empty()) {
      WorkerState* chosen = nullptr;
      std::string identity;
      for (std::size_t tried = 0; tried < g.workers.size() && chosen == nullptr; ++tried) {
        const std::string& candidate = g.workers[g.next_worker++ % g.workers.size()];
        auto* w = find_worker(candidate);
        if (w != nullptr && w->unacked < w->prefetch) chosen = w, identity = candidate;
      }
      if (chosen == nullptr) return;  // every worker is at its prefetch
      const MessageId id = g.ready.front();
      g.ready.pop_front();
      if (!deliver(name, identity, *chosen, id)) return;  // try again next turn
    }
  }

  // False when the message could not be sent now (it is back in the queue).
  bool deliver(const std::string& group, const std::string& worker, WorkerState& w,
               const MessageId& id) {
    const DeliveryKey key{id, group};
    const std::uint32_t attempt = ++attempts_[key];
    std::string frame = frames_[id];
    if (attempt > 1) {  // the envelope carries the attempt number
      Message m;
      if (!decode(frame, m)) {
        m.envelope.attempt = attempt;
        frame = encode(m.envelope, m.payload());
      }
    }
    const auto command = encode_command({.command = Command::deliver, .group = group});
    const Sent sent = send_to_worker(worker, command, &frame);
    if (sent != Sent::ok) {
      --attempts_[key];
      groups_[group].ready.push_front(id);
      if (sent == Sent::gone) detach(worker);  // its other deliveries come back too
      return false;
    }
    ++w.unacked;
    delivered_.add();
    in_flight_[key] = {worker, Clock::now() + options_.ack_timeout};
    next_deadline_ = std::min(next_deadline_, in_flight_[key].deadline);
    return true;
  }

  enum class Sent { ok, busy, gone };

  // `busy`: the worker's queue is full for now (it stays attached);
  // `gone`: ROUTER_MANDATORY says the worker has disconnected.
  Sent send_to_worker(const std::string& worker, std::string_view command,
                      const std::string* frame) {
    try {
      if (!back_.send(zmq::buffer(worker), zmq::send_flags::sndmore | zmq::send_flags::dontwait))
        return Sent::busy;
      // The rest of an accepted message is always accepted.
      if (frame == nullptr) {
        (void)back_.send(zmq::buffer(command), zmq::send_flags::none);
      } else {
        (void)back_.send(zmq::buffer(command), zmq::send_flags::sndmore);
        (void)back_.send(zmq::buffer(*frame), zmq::send_flags::none);
      }
      return Sent::ok;
    } catch (const zmq::error_t&) {
      return Sent::gone;
    }
  }

  void reply_error(zmq::socket_t& socket, const zmq::message_t& identity, std::string_view why) {
    reply_error(socket, std::string(view(identity)), why);
  }
  void reply_error(zmq::socket_t& socket, const std::string& identity, std::string_view why) {
    if (identity.empty()) return;
    const auto encoded = encode_command({.command = Command::error, .reason = std::string(why)});
    try {
      (void)socket.send(zmq::buffer(identity),
                        zmq::send_flags::sndmore | zmq::send_flags::dontwait);
      (void)socket.send(zmq::buffer(encoded), zmq::send_flags::dontwait);
    } catch (const zmq::error_t&) {
    }
  }

  ProxyOptions options_;
  Spool spool_, dlq_;
  zmq::socket_t front_, back_;
  std::string front_endpoint_, back_endpoint_;
  Wakeup wakeup_;
  std::mutex completions_mutex_;
  std::vector<Completion> completions_;  // guarded by completions_mutex_

  std::map<std::string, Group> groups_;
  std::map<std::string, WorkerState> workers_;
  std::unordered_map<MessageId, std::pair<std::string, std::vector<std::string>>> publishing_;
  std::unordered_map<MessageId, std::string> frames_;
  std::unordered_map<MessageId, std::uint32_t> remaining_;  // groups still to settle
  std::map<DeliveryKey, std::uint32_t> attempts_;
  std::map<DeliveryKey, InFlight> in_flight_;
  std::map<DeliveryKey, std::uint64_t> first_failure_;
  std::map<DeliveryKey, std::string> last_error_;
  std::multimap<Clock::time_point, DeliveryKey> retries_;
  std::map<std::string, std::vector<Confirmation>> confirms_;
  std::unordered_set<MessageId> recent_;
  std::deque<MessageId> recent_order_;
  Clock::time_point next_deadline_ = Clock::time_point::max();
  std::mt19937_64 rng_{std::random_device{}()};
  md::Counter published_, stored_, unroutable_, duplicates_, full_, delivered_, acked_, retried_,
      dead_, malformed_, pending_;
};

}  // namespace

Proxy::Proxy(const ProxyOptions& options)
    : Device({options.front, options.back, options.stats, options.socket},
             std::make_unique<ProxyPump>(options)) {}

}  // namespace mqkit::devices
