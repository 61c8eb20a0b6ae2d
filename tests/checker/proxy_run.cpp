// The proxy under the checker: two producers publish to two groups (each
// gets every message); two workers per group ack, NACK-retry, NACK-dead or
// take their time, and are stopped and started again; a third group comes
// and goes (`group rm`); `mqkit dlq replay` runs as a process now and then;
// one message in ten is scheduled up to 1.5 s ahead (envelope not_before);
// the proxy is killed (SIGKILL, or a simulated power loss) at random
// instants and started again on the same spool. Then everything settles
// without faults, the DLQ is read from disk, and the history is checked
// against docs/contract.md.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>

#include <zmq_addon.hpp>

#include "child_process.hpp"
#include "client_slot.hpp"
#include "device_under_test.hpp"
#include "mqkit/devices/stats.hpp"
#include "mqkit/error.hpp"
#include "mqkit/reliable_consumer.hpp"
#include "mqkit/reliable_producer.hpp"
#include "mqkit/spool.hpp"
#include "protocol/commands.hpp"
#include "run.hpp"
#include "run_support.hpp"

namespace mqkit::checker {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::uint64_t wall_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

constexpr std::uint32_t kMaxAttempts = 6;               // checker_device's --max-attempts
const std::vector<std::string> kGroups = {"g1", "g2"};  // declared; checked in full
const std::string kPassingGroup = "g3";  // made by its worker's ATTACH, removed with group rm
const std::string kReplayOf = "mqkit-replay-of";  // the header `dlq replay` sets

// What the handlers do with a message, chosen when it is published.
enum class Kind {
  ack,       // acked at its first delivery
  flaky,     // fails its first two deliveries, then acked
  poison,    // NACK dead at once
  hopeless,  // fails every delivery: dead-lettered after kMaxAttempts
};

const char* name(Kind k) {
  switch (k) {
    case Kind::ack:
      return "ack";
    case Kind::flaky:
      return "flaky";
    case Kind::poison:
      return "poison";
    case Kind::hopeless:
      return "hopeless";
  }
  return "?";
}

struct Published {
  std::string payload;
  Kind kind = Kind::ack;
  std::optional<PublishStatus> status;  // the final answer
  Clock::time_point confirmed_at;
  std::uint64_t not_before = 0;  // scheduled: never delivered before (wall clock, ms)
  // A dead letter's copy from `dlq replay`: the message it replaces and the
  // one group it goes to (the one it died in).
  std::string copy_of, only_group;
};

struct InGroup {
  std::uint32_t last_attempt = 0;
  std::uint32_t deliveries = 0;
  bool handled = false;              // the handler finished it with an ack
  bool dead_expected = false;        // the handler asked for (or earned) a dead letter
  std::uint64_t replays_before = 0;  // `dlq replay` runs started before its last delivery
};

class ProxyModel {
 public:
  ProxyModel(History& history, Violations& violations)
      : history_(history), violations_(violations) {}

  void published(const std::string& id, std::string payload, Kind kind,
                 std::uint64_t not_before = 0) {
    std::lock_guard lock(mutex_);
    messages_[id] = {std::move(payload), kind, std::nullopt, {}, not_before};
    history_.add("publish", id, name(kind));
  }

  void confirmed(const PublishResult& r) {
    const std::string id = r.id.to_string();
    std::lock_guard lock(mutex_);
    messages_[id].status = r.status;
    messages_[id].confirmed_at = Clock::now();
    history_.add("confirm", id, to_string(r.status));
  }

