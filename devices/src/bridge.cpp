// BridgePump: the bridge's client loop runs on a thread of its own (the
// client classes block), started with the device and stopped with it; the
// device loop only serves stats.
#include "mqkit/devices/bridge.hpp"

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "detail/counter.hpp"
#include "mqkit/error.hpp"
#include "mqkit/reliable_consumer.hpp"
#include "mqkit/reliable_producer.hpp"
#include "mqkit/stream_consumer.hpp"
#include "mqkit/subscriber.hpp"
#include "pump.hpp"
#include "wire/stop_event.hpp"

namespace mqkit::devices {
namespace {

namespace md = mqkit::detail;
using Source = BridgeOptions::Source;

constexpr auto kRetryEvery = std::chrono::seconds(1);      // source or target not there yet
constexpr std::uint32_t kWindow = 1000;                    // messages taken from the source at once
constexpr auto kSettleTimeout = std::chrono::seconds(10);  // waiting for the target's confirms
constexpr unsigned kReportRefusals = 3;  // refusals of one stream record before it is reported

// Messages published to the target and not yet confirmed, and those it
// refused (with its reason).
struct InFlight {
  std::unordered_set<MessageId> pending;
  std::unordered_map<MessageId, std::string> refused;
  std::string last_refusal;
};

const char* source_name(Source s) {
  switch (s) {
    case Source::proxy:
      return "proxy";
    case Source::stream:
      return "stream";
    case Source::forwarder:
      return "forwarder";
  }
  return "?";
}

class BridgePump final : public detail::Pump {
 public:
  explicit BridgePump(const BridgeOptions& o) : options_(o) {
    if (options_.from.empty() || options_.to.empty())
      throw Error(errc::bad_argument, "a bridge needs a source (from) and a target (to)");
    if (options_.source != Source::forwarder && options_.name.empty())
      throw Error(errc::bad_argument, std::string("a bridge from a ") +
                                          source_name(options_.source) +
                                          " needs a name (the group or consumer name it reads as)");
  }

  ~BridgePump() override { stop(); }

  // Ends the source client's run and the target producer's waits, so the
  // worker returns in a bounded time even while the target is down.
  void stop() noexcept override {
    {
      std::lock_guard lock(mutex_);
      closing_ = true;
      if (stop_source_) stop_source_();
      if (stop_target_) stop_target_();
    }
    wake_.notify_all();
    if (worker_.joinable() && worker_.get_id() != std::this_thread::get_id()) worker_.join();
  }

  const char* kind() const noexcept override { return "bridge"; }
  std::string in_endpoint() const override { return options_.from; }
  std::string out_endpoint() const override { return options_.to; }

  std::size_t poll_items(zmq::pollitem_t*) override {
    // The device loop calls this first on its own thread: the bridge starts
    // with it.
    if (!worker_.joinable()) worker_ = std::thread([this] { work(); });
    return 0;
  }
  std::chrono::milliseconds poll_timeout() const override { return std::chrono::seconds(1); }
  void pump(const zmq::pollitem_t*) override {}

  Counters counters() const override {
    return {{"bridged", bridged_.get()},
            {"refused_by_target", refused_.get()},
            {"reconnects", reconnects_.get()},
            {"connected", connected_.load() ? 1u : 0u},
            {"stalled_on_refusal", stalled_.load() ? 1u : 0u}};
  }

 private:
  bool closing() {
    std::lock_guard lock(mutex_);
    return closing_ || md::global_stop().is_set();
  }

  // Connects, bridges until the source or target fails or the bridge stops,
  // then tries again after a pause.
  void work() {
    while (!closing()) {
      try {
        ReliableProducerOptions producer_options;
        producer_options.socket = socket_towards(options_.target_security);
        producer_options.timeout = std::chrono::hours(24 * 365);  // keep trying: never drop
        ReliableProducer target(options_.to, producer_options);
        const TargetRegistration registered(*this, target);
        run_source(target);
      } catch (const std::exception& e) {
        connected_ = false;
        reconnects_.add();
        if (!closing()) {
          const std::string what = e.what();
          const bool from_source = !what.starts_with("target ");  // target errors say so
          note(what + (from_source && options_.source_security.enabled()
                           ? "; the bridge uses CURVE towards its source: is the public key of "
                             "its curve_key on that device's allow list, and its server key "
                             "right?"
                           : ""));
        }
        std::unique_lock lock(mutex_);
        stop_source_ = nullptr;
        wake_.wait_for(lock, kRetryEvery, [this] { return closing_; });
      }
    }
  }

