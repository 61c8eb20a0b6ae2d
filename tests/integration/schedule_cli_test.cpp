// Scheduled messages as users send them: `mqkit send --delay/--at`, and a
// ReliableProducer's not_before, through `mqkit proxy` processes over tcp
// loopback with the spool on disk, killed -9 and restarted; workers record
// when each message reached them. Asserts "never before its time" and
// "eventually", never an upper bound on lateness (bench/ measures that).
#include <catch2/catch.hpp>

#include <atomic>
#include <csignal>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "child_process.hpp"
#include "cli_support.hpp"
#include "helpers.hpp"
#include "mqkit/devices/stats.hpp"
#include "mqkit/reliable_consumer.hpp"
#include "mqkit/reliable_producer.hpp"

using namespace std::chrono_literals;
using mqkit::test::ChildProcess;
using mqkit::test::run_mqkit;
using mqkit::test::start_proxy;
using mqkit::test::TempDir;
using mqkit::test::wait_for;

namespace {

std::uint64_t wall_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

// A worker thread: records, per message, the first time it was handed over
// and whether any handing-over came before the message's not_before.
class RecordingWorker {
 public:
  RecordingWorker(const std::string& back, const std::string& group)
      : thread_([this, back, group] {
          mqkit::ReliableConsumer consumer(back, {.group = group, .prefetch = 50});
          consumer_ = &consumer;
          ready_ = true;
          consumer.run([this](const mqkit::Message& m) {
            const std::uint64_t now = wall_ms();
            std::lock_guard lock(mutex_);
            if (now < m.envelope.not_before)
              early_.push_back(std::string(m.payload()) + " came " +
                               std::to_string(m.envelope.not_before - now) + " ms early");
            first_seen_.try_emplace(m.id(), now);
            ++handled_;
            return mqkit::Outcome::ack;
          });
        }) {
    REQUIRE(wait_for([&] { return ready_.load(); }, 15s));
  }
  ~RecordingWorker() {
    consumer_.load()->stop();
    thread_.join();
  }
  std::size_t distinct() {
    std::lock_guard lock(mutex_);
    return first_seen_.size();
  }
  std::vector<std::string> early() {
    std::lock_guard lock(mutex_);
    return early_;
  }
  std::size_t handled() {
    std::lock_guard lock(mutex_);
    return handled_;
  }

 private:
  std::atomic<bool> ready_{false};
  std::atomic<mqkit::ReliableConsumer*> consumer_{nullptr};
  std::mutex mutex_;
  std::map<mqkit::MessageId, std::uint64_t> first_seen_;
  std::vector<std::string> early_;
  std::size_t handled_ = 0;
  std::thread thread_;
};

}  // namespace

TEST_CASE(
    "2,000 messages with random delays of 0-3 s: none early, all delivered, also across "
    "two kill -9s",
    "[integration][proxy][schedule][crash]") {
  const bool kill = GENERATE(false, true);
  INFO("kill -9 twice: " << kill);
  TempDir dir;
  const auto ports = mqkit::test::free_endpoints(3);
  const std::vector<std::string> args{"--group", "g=#",     "--heartbeat",
                                      "200ms",   "--fsync", "always"};
  auto proxy = std::make_unique<mqkit::test::RunningDevice>(
      start_proxy(dir, args, ports[0], ports[1], ports[2]));
  RecordingWorker worker(ports[1], "g");
  auto restart = [&] {
    proxy->process.signal(SIGKILL);
    REQUIRE(proxy->process.wait(10s));
    proxy.reset();
    proxy = std::make_unique<mqkit::test::RunningDevice>(
        start_proxy(dir, args, ports[0], ports[1], ports[2]));
  };

  mqkit::ReliableProducer producer(ports[0], {.timeout = 90s});
  std::mt19937_64 rng(GENERATE(take(1, random(1u, 1000000u))));
  std::atomic<std::size_t> stored{0};
  constexpr int kMessages = 2000;
  for (int i = 0; i < kMessages; ++i) {
    auto e = mqkit::Envelope::make("t");
    e.not_before = wall_ms() + rng() % 3001;  // 0-3 s from now
    producer.send_async(e, "m" + std::to_string(i), [&](const mqkit::PublishResult& r) {
      if (r.ok()) ++stored;
    });
    if (kill && (i == 700 || i == 1400)) restart();  // mid-run, some scheduled, some not sent
  }
  CHECK(producer.flush(90s) == 0);
  REQUIRE(stored == kMessages);  // every one confirmed
  if (kill) restart();           // and once more with all of them stored, most not yet due
  CHECK(wait_for([&] { return worker.distinct() == kMessages; }, 60s));
  CHECK(worker.distinct() == kMessages);
  CHECK(worker.early().empty());
  for (const auto& e : worker.early()) WARN(e);
  WARN("kill -9: " << kill << "; " << worker.handled() << " handlings of " << kMessages
                   << " messages");
}

TEST_CASE("send --delay and --at schedule through the proxy, and are a usage error with --stream",
          "[integration][proxy][schedule]") {
  TempDir dir;
  auto proxy = start_proxy(dir, {"--group", "g=#"});
  RecordingWorker worker(proxy.endpoints.out, "g");
  mqkit::test::write_file(dir.file("in"), "one\ntwo\n");
  auto [code, err] = run_mqkit({"send", "--proxy", proxy.endpoints.in, "--topic", "t", "--delay",
                                "1500ms", "--file", dir.file("in")});
  INFO(err);
  REQUIRE(code == 0);
  REQUIRE(wait_for([&] { return worker.distinct() == 2; }, 30s));
  CHECK(worker.early().empty());

  // Confirmed (exit 0) while it waits its time, and counted as scheduled.
  mqkit::test::write_file(dir.file("reminder"), "reminder\n");
  std::tie(code, err) = run_mqkit({"send", "--proxy", proxy.endpoints.in, "--topic", "t", "--delay",
                                   "24h", "--file", dir.file("reminder")});
  CHECK(code == 0);
  CHECK(wait_for(
      [&] {
        return mqkit::devices::query_stats(proxy.endpoints.stats, 5s).get("group.g.scheduled") == 1;
      },
      10s));
  CHECK(worker.distinct() == 2);

  std::tie(code, err) =
      run_mqkit({"send", "--proxy", proxy.endpoints.in, "--topic", "t", "--at",
                 "2000-01-01T00:00:00Z", "--file", dir.file("in")});  // past: at once
  CHECK(code == 0);
  REQUIRE(wait_for([&] { return worker.distinct() == 4; }, 30s));
  CHECK(worker.early().empty());
  std::this_thread::sleep_for(300ms);
  CHECK(worker.distinct() == 4);  // the reminder waits its day

  std::tie(code, err) = run_mqkit(
      {"send", "--stream", proxy.endpoints.in, "--delay", "5s", "--file", dir.file("in")});
  CHECK(code == 2);
  CHECK_THAT(err, Catch::Contains("a stream keeps records as they are"));
  std::tie(code, err) = run_mqkit(
      {"send", "--proxy", proxy.endpoints.in, "--at", "tomorrow", "--file", dir.file("in")});
  CHECK(code == 2);
  CHECK_THAT(err, Catch::Contains("not an RFC 3339 time"));
}