  // `consumer_life`: the device's life when the handling consumer was made.
  // A consumer made in an earlier life may still hold copies that life sent
  // (prefetched before the kill): their lower attempt numbers are counted,
  // not violations. A consumer made in this life only holds this life's.
  Outcome deliver(const std::string& group, const Message& m, int consumer_life) {
    const std::string id = m.envelope.id.to_string();
    const std::uint32_t attempt = m.envelope.attempt;
    std::lock_guard lock(mutex_);
    ++delivered_;
    history_.add("deliver", id, group + " attempt " + std::to_string(attempt));
    auto it = messages_.find(id);
    if (it == messages_.end()) it = replayed_copy(id, group, m);
    if (it == messages_.end() || it->second.payload != m.payload()) {
      violations_.add("nothing is delivered that was not published", id,
                      it == messages_.end() ? "an id never published"
                                            : "a payload other than the one published");
      return Outcome::ack;
    }
    if (const auto now = wall_ms(); now < it->second.not_before)
      violations_.add("a scheduled message is never delivered before its not_before", id,
                      group + ": " + std::to_string(it->second.not_before - now) + " ms early");
    if (m.envelope.not_before != it->second.not_before)
      violations_.add("a scheduled message is never delivered before its not_before", id,
                      "delivered with another not_before than it was published with");
    if (!it->second.only_group.empty() && it->second.only_group != group)
      violations_.add("a replayed dead letter goes back to the group it died in", id,
                      "a copy for " + it->second.only_group + " delivered to " + group);
    InGroup& g = groups_[{id, group}];
    see_attempt(g, it->second, id, group, attempt, consumer_life == history_.incarnation());
    if (g.handled) ++redelivered_after_ack_;
    if (g.deliveries > 0) ++redelivered_;
    ++g.deliveries;
    const Kind kind = it->second.kind;
    Outcome outcome = Outcome::ack;
    if (kind == Kind::flaky && attempt <= 2) outcome = Outcome::retry;
    if (kind == Kind::poison) outcome = Outcome::dead;
    if (kind == Kind::hopeless) outcome = Outcome::retry;
    if (outcome == Outcome::ack) g.handled = true;
    if (outcome == Outcome::dead || (outcome == Outcome::retry && attempt >= kMaxAttempts))
      g.dead_expected = true;
    history_.add(outcome == Outcome::ack    ? "ack"
                 : outcome == Outcome::dead ? "nack-dead"
                                            : "nack",
                 id, group);
    return outcome;
  }

  // A worker that took the message and vanished without a word.
  // Its attempt numbers count as any delivery's (it attached in this life);
  // a hopeless message's last attempt lost with it is dead-lettered by the
  // proxy as "max attempts".
  void vanished_with(const std::string& group, const Message& m) {
    const std::string id = m.envelope.id.to_string();
    const std::uint32_t attempt = m.envelope.attempt;
    std::lock_guard lock(mutex_);
    ++vanished_with_;
    history_.add("vanished", id, group + " attempt " + std::to_string(attempt));
    auto it = messages_.find(id);
    if (it == messages_.end()) it = replayed_copy(id, group, m);
    if (it == messages_.end()) return;  // deliver() says so when it comes again
    InGroup& g = groups_[{id, group}];
    see_attempt(g, it->second, id, group, attempt, /*fresh=*/true);
    if (it->second.kind == Kind::hopeless && attempt >= kMaxAttempts) g.dead_expected = true;
  }

  // `mqkit dlq replay` starts: what it publishes may be a copy published
  // before (see see_attempt).
  void replay_starting() {
    std::lock_guard lock(mutex_);
    ++replays_started_;
  }

  std::uint64_t delivered() {
    std::lock_guard lock(mutex_);
    return delivered_;
  }

  // Every confirmed message is handled or due for the DLQ in every group.
  std::size_t unsettled() {
    std::lock_guard lock(mutex_);
    std::size_t n = 0;
    for (const auto& [id, p] : messages_) {
      if (!confirmed(p)) continue;
      for (const auto& group : checked_groups(p)) {
        const auto it = groups_.find({id, group});
        if (it == groups_.end() || !(it->second.handled || it->second.dead_expected)) ++n;
      }
    }
    return n;
  }