  // Publishes `m` to the target without waiting; the confirm settles it in
  // `flight`. The source acks or commits only after settle().
  void publish(ReliableProducer& target, const Message& m, InFlight& flight) {
    const MessageId id = m.id();
    if (!flight.pending.insert(id).second) return;  // a redelivery of one still in flight
    Envelope envelope = m.envelope;
    envelope.attempt = 1;
    target.send_async(envelope, m.payload(), [this, &flight, id](const PublishResult& r) {
      flight.pending.erase(id);
      if (r.ok()) {
        bridged_.add();
        return;
      }
      refused_.add();
      flight.last_refusal = std::string("target ") + options_.to + " answered " +
                            to_string(r.status) + ": " + r.reason;
      flight.refused[id] = flight.last_refusal;
    });
  }

  // Waits (bounded) for the target's confirms of everything published; says
  // why, when the target's handshake fails.
  void settle(ReliableProducer& target) {
    if (target.flush(kSettleTimeout) > 0 && !target.connection_problem().empty())
      note("target " + options_.to + ": " + target.connection_problem());
  }

  using Position = std::pair<std::uint32_t, std::uint64_t>;  // partition, offset
  using Positions = std::unordered_map<MessageId, Position>;

  // A stream source stays at a record the target refuses for good (it is
  // never skipped); after kReportRefusals refusals in a row of the same
  // record, the bridge says which one and counts itself stalled, and the
  // operator decides (make the target take it).
  void hold_at_refusal(const InFlight& flight, const Positions& position_of) {
    std::optional<Position> first;
    for (const auto& [id, reason] : flight.refused)
      if (auto it = position_of.find(id);
          it != position_of.end() && (!first || it->second < *first))
        first = it->second;
    if (!first) return;
    refusal_ = {*first, refusal_.at == *first ? refusal_.times + 1 : 1};
    if (refusal_.times != kReportRefusals) return;
    stalled_ = true;
    std::fprintf(stderr,
                 "mqkit bridge: %s -> %s: partition %u offset %llu refused %u times (%s); the "
                 "bridge holds its position there and tries again every %llds: make the target "
                 "take it (for unroutable, a group whose filter matches its topic)\n",
                 options_.from.c_str(), options_.to.c_str(), first->first,
                 static_cast<unsigned long long>(first->second), refusal_.times,
                 flight.last_refusal.c_str(), static_cast<long long>(kRetryEvery.count()));
  }

  // Why the bridge cannot get through, on stderr once per new reason.
  void note(const std::string& problem) {
    if (problem == last_problem_) return;
    last_problem_ = problem;
    std::fprintf(stderr, "mqkit bridge: %s -> %s: %s (trying again)\n", options_.from.c_str(),
                 options_.to.c_str(), problem.c_str());
  }

  SocketOptions socket_towards(const Security& security) const {
    SocketOptions o = options_.socket;
    if (security.enabled()) o.security = security;
    return o;
  }

  // Publishes `m` to the target and waits for its confirm; throws when the
  // target refuses it.
  void forward(ReliableProducer& target, const Message& m) {
    Envelope envelope = m.envelope;
    envelope.attempt = 1;
    const auto result = target.send(envelope, m.payload());
    if (!result.ok()) {
      refused_.add();
      throw std::runtime_error(std::string("target ") + options_.to + " answered " +
                               to_string(result.status) + ": " + result.reason);
    }
    bridged_.add();
  }

  // Lets the destructor stop the running source client, until the
  // registration (declared after the client, so gone before it) ends.
  class StopRegistration {
   public:
    explicit StopRegistration(BridgePump& pump) : pump_(pump) {}
    ~StopRegistration() {
      std::lock_guard lock(pump_.mutex_);
      pump_.stop_source_ = nullptr;
    }
    StopRegistration(const StopRegistration&) = delete;
    StopRegistration& operator=(const StopRegistration&) = delete;

   private:
    BridgePump& pump_;
  };

  // Lets the destructor end the target producer's waits while it runs; at
  // the end, says what a stopping bridge left unconfirmed (the source keeps
  // it: unacked at a proxy, uncommitted at a stream).
  class TargetRegistration {
   public:
    TargetRegistration(BridgePump& pump, ReliableProducer& target) : pump_(pump), target_(target) {
      std::lock_guard lock(pump_.mutex_);
      if (pump_.closing_) target_.stop();
      pump_.stop_target_ = [&target] { target.stop(); };
    }
    ~TargetRegistration() {
      std::lock_guard lock(pump_.mutex_);
      pump_.stop_target_ = nullptr;
      if (const auto left = target_.unconfirmed(); pump_.closing_ && left > 0)
        std::fprintf(stderr, "mqkit bridge: stopped with %zu message%s unconfirmed by %s\n", left,
                     left == 1 ? "" : "s", pump_.options_.to.c_str());
    }
    TargetRegistration(const TargetRegistration&) = delete;
    TargetRegistration& operator=(const TargetRegistration&) = delete;

