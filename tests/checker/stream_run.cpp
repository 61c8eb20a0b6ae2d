// The stream device under the checker: two producers append keyed records
// (each key's records numbered in order); two members of one named reader
// share the partitions, come and go, and commit; the device is killed
// (SIGKILL, or a simulated power loss) at random instants and started again
// on the same directory. Then a fresh reader reads every partition from the
// start and the history is checked against docs/contract.md.
#include <algorithm>
#include <atomic>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>

#include "client_slot.hpp"
#include "device_under_test.hpp"
#include "mqkit/error.hpp"
#include "mqkit/reliable_producer.hpp"
#include "mqkit/stream_consumer.hpp"
#include "run.hpp"
#include "run_support.hpp"

namespace mqkit::checker {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct Appended {
  std::string payload;  // KEY:SEQ:filler
  std::optional<PublishStatus> status;
  Clock::time_point confirmed_at;
};

struct Record {
  std::string id;
  std::string payload;
};

class StreamModel {
 public:
  StreamModel(History& history, Violations& violations)
      : history_(history), violations_(violations) {}

  void published(const std::string& id, std::string payload) {
    std::lock_guard lock(mutex_);
    history_.add("publish", id, payload.substr(0, payload.rfind(':')));
    records_[id] = {std::move(payload), std::nullopt};
  }
  void confirmed(const PublishResult& r) {
    std::lock_guard lock(mutex_);
    auto& a = records_[r.id.to_string()];
    a.status = r.status;
    a.confirmed_at = Clock::now();
    history_.add("confirm", r.id.to_string(), to_string(r.status));
  }

  // A read by anyone: the same (partition, offset) always holds the same record.
  void read(const StreamEntry& e, const std::string& reader) {
    const std::string id = e.message.envelope.id.to_string();
    std::lock_guard lock(mutex_);
    history_.add("read", id,
                 reader + " p" + std::to_string(e.partition) + "@" + std::to_string(e.offset));
    // Readers get only synced records (under interval too), so an offset
    // once read is never taken back by a power loss and given to another.
    auto [it, made] = at_offset_.try_emplace({e.partition, e.offset}, id);
    if (!made && it->second != id)
      violations_.add("a stream never reuses an offset", id,
                      "p" + std::to_string(e.partition) + "@" + std::to_string(e.offset) +
                          " held " + it->second + " before");
    const auto r = records_.find(id);
    if (r == records_.end() || r->second.payload != e.message.payload())
      violations_.add("nothing is delivered that was not published", id,
                      r == records_.end() ? "an id never published" : "another payload");
    if (reader == "named") named_[e.partition][e.offset] = id;
  }

  // `losses`: the device's power losses, and what they may take.
  void check(const std::map<std::uint32_t, std::vector<std::pair<std::uint64_t, Record>>>& log,
             const LossWindow& window, const std::vector<Clock::time_point>& losses,
             Report& report) {
    std::lock_guard lock(mutex_);
    std::unordered_map<std::string, int> copies;
    std::map<std::string, std::int64_t> last_seq;  // per key, in log order
    std::uint64_t total = 0;
    for (const auto& [partition, records] : log) {
      for (std::size_t i = 0; i < records.size(); ++i) {
        const auto& [offset, rec] = records[i];
        ++total;
        if (i > 0 && offset != records[i - 1].first + 1)
          violations_.add("a stream never reuses or skips an offset", rec.id,
                          "p" + std::to_string(partition) + ": offset " + std::to_string(offset) +
                              " after " + std::to_string(records[i - 1].first));
        if (++copies[rec.id] == 2)
          violations_.add("a confirmed record is stored once (deduplicated re-sends)", rec.id,
                          "twice in the log");
        const auto first = rec.payload.find(':');
        const auto second = rec.payload.find(':', first + 1);
        if (first == std::string::npos || second == std::string::npos) continue;
        const std::string key = rec.payload.substr(0, first);
        const std::int64_t seq = std::stoll(rec.payload.substr(first + 1, second - first - 1));
        if (auto [it, made] = last_seq.try_emplace(key, seq); !made) {
          if (seq <= it->second)
            violations_.add(
                "a stream keeps per-key order", rec.id,
                "key " + key + ": " + std::to_string(seq) + " after " + std::to_string(it->second));
          it->second = std::max(it->second, seq);
        }
      }
      // The named reader: every record up to the last offset it handled was
      // handled, that very record (it resumed at or before its commit after
      // each restart, and no offset it passed came to hold another record).
      const auto& handled = named_[partition];
      if (!handled.empty())
        for (const auto& [offset, rec] : records) {
          if (offset > handled.rbegin()->first) break;
          const auto h = handled.find(offset);
          if (h != handled.end() && h->second == rec.id) continue;
          violations_.add("a named reader resumes at or before its last commit", rec.id,
                          "p" + std::to_string(partition) + "@" + std::to_string(offset) +
                              " was skipped by the named reader");
          break;
        }
    }
    std::uint64_t confirmed = 0, refused = 0, lost_in_window = 0;
    for (const auto& [id, a] : records_) {
      const bool ok = a.status == PublishStatus::stored || a.status == PublishStatus::duplicate;
      if (a.status && !ok) ++refused;
      if (!ok) continue;
      ++confirmed;
      if (!copies.contains(id) && window.may_lose(a.confirmed_at, losses)) {
        ++lost_in_window;
        continue;
      }
      if (!copies.contains(id))
        violations_.add("a confirmed message is never lost", id,
                        "confirmed " + std::string(to_string(*a.status)) + ", not in the log");
    }
    std::uint64_t named = 0;
    for (const auto& [p, offsets] : named_) named += offsets.size();
    report.figures["published"] = records_.size();
    report.figures["confirmed"] = confirmed;
    report.figures["refused (rejected, timeout)"] = refused;
    report.figures["records in the log"] = total;
    report.figures["offsets read by the named reader"] = named;
    if (window.any())
      report.figures["confirmed, lost to a power loss within the fsync interval"] = lost_in_window;
  }