  // `losses`: the proxy's power losses, and what they may take.
  void check(const std::vector<StoredMessage>& dead_letters, const LossWindow& window,
             const std::vector<Clock::time_point>& losses, Report& report) {
    std::lock_guard lock(mutex_);
    std::set<std::pair<std::string, std::string>> in_dlq;
    for (const auto& d : dead_letters) {
      const std::string id = d.id.to_string();
      const std::string group = d.dead_letter ? d.dead_letter->group : "";
      if (Message m; !messages_.contains(id) && !decode(d.frame, m)) replayed_copy(id, group, m);
      in_dlq.insert({id, group});
      history_.add("dlq", id, group + (d.dead_letter ? ": " + d.dead_letter->reason : ""));
      const auto it = messages_.find(id);
      Message m;
      if (it == messages_.end() || decode(d.frame, m) || m.payload() != it->second.payload) {
        violations_.add("nothing is delivered that was not published", id,
                        it == messages_.end() ? "a dead letter of an id never published"
                                              : "a dead letter with another payload");
        continue;
      }
      if (!d.dead_letter || d.dead_letter->reason.empty() || d.dead_letter->attempts == 0)
        violations_.add("every dead letter is kept with its reason and attempts", id,
                        "dead letter in " + group + " without a reason or attempts");
      const auto g = groups_.find({id, group});
      if (g != groups_.end() && g->second.handled)
        violations_.add(
            "successful work is not dead-lettered", id,
            group + ": acked by its handler, yet in the DLQ (" + name(it->second.kind) + ")");
    }
    std::map<std::pair<std::string, std::string>, std::string> dlq_reason;
    for (const auto& d : dead_letters)
      if (d.dead_letter)
        dlq_reason[{d.id.to_string(), d.dead_letter->group}] = d.dead_letter->reason;
    // Settled in a group: handled, in the DLQ, or replayed as a copy that is
    // settled there in turn.
    std::function<bool(const std::string&, const std::string&, int)> settled =
        [&](const std::string& id, const std::string& group, int depth) {
          const auto g = groups_.find({id, group});
          if ((g != groups_.end() && g->second.handled) || in_dlq.contains({id, group}))
            return true;
          // Replayed: every copy (one per dead letter it had there) settled.
          const auto copies = copies_.find({id, group});
          if (depth >= 20 || copies == copies_.end()) return false;
          for (const auto& copy : copies->second)
            if (!settled(copy, group, depth + 1)) return false;
          return true;
        };
    std::uint64_t confirmed_count = 0, unasked = 0, lost_in_window = 0;
    for (const auto& [id, p] : messages_) {
      if (!confirmed(p)) continue;
      ++confirmed_count;
      for (const auto& group : checked_groups(p)) {
        const auto g = groups_.find({id, group});
        const bool asked = g != groups_.end() && (g->second.handled || g->second.dead_expected);
        if (asked || !in_dlq.contains({id, group})) continue;
        if (++unasked <= 1)
          std::printf(
              "  note: %s %s (%s) dead-lettered in %s without its handler asking: %s, %u "
              "deliveries\n",
              id.c_str(), name(p.kind), to_string(*p.status), group.c_str(),
              dlq_reason[{id, group}].c_str(), g == groups_.end() ? 0 : g->second.deliveries);
      }
      for (const auto& group : checked_groups(p)) {
        const auto g = groups_.find({id, group});
        const bool handled = g != groups_.end() && g->second.handled;
        const bool dead = settled(id, group, 0);
        if (!handled && !dead && window.may_lose(p.confirmed_at, losses)) {
          ++lost_in_window;
          continue;
        }
        if (!handled && !dead)
          violations_.add("a confirmed message is never lost", id,
                          "confirmed " + std::string(to_string(*p.status)) +
                              ", never handled nor dead-lettered in " + group);
        if (g != groups_.end() && g->second.dead_expected && !handled && !dead)
          violations_.add("every dead letter is kept per (message, group)", id,
                          group + ": its handler dead-lettered it; not in the DLQ");
      }
    }
    std::uint64_t refused = 0;
    for (const auto& [id, p] : messages_)
      if (p.status && !confirmed(p)) ++refused;
    report.figures["published"] = messages_.size();
    report.figures["confirmed"] = confirmed_count;
    report.figures["refused (full, rejected, timeout)"] = refused;
    report.figures["delivered"] = delivered_;
    report.figures["redelivered"] = redelivered_;
    report.figures["redelivered after an ack"] = redelivered_after_ack_;
    report.figures["dead letters"] = dead_letters.size();
    report.figures["copies from an earlier life handled after a restart"] = stale_copies_;
    report.figures["replayed copies published again by a later replay"] = copies_published_again_;
    report.figures["taken by workers that vanished"] = vanished_with_;
    report.figures["dead-lettered without its handler asking"] = unasked;
    report.figures["replayed copies delivered"] = copies_.size();
    if (window.any())
      report.figures["confirmed, lost to a power loss within the fsync interval"] = lost_in_window;
  }