   private:
    BridgePump& pump_;
    ReliableProducer& target_;
  };

  template <typename Client>
  [[nodiscard]] std::unique_ptr<StopRegistration> publish_stop(Client& client) {
    std::lock_guard lock(mutex_);
    if (closing_) throw std::runtime_error("closing");
    stop_source_ = [&client] { client.stop(); };
    connected_ = true;
    return std::make_unique<StopRegistration>(*this);
  }

  void run_source(ReliableProducer& target) {
    switch (options_.source) {
      case Source::proxy: {
        InFlight flight;
        ReliableConsumer source(options_.from, {options_.name, options_.topics, kWindow, true,
                                                socket_towards(options_.source_security)});
        // Acks go out only for what the target confirmed. A refusal is a
        // NACK retry with the target's reason (after the attempts, a dead
        // letter); what is still unconfirmed after the wait stays unacked
        // and comes back after the proxy's ack timeout.
        source.on_before_ack([&](std::vector<MessageId>& ids,
                                 std::vector<std::pair<MessageId, std::string>>& retries) {
          settle(target);
          std::erase_if(ids, [&](const MessageId& id) {
            if (auto it = flight.refused.find(id); it != flight.refused.end()) {
              retries.emplace_back(id, std::move(it->second));
              flight.refused.erase(it);
              return true;
            }
            return flight.pending.contains(id);
          });
        });
        const auto registered = publish_stop(source);
        source.run([&](const Message& m) {
          publish(target, m, flight);
          return Outcome::ack;
        });
        break;
      }
      case Source::stream: {
        InFlight flight;
        StreamConsumer source(options_.from, {options_.name, options_.start, kWindow,
                                              socket_towards(options_.source_security)});
        Positions position_of;  // of what is handled and not yet committed
        // A position moves only past what the target confirmed; a refusal
        // leaves it where it is (the bridge reconnects and reads again).
        source.on_before_commit([&] {
          settle(target);
          if (!flight.refused.empty()) {
            hold_at_refusal(flight, position_of);
            throw std::runtime_error(flight.last_refusal);
          }
          if (!flight.pending.empty())
            throw std::runtime_error(
                "target " + options_.to + " did not confirm in time" +
                (target.connection_problem().empty() ? "" : ": " + target.connection_problem()));
          position_of.clear();
          refusal_ = {};
          stalled_ = false;
        });
        const auto registered = publish_stop(source);
        source.run([&](const StreamEntry& e) {
          position_of[e.message.id()] = {e.partition, e.offset};
          publish(target, e.message, flight);
        });
        break;
      }
      case Source::forwarder: {
        Subscriber source(connect(options_.from),
                          options_.topics.empty() ? std::vector<std::string>{""} : options_.topics,
                          socket_towards(options_.source_security));
        const auto registered = publish_stop(source);
        source.run([&](const Message& m) {
          // Nothing upstream keeps it: try until the target takes it.
          while (!closing()) {
            try {
              forward(target, m);
              return;
            } catch (const std::runtime_error&) {
              std::this_thread::sleep_for(std::chrono::milliseconds(100));
            }
          }
        });
        break;
      }
    }
    if (!closing()) throw std::runtime_error("the source stopped");  // go round again
  }

  BridgeOptions options_;
  std::thread worker_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool closing_ = false;               // guarded by mutex_
  std::function<void()> stop_source_;  // guarded by mutex_
  std::function<void()> stop_target_;  // guarded by mutex_
  std::atomic<bool> connected_{false};
  std::string last_problem_;  // the worker's: the last reason noted
  struct {
    Position at{};
    unsigned times = 0;
  } refusal_;  // the worker's: the record refused last, and how often in a row
  std::atomic<bool> stalled_{false};
  md::Counter bridged_, refused_, reconnects_;
};

}  // namespace

Bridge::Bridge(const BridgeOptions& options)
    : Device({{}, {}, options.stats, options.socket}, std::make_unique<BridgePump>(options)) {}

}  // namespace mqkit::devices