 private:
  History& history_;
  Violations& violations_;
  std::mutex mutex_;
  std::unordered_map<std::string, Appended> records_;
  std::map<std::pair<std::uint32_t, std::uint64_t>, std::string> at_offset_;
  std::map<std::uint32_t, std::map<std::uint64_t, std::string>> named_;  // offset -> id
};

// A member of the named reader "checker", made again after each stop.
std::unique_ptr<ClientSlot<StreamConsumer>> member(StreamModel& model,
                                                   const DeviceUnderTest& device) {
  return std::make_unique<ClientSlot<StreamConsumer>>(
      [&device] {
        StreamConsumerOptions o;
        o.name = "checker";
        o.window = 50;
        return std::make_unique<StreamConsumer>(device.back(), o, 5s);
      },
      [&model](StreamConsumer& consumer) {
        consumer.run([&](const StreamEntry& e) { model.read(e, "named"); });
      });
}

void produce(int number, std::uint32_t seed, StreamModel& model, const std::string& front,
             Clock::time_point until, std::atomic<std::uint64_t>& unconfirmed_at_end) {
  std::mt19937_64 rng(seed);
  ReliableProducer producer(front, producer_options());
  std::vector<std::int64_t> next_seq(4, 0);
  while (Clock::now() < until) {
    const std::size_t k = rng() % next_seq.size();
    const std::string key = "k" + std::to_string(number) + "-" + std::to_string(k);
    auto envelope = Envelope::make("orders.created");
    envelope.key = key;
    std::string payload =
        key + ":" + std::to_string(next_seq[k]++) + ":" + std::string(rng() % 200, 'x');
    model.published(envelope.id.to_string(), payload);
    producer.send_async(envelope, payload,
                        [&model](const PublishResult& r) { model.confirmed(r); });
    std::this_thread::sleep_for(1ms);
  }
  unconfirmed_at_end += producer.flush(120s);
}

// Everything in the log, as the model saw it read.
std::map<std::uint32_t, std::vector<std::pair<std::uint64_t, Record>>> read_all(
    const std::string& back, StreamModel& model) {
  std::map<std::uint32_t, std::vector<std::pair<std::uint64_t, Record>>> log;
  read_whole_stream(back, [&](const StreamEntry& e) {
    model.read(e, "final");
    log[e.partition].push_back(
        {e.offset, {e.message.envelope.id.to_string(), std::string(e.message.payload())}});
  });
  return log;
}

}  // namespace

Report run_stream(const RunConfig& config, History& history) {
  Report report;
  Violations violations;
  StreamModel model(history, violations);
  std::mt19937_64 rng(config.seed);
  DeviceUnderTest device(config.device_binary, "stream", config.dir, config.seed, history,
                         {"--fsync", config.fsync});
  device.start(config.faults);

  const auto until = Clock::now() + config.duration;
  std::atomic<std::uint64_t> unconfirmed{0};
  std::vector<std::thread> producers;
  JoinAll join_producers{producers};
  for (int p = 0; p < 2; ++p)
    producers.emplace_back(produce, p, config.seed * 31 + p, std::ref(model), device.front(), until,
                           std::ref(unconfirmed));
  std::vector<std::unique_ptr<ClientSlot<StreamConsumer>>> members;
  for (int m = 0; m < 2; ++m) members.push_back(member(model, device));

  while (Clock::now() < until) {
    const auto life = std::chrono::milliseconds(200 + rng() % 1300);
    if (device.watch(life)) {
      if (rng() % 4 == 0) members[rng() % members.size()]->restart();
      device.kill();
    }
    device.start(config.faults);
  }
  device.kill();
  device.start("none");
  const auto flush_start = Clock::now();
  join_producers.join();
  report.figures["producers' final flush ms"] = ms_since(flush_start);
  std::this_thread::sleep_for(3s);  // the named reader catches up
  members.clear();

  const auto read_start = Clock::now();
  const auto log = read_all(device.back(), model);
  report.figures["final read ms"] = ms_since(read_start);
  stop_device(device, violations);
  model.check(log, LossWindow(config.fsync), device.power_losses(), report);
  close_report({&device}, violations, unconfirmed.load(), report);
  return report;
}

}  // namespace mqkit::checker