  // `before`/`after`: the dead letters before the last `dlq replay` and at
  // the end. One that left the DLQ must have had its copy stored (and so
  // delivered: the run settled), never removed without one.
  // `passing_gone`: the passing group was surely removed before the replay
  // (otherwise its copies may be stored there, undelivered, without a worker).
  void check_replay(const std::set<std::pair<std::string, std::string>>& before,
                    const std::vector<StoredMessage>& after, bool passing_gone, Report& report) {
    std::lock_guard lock(mutex_);
    std::set<std::pair<std::string, std::string>> still;
    for (const auto& d : after)
      if (d.dead_letter) still.insert({d.id.to_string(), d.dead_letter->group});
    std::uint64_t replayed = 0;
    for (const auto& key : before) {
      if (still.contains(key)) continue;
      ++replayed;
      if (!copies_.contains(key) && (passing_gone || key.second != kPassingGroup))
        violations_.add("a dead letter leaves the DLQ only once its copy is stored", key.first,
                        key.second + ": removed by the last replay, its copy never delivered");
    }
    report.figures["dead letters the last replay took out"] = replayed;
  }

 private:
  // A delivery's attempt number (under mutex_). `fresh`: handed to a
  // consumer made in this device life, so it cannot be a copy an earlier
  // life sent.
  void see_attempt(InGroup& g, const Published& p, const std::string& id, const std::string& group,
                   std::uint32_t attempt, bool fresh) {
    // A replayed copy published again: a replay that ran after its last
    // delivery gave the same dead letter back (its removal was refused, or a
    // power loss under `interval` took the tombstone), and the proxy no
    // longer remembered the copy's id, which it can only forget once the
    // copy has left the group (acked, or dead-lettered). A new publication,
    // from attempt 1: at-least-once, as rule 8 says.
    const bool copy_gone = g.handled || g.dead_expected || g.last_attempt >= kMaxAttempts;
    const bool copy_published_again = !p.copy_of.empty() && attempt == 1 && copy_gone &&
                                      g.replays_before < replays_started_ && g.last_attempt > 1;
    if (copy_published_again) {
      ++copies_published_again_;
      history_.add("replayed", id, group + ": the copy published again, from attempt 1");
      g.last_attempt = 1;
    }
    g.replays_before = replays_started_;
    if (attempt < g.last_attempt && !fresh) ++stale_copies_;
    if (attempt < g.last_attempt && fresh)
      violations_.add("attempt numbers never go down", id,
                      group + ": attempt " + std::to_string(attempt) + " after " +
                          std::to_string(g.last_attempt));
    g.last_attempt = std::max(g.last_attempt, attempt);
  }

