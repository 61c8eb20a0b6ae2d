// A bridge under the checker: two producers publish keyed messages to a
// proxy; its group "audit" is bridged into a stream. The proxy, the stream
// and the bridge are each killed (SIGKILL; the devices also by simulated
// power losses) at random instants and started again. Then everything
// settles without faults, the stream is read from the start, the DLQ from
// disk, and each confirmed message must be in the stream exactly once (the
// bridge acks only what the stream confirmed; the stream answers a re-sent
// id `duplicate`) or, refused too often, in the DLQ of "audit".
#include <algorithm>
#include <atomic>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>

#include "device_under_test.hpp"
#include "mqkit/devices/stats.hpp"
#include "mqkit/error.hpp"
#include "mqkit/reliable_producer.hpp"
#include "mqkit/spool.hpp"
#include "run.hpp"
#include "run_support.hpp"

namespace mqkit::checker {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

const std::string kGroup = "audit";

struct Sent {
  std::string payload, key;
  std::optional<PublishStatus> status;
  Clock::time_point confirmed_at;
};

class BridgeModel {
 public:
  BridgeModel(History& history, Violations& violations)
      : history_(history), violations_(violations) {}

  void published(const std::string& id, std::string payload, std::string key) {
    std::lock_guard lock(mutex_);
    history_.add("publish", id, key);
    sent_[id] = {std::move(payload), std::move(key), std::nullopt, {}};
  }
  void confirmed(const PublishResult& r) {
    std::lock_guard lock(mutex_);
    auto& s = sent_[r.id.to_string()];
    s.status = r.status;
    s.confirmed_at = Clock::now();
    history_.add("confirm", r.id.to_string(), to_string(r.status));
  }

  // `in_stream`: every record of the stream; `dead_letters`: the proxy's DLQ;
  // `losses`: the proxy's power losses.
  void check(const std::vector<StreamEntry>& in_stream,
             const std::vector<StoredMessage>& dead_letters, const LossWindow& window,
             const std::vector<Clock::time_point>& losses, Report& report) {
    std::lock_guard lock(mutex_);
    std::unordered_map<std::string, int> copies;
    for (const auto& e : in_stream) {
      const std::string id = e.message.envelope.id.to_string();
      history_.add("in stream", id,
                   "p" + std::to_string(e.partition) + "@" + std::to_string(e.offset));
      const auto it = sent_.find(id);
      if (it == sent_.end() || it->second.payload != e.message.payload() ||
          e.message.envelope.key != it->second.key || e.message.topic() != "orders.created") {
        violations_.add("nothing is delivered that was not published", id,
                        it == sent_.end() ? "in the stream, never published"
                                          : "in the stream with another payload, key or topic");
        continue;
      }
      if (++copies[id] == 2)
        violations_.add("a bridge stores a message once in its target", id, "twice in the stream");
    }
    std::set<std::string> dead;
    for (const auto& d : dead_letters) {
      const std::string id = d.id.to_string();
      history_.add("dlq", id, d.dead_letter ? d.dead_letter->reason : "");
      Message m;
      const auto it = sent_.find(id);
      if (it == sent_.end() || decode(d.frame, m) || m.payload() != it->second.payload) {
        violations_.add("nothing is delivered that was not published", id,
                        "a dead letter of an id never published, or with another payload");
        continue;
      }
      if (!d.dead_letter || d.dead_letter->group != kGroup || d.dead_letter->reason.empty())
        violations_.add("every dead letter is kept with its reason and attempts", id,
                        "a dead letter without its group or reason");
      dead.insert(id);
    }
    std::uint64_t confirmed = 0, refused = 0, lost_in_window = 0;
    for (const auto& [id, s] : sent_) {
      const bool ok = s.status == PublishStatus::stored || s.status == PublishStatus::duplicate;
      if (s.status && !ok) ++refused;
      if (!ok) continue;
      ++confirmed;
      if (copies.contains(id) || dead.contains(id)) continue;
      if (window.may_lose(s.confirmed_at, losses)) {
        ++lost_in_window;
        continue;
      }
      violations_.add("a confirmed message is never lost", id,
                      "confirmed " + std::string(to_string(*s.status)) +
                          ", neither in the stream nor dead-lettered in " + kGroup);
    }
    report.figures["published"] = sent_.size();
    report.figures["confirmed"] = confirmed;
    report.figures["refused (full, rejected, timeout)"] = refused;
    report.figures["in the stream"] = copies.size();
    report.figures["dead letters"] = dead_letters.size();
    if (window.any())
      report.figures["confirmed, lost to a power loss within the fsync interval"] = lost_in_window;
  }