  // A delivery of an id never published: a copy `dlq replay` made of a dead
  // letter (under mutex_)? Then it stands for that message in that group.
  std::unordered_map<std::string, Published>::iterator replayed_copy(const std::string& id,
                                                                     const std::string& group,
                                                                     const Message& m) {
    const auto header = m.envelope.headers.find(kReplayOf);
    if (header == m.envelope.headers.end()) return messages_.end();
    const auto original = messages_.find(header->second);
    if (original == messages_.end()) return messages_.end();
    if (!groups_.contains({header->second, group}))
      violations_.add("a replayed dead letter goes back to the group it died in", id,
                      "a copy of " + header->second + " delivered to " + group +
                          ", which never had the original");
    Published copy = original->second;
    copy.status = PublishStatus::stored;  // delivered, so stored
    copy.confirmed_at = Clock::now();
    copy.copy_of = header->second;
    copy.only_group = group;
    copies_[{header->second, group}].insert(id);
    history_.add("replayed", id, "a copy of " + header->second + " for " + group);
    history_.add("replayed", header->second, "as " + id + " for " + group);
    return messages_.emplace(id, std::move(copy)).first;
  }

  // The groups that must settle the message: both declared groups, or a
  // copy's own (unless that is the passing group, whose messages go with it).
  static std::vector<std::string> checked_groups(const Published& p) {
    if (p.only_group.empty()) return kGroups;
    if (std::find(kGroups.begin(), kGroups.end(), p.only_group) == kGroups.end()) return {};
    return {p.only_group};
  }

  static bool confirmed(const Published& p) {
    return p.status == PublishStatus::stored || p.status == PublishStatus::duplicate;
  }

  History& history_;
  Violations& violations_;
  std::mutex mutex_;
  std::unordered_map<std::string, Published> messages_;
  std::map<std::pair<std::string, std::string>, InGroup> groups_;
  // (id, group) -> its copies' ids: one per dead letter it had there.
  std::map<std::pair<std::string, std::string>, std::set<std::string>> copies_;
  std::uint64_t delivered_ = 0, redelivered_ = 0, redelivered_after_ack_ = 0, stale_copies_ = 0,
                copies_published_again_ = 0, replays_started_ = 0, vanished_with_ = 0;
};

// A worker of `group`: a ReliableConsumer with a random prefetch, made
// again after each stop; sometimes slow.
std::unique_ptr<ClientSlot<ReliableConsumer>> worker(std::string group, std::uint32_t seed,
                                                     ProxyModel& model,
                                                     const DeviceUnderTest& device,
                                                     const History& history) {
  struct State {
    std::mt19937_64 rng;
    int life = 0;  // the device's life when the consumer was made
  };
  auto state = std::make_shared<State>(State{std::mt19937_64(seed), 0});
  return std::make_unique<ClientSlot<ReliableConsumer>>(
      [state, group, &device, &history] {
        ReliableConsumerOptions o;
        o.group = group;
        // The passing group's worker leaves nothing queued when it goes: an
        // ATTACH still in its socket would make the group again after the
        // `group rm` that follows.
        if (group == kPassingGroup) o.socket.linger = std::chrono::milliseconds(0);
        o.prefetch = static_cast<std::uint32_t>(std::uniform_int_distribution<>(1, 64)(state->rng));
        state->life = history.incarnation();
        return std::make_unique<ReliableConsumer>(device.back(), o, 5s);
      },
      [state, group, &model](ReliableConsumer& consumer) {
        consumer.run([&](const Message& m) {
          if (std::uniform_int_distribution<>(0, 60)(state->rng) == 0)
            std::this_thread::sleep_for(std::chrono::milliseconds(20 + state->rng() % 80));  // slow
          return model.deliver(group, m, state->life);
        });
      });
}

// A worker that attaches, takes a few deliveries and vanishes (no DETACH,
// no ack: its socket just closes), as a process that dies would: the proxy
// must find it lost and deliver those messages again.
void vanishing_worker(const std::string& back, const std::string& group, std::uint32_t credit,
                      ProxyModel& model) {
  using detail::protocol::Command;
  zmq::context_t context;
  zmq::socket_t socket(context, zmq::socket_type::dealer);
  socket.set(zmq::sockopt::linger, 0);
  socket.connect(back);
  const auto attach = detail::protocol::encode_command(
      {.command = Command::attach, .group = group, .credit = credit});
  (void)socket.send(zmq::buffer(attach), zmq::send_flags::none);
  const auto until = Clock::now() + 300ms;
  while (Clock::now() < until) {
    zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, std::chrono::milliseconds(50)) == 0) continue;
    std::vector<zmq::message_t> parts;
    if (!zmq::recv_multipart(socket, std::back_inserter(parts))) continue;
    detail::protocol::CommandFrame c;
    if (parts.empty() || !detail::protocol::decode_command(parts[0].to_string_view(), c) ||
        c.command != Command::deliver)
      continue;
    for (std::size_t i = 1; i < parts.size(); ++i) {
      Message m;
      if (decode(parts[i].to_string_view(), m)) continue;
      if (i - 1 < c.attempts.size()) m.envelope.attempt = c.attempts[i - 1];  // 1.3
      model.vanished_with(group, m);
    }
  }
}

// The passing group g3: its worker's ATTACH makes it; now and then the
// worker goes and `group rm` removes it. Rule 9: it stays removed across
// the proxy's restarts until an ATTACH makes it again.
class PassingGroup {
 public:
  PassingGroup(ProxyModel& model, const DeviceUnderTest& device, History& history,
               Violations& violations)
      : model_(model), device_(device), history_(history), violations_(violations) {}

  // After each start of the proxy.
  void step(std::mt19937_64& rng) {
    if (removed_) {
      step_after_restart();
      if (rng() % 2 == 0) make(rng);
      return;
    }
    if (!worker_) {
      make(rng);
      return;
    }
    if (rng() % 3 == 0) remove();
  }
  // Before the last replay: the group's dead letters then have nowhere to
  // go (their copies are `unroutable`) and must stay in the DLQ. True when
  // the group is surely gone (removed, and not made again since).
  bool remove_now() {
    if (worker_) remove();
    return removed_;
  }
  // Asks the restarted proxy whether the removed group is back.
  void step_after_restart() {
    if (!removed_) return;
    const auto found = listed();
    if (!found) {
      ++unanswered_;  // this life is already gone: not a pass
      return;
    }
    if (*found)
      violations_.add("a group removed with group rm stays removed", "",
                      kPassingGroup + " is back after a restart");
    ++restarts_while_removed_;
  }
  void finish(Report& report) {
    worker_.reset();
    report.figures["group rm of the passing group"] = removals_;
    report.figures["restarts that found it still removed"] = restarts_while_removed_;
    report.figures["restarts that did not answer group ls"] = unanswered_;
  }

 private:
  void remove() {
    worker_.reset();  // it detaches: nothing makes the group again
    try {
      (void)devices::admin_request(device_.stats(), {"group", "rm", kPassingGroup}, 5s);
      removed_ = true;
      ++removals_;
      history_.add("group rm", {}, kPassingGroup);
    } catch (const Error& e) {  // a life that ended meanwhile, a failed write
      history_.add("group rm", {}, kPassingGroup + " failed: " + e.what());
    }
  }
  // Whether `group ls` names the passing group; nullopt without an answer.
  std::optional<bool> listed() {
    try {
      for (const auto& row : devices::admin_request(device_.stats(), {"group", "ls"}, 5s))
        for (const auto& [column, value] : row)
          if (column == "group" && value == kPassingGroup) return true;
      return false;
    } catch (const Error&) {  // no answer: this life is already gone
      return std::nullopt;
    }
  }
  void make(std::mt19937_64& rng) {
    worker_ = worker(kPassingGroup, static_cast<std::uint32_t>(rng()), model_, device_, history_);
    removed_ = false;
  }

  ProxyModel& model_;
  const DeviceUnderTest& device_;
  History& history_;
  Violations& violations_;
  std::unique_ptr<ClientSlot<ReliableConsumer>> worker_;
  bool removed_ = false;
  std::uint64_t removals_ = 0, restarts_while_removed_ = 0, unanswered_ = 0;
};