 private:
  History& history_;
  Violations& violations_;
  std::mutex mutex_;
  std::unordered_map<std::string, Sent> sent_;
};

void produce(int number, std::uint32_t seed, BridgeModel& model, const std::string& front,
             Clock::time_point until, std::atomic<std::uint64_t>& unconfirmed_at_end) {
  std::mt19937_64 rng(seed);
  ReliableProducer producer(front, producer_options());
  for (std::uint64_t n = 0; Clock::now() < until; ++n) {
    auto envelope = Envelope::make("orders.created");
    envelope.key = "k" + std::to_string(rng() % 8);
    std::string payload = "b" + std::to_string(number) + "-" + std::to_string(n) + "-" +
                          std::string(rng() % 200, 'x');
    model.published(envelope.id.to_string(), payload, *envelope.key);
    producer.send_async(envelope, payload,
                        [&model](const PublishResult& r) { model.confirmed(r); });
    std::this_thread::sleep_for(2ms);
  }
  unconfirmed_at_end += producer.flush(120s);
}

}  // namespace

Report run_bridge(const RunConfig& config, History& history) {
  Report report;
  Violations violations;
  BridgeModel model(history, violations);
  std::mt19937_64 rng(config.seed);
  // The proxy's files in DIR/spool, the stream's in DIR/stream.
  DeviceUnderTest proxy(config.device_binary, "proxy", config.dir, config.seed, history,
                        {"--fsync", config.fsync, "--groups", kGroup});
  DeviceUnderTest stream(config.device_binary, "stream", config.dir, config.seed + 500, history,
                         {"--fsync", config.fsync});
  // Under interval the stream gets no power losses: one would take back
  // records it confirmed to the bridge within D, long after the producer's
  // confirm that the check can see (what the proxy may lose is judged by
  // those confirms).
  const LossWindow window(config.fsync);
  const std::string stream_faults =
      window.any() && config.faults == "power" ? std::string("io") : config.faults;
  stream.number_lives(false);
  proxy.start(config.faults);
  stream.start(stream_faults);
  DeviceUnderTest bridge(config.device_binary, "bridge", config.dir, config.seed, history,
                         {"--from", proxy.back(), "--to", stream.front(), "--group", kGroup});
  bridge.number_lives(false);
  bridge.start("none");
  const std::vector<DeviceUnderTest*> all{&proxy, &stream, &bridge};

  const auto until = Clock::now() + config.duration;
  std::atomic<std::uint64_t> unconfirmed{0};
  std::vector<std::thread> producers;
  JoinAll join_producers{producers};
  for (int p = 0; p < 2; ++p)
    producers.emplace_back(produce, p, config.seed * 31 + p, std::ref(model), proxy.front(), until,
                           std::ref(unconfirmed));

  // The chaos: one of the three killed at a random instant, or a device's
  // own power loss; whichever went is started again.
  while (Clock::now() < until) {
    const auto life_until = Clock::now() + std::chrono::milliseconds(200 + rng() % 1300);
    bool died = false;
    while (!died && Clock::now() < life_until)
      for (auto* d : all)
        if (!d->watch(30ms)) died = true;
    if (!died) all[rng() % all.size()]->kill();
    for (auto* d : all)
      if (!d->running())
        d->start(d == &bridge ? "none" : d == &stream ? stream_faults : config.faults);
  }
  for (auto* d : all) d->kill();  // the last lives without faults, to settle
  proxy.start("none");
  stream.start("none");
  bridge.start("none");
  const auto flush_start = Clock::now();
  join_producers.join();
  report.figures["producers' final flush ms"] = ms_since(flush_start);

  // Until the proxy holds nothing for "audit" (bounded).
  const auto settle_start = Clock::now();
  for (const auto settle_until = settle_start + 90s; Clock::now() < settle_until;) {
    if (pending_in(proxy, {kGroup}) == 0u) break;
    std::this_thread::sleep_for(100ms);
  }
  report.figures["settle ms"] = ms_since(settle_start);
  stop_device(bridge, violations);

  std::vector<StreamEntry> in_stream;
  read_whole_stream(stream.back(), [&](const StreamEntry& e) { in_stream.push_back(e); });
  stop_device(stream, violations);
  stop_device(proxy, violations);

  SpoolOptions dlq_options;
  dlq_options.dead_letters = true;
  const Spool dlq(config.dir + "/spool.dlq", dlq_options);
  model.check(in_stream, dlq.dead_letters(), window, proxy.power_losses(), report);
  report.figures["bridge kills"] = static_cast<std::uint64_t>(bridge.kills());
  report.figures["stream kills"] = static_cast<std::uint64_t>(stream.kills());
  close_report({&proxy, &stream, &bridge}, violations, unconfirmed.load(), report);
  return report;
}

}  // namespace mqkit::checker