// `mqkit dlq replay`, run as a user runs it, on a thread of its own so that
// the proxy can be killed meanwhile. Bounded: the CLI's own --timeout, then
// SIGKILL after 30 s.
class Replays {
 public:
  Replays(std::string mqkit, std::string dlq_dir, std::string front, ProxyModel& model,
          History& history)
      : mqkit_(std::move(mqkit)),
        dlq_dir_(std::move(dlq_dir)),
        front_(std::move(front)),
        model_(model),
        history_(history) {}
  ~Replays() { wait(); }

  void start() {
    if (thread_.joinable()) return;  // one at a time
    thread_ = std::thread([this] { run_once(); });
  }
  void wait() {
    if (thread_.joinable()) thread_.join();
  }
  void finish(Report& report) {
    wait();
    report.figures["dlq replays run"] = runs_;
    report.figures["dlq replays that replayed all they chose"] = complete_;
  }

 private:
  void run_once() {
    if (!std::filesystem::is_directory(dlq_dir_)) return;
    ++runs_;
    model_.replay_starting();
    history_.add("replay", {}, "mqkit dlq replay starts");
    test::ChildProcess cli(
        {mqkit_, "dlq", "replay", dlq_dir_, "--proxy", front_, "--timeout", "5s"});
    std::string last_line;
    std::optional<int> code;
    for (const auto until = Clock::now() + 30s; !code && Clock::now() < until;) {
      while (const auto line = cli.read_line(50ms)) last_line = *line;
      code = cli.wait(0ms);
    }
    if (!code) cli.signal(SIGKILL);
    if (code == 0) {
      ++complete_;
      history_.add("replay", {}, "done");
    } else {
      history_.add("replay", {},
                   "ended " + (code ? std::to_string(*code) : "killed") + ": " +
                       cli.stderr_text().substr(0, 300));
    }
  }

  std::string mqkit_, dlq_dir_, front_;
  ProxyModel& model_;
  History& history_;
  std::thread thread_;
  std::uint64_t runs_ = 0, complete_ = 0;
};

void produce(int number, std::uint32_t seed, ProxyModel& model, const std::string& front,
             Clock::time_point until, std::atomic<std::uint64_t>& unconfirmed_at_end) {
  std::mt19937_64 rng(seed);
  ReliableProducer producer(front, producer_options());
  for (std::uint64_t n = 0; Clock::now() < until; ++n) {
    const int roll = static_cast<int>(rng() % 100);
    const Kind kind = roll < 80   ? Kind::ack
                      : roll < 90 ? Kind::flaky
                      : roll < 95 ? Kind::poison
                                  : Kind::hopeless;
    auto envelope = Envelope::make("orders.created");
    if (rng() % 10 == 0) envelope.not_before = wall_ms() + rng() % 1500;
    std::string payload = "p" + std::to_string(number) + "-" + std::to_string(n) + "-" +
                          std::string(rng() % 200, 'x');
    model.published(envelope.id.to_string(), payload, kind, envelope.not_before);
    producer.send_async(envelope, payload,
                        [&model](const PublishResult& r) { model.confirmed(r); });
    std::this_thread::sleep_for(1ms);
  }
  unconfirmed_at_end += producer.flush(120s);
}

}  // namespace

Report run_proxy(const RunConfig& config, History& history) {
  Report report;
  Violations violations;
  ProxyModel model(history, violations);
  std::mt19937_64 rng(config.seed);
  DeviceUnderTest device(config.device_binary, "proxy", config.dir, config.seed, history,
                         {"--fsync", config.fsync});
  device.start(config.faults);

  const auto until = Clock::now() + config.duration;
  std::atomic<std::uint64_t> unconfirmed{0};
  std::vector<std::thread> producers;
  JoinAll join_producers{producers};
  for (int p = 0; p < 2; ++p)
    producers.emplace_back(produce, p, config.seed * 31 + p, std::ref(model), device.front(), until,
                           std::ref(unconfirmed));
  std::vector<std::unique_ptr<ClientSlot<ReliableConsumer>>> workers;
  for (std::size_t w = 0; w < 4; ++w)
    workers.push_back(worker(kGroups[w % 2], static_cast<std::uint32_t>(config.seed * 7 + w), model,
                             device, history));
  PassingGroup passing(model, device, history, violations);
  Replays replays(config.mqkit_binary, config.dir + "/spool.dlq", device.front(), model, history);

  // The chaos: kills at random instants, workers that come and go, a group
  // removed, dead letters replayed.
  while (Clock::now() < until) {
    const auto life = std::chrono::milliseconds(200 + rng() % 1300);
    if (rng() % 3 == 0)
      vanishing_worker(device.back(), kGroups[rng() % 2],
                       static_cast<std::uint32_t>(1 + rng() % 20), model);
    if (rng() % 4 == 0) replays.start();
    if (device.watch(life)) {
      if (rng() % 4 == 0) workers[rng() % workers.size()]->restart();
      device.kill();
    }
    device.start(config.faults);
    passing.step(rng);
    // Half the time every worker starts afresh on the new life (its
    // deliveries then check attempt numbers strictly); otherwise they
    // attach again by themselves.
    if (rng() % 2 == 0)
      for (auto& w : workers) w->restart();
  }
  replays.wait();
  device.kill();  // the last life without faults, to settle
  device.start("none");
  const auto flush_start = Clock::now();
  join_producers.join();
  report.figures["producers' final flush ms"] = ms_since(flush_start);
  // The last replay, with the passing group gone: every seed replays what
  // its dead letters are by now, and the passing group's must stay.
  const bool passing_gone = passing.remove_now();
  std::set<std::pair<std::string, std::string>> dead_before_last_replay;
  if (std::filesystem::is_directory(config.dir + "/spool.dlq"))
    for (const auto& d : read_spool(config.dir + "/spool.dlq").dead_letters)
      if (d.dead_letter) dead_before_last_replay.insert({d.id.to_string(), d.dead_letter->group});
  replays.start();
  replays.wait();

  const auto settle_start = Clock::now();
  const auto settle_until = settle_start + 90s;
  // Until the proxy holds nothing for the declared groups and every
  // confirmed message is handled or due for the DLQ as far as the handlers
  // know, or nothing was delivered for 5 s (a message whose last attempt a
  // lost worker took is dead-lettered without a handler seeing it): the DLQ
  // read from disk then decides.
  auto last_delivery = Clock::now();
  for (std::uint64_t seen = model.delivered(); Clock::now() < settle_until;) {
    const bool handlers_done = model.unsettled() == 0 || Clock::now() - last_delivery >= 5s;
    if (handlers_done && pending_in(device, kGroups) == 0u) break;
    std::this_thread::sleep_for(100ms);
    if (const auto now_seen = model.delivered(); now_seen != seen) {
      seen = now_seen;
      last_delivery = Clock::now();
    }
  }
  std::this_thread::sleep_for(1500ms);  // the last acks and dead letters land
  report.figures["settle ms"] = ms_since(settle_start);
  replays.finish(report);
  workers.clear();
  // Every run checks rule 9 at least once: the passing group, removed
  // before the last replay, is still gone after one more kill -9.
  device.kill();
  device.start("none");
  passing.step_after_restart();
  passing.finish(report);
  stop_device(device, violations);

  SpoolOptions dlq_options;
  dlq_options.dead_letters = true;
  const Spool dlq(config.dir + "/spool.dlq", dlq_options);
  const auto dead_letters = dlq.dead_letters();
  model.check(dead_letters, LossWindow(config.fsync), device.power_losses(), report);
  model.check_replay(dead_before_last_replay, dead_letters, passing_gone, report);
  close_report({&device}, violations, unconfirmed.load(), report);
  return report;
}

}  // namespace mqkit::checker
