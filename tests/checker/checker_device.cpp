// The device under the contract checker, in a process of its own so that
// the checker can kill it with a real SIGKILL. Its files go through a
// FaultEnv driven from the seed: slow fdatasyncs, a full disk, EIO and short
// writes now and then, and (--faults power) a power loss, which drops every
// byte not yet synced and then kills the process.
//
// usage: checker_device --kind proxy|stream|bridge --dir DIR --seed N
//          --faults none|io|power --front EP --back EP [--fsync always|interval=D]
//          [--groups g1,g2] [--from EP --to EP --group NAME]   (bridge)
// Prints "ready FRONT BACK STATS" once bound (a bridge: its source, target
// and stats), then after each fault injected "faults KIND=N ..." (this
// process's totals), until SIGTERM stops it cleanly (exit 0) or it is killed.
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <mutex>
#include <random>
#include <string>
#include <thread>

#include "fault_env.hpp"
#include "mqkit/devices/bridge.hpp"
#include "mqkit/devices/proxy.hpp"
#include "mqkit/devices/stream.hpp"

namespace {

using namespace std::chrono_literals;
using mqkit::test::FaultEnv;

std::mutex print_mutex;

void print_line(const std::string& line) {
  std::lock_guard lock(print_mutex);
  std::fputs((line + "\n").c_str(), stdout);
  std::fflush(stdout);
}

// Turns faults on and off for short spells, from the seed.
class Chaos {
 public:
  Chaos(FaultEnv& env, std::uint32_t seed, bool power) : env_(env), rng_(seed), power_(power) {}

  void run(const std::atomic<bool>& stopping) {
    while (!stopping.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(pick(20, 120)));
      switch (pick(0, 9)) {
        case 0: {
          // Slow syncs, sometimes slower than a producer's re-send and with
          // failing writes and syncs in the same spell: re-sends then meet
          // stores still in progress that go on to fail.
          env_.set_sync_delay(std::chrono::milliseconds(pick(20, 800)));
          const bool failing = pick(0, 1) == 1;
          if (failing) env_.randomize(static_cast<std::uint32_t>(rng_()), 8);
          spell(stopping);
          if (failing) env_.clear_faults();
          env_.set_sync_delay(0ms);
          ++slow_syncs_;
          break;
        }
        case 1:
          env_.set_free_space(pick(0, 64 * 1024));
          spell(stopping);
          env_.set_free_space(std::nullopt);
          break;
        case 2:
          env_.randomize(static_cast<std::uint32_t>(rng_()), 40);
          spell(stopping);
          env_.clear_faults();
          break;
        case 3:
          if (power_ && pick(0, 2) == 0) power_loss();
          break;
        default:
          break;  // quiet
      }
      report();
    }
  }

 private:
  std::uint64_t pick(std::uint64_t low, std::uint64_t high) {
    return std::uniform_int_distribution<std::uint64_t>(low, high)(rng_);
  }
  void spell(const std::atomic<bool>& stopping) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(pick(50, 400));
    while (!stopping.load() && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(10ms);
  }
  void report(bool power_loss = false) {
    std::string line = "faults slow_sync=" + std::to_string(slow_syncs_);
    for (const auto& [kind, n] : env_.injected_by_kind())
      line += " " + kind + "=" + std::to_string(n);
    if (power_loss) line += " power_loss=1";
    print_line(line);
  }
  [[noreturn]] void power_loss() {
    env_.power_loss(pick(0, 1) == 1, static_cast<std::uint32_t>(rng_()));
    report(true);
    ::raise(SIGKILL);
    std::abort();
  }

  FaultEnv& env_;
  std::mt19937_64 rng_;
  bool power_;
  std::uint64_t slow_syncs_ = 0;
};

struct Settings {
  std::string kind, dir, faults = "none", front, back, fsync = "always", from, to, group;
  std::vector<std::string> groups{"g1", "g2"};
  std::uint32_t seed = 1;
};

std::unique_ptr<mqkit::devices::Device> make_device(const Settings& s, FaultEnv* env) {
  const std::string stats = "tcp://127.0.0.1:*";
  if (s.kind == "bridge") {
    mqkit::devices::BridgeOptions o;
    o.source = mqkit::devices::BridgeOptions::Source::proxy;
    o.from = s.from;
    o.to = s.to;
    o.name = s.group;
    o.topics = {"orders.#"};
    o.stats = stats;
    return std::make_unique<mqkit::devices::Bridge>(o);
  }
  if (s.kind == "proxy") {
    mqkit::devices::ProxyOptions o;
    o.front = s.front;
    o.back = s.back;
    o.stats = stats;  // the admin endpoint: group ls|rm, dlq rm (replay)
    o.spool_dir = s.dir + "/spool";
    mqkit::parse_durability(s.fsync, o.spool);
    o.spool.segment_size = 64 * 1024;  // compaction runs often
    o.spool.env = env;
    o.retry = mqkit::RetryPolicy::parse("fixed:50ms", 6);
    o.ack_timeout = 3s;
    o.heartbeat = 250ms;
    for (const auto& g : s.groups) o.groups[g] = {"orders.#"};
    return std::make_unique<mqkit::devices::Proxy>(o);
  }
  mqkit::devices::StreamOptions o;
  o.front = s.front;
  o.back = s.back;
  o.stats = stats;
  o.dir = s.dir + "/stream";
  o.partitions = 3;
  mqkit::SpoolOptions fsync;  // the same words as the proxy's
  mqkit::parse_durability(s.fsync, fsync);
  o.log.durability = fsync.durability;
  o.log.sync_interval = fsync.sync_interval;
  o.log.segment_size = 64 * 1024;
  o.log.env = env;
  o.heartbeat = 250ms;
  return std::make_unique<mqkit::devices::Stream>(o);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"A device for the contract checker"};
  Settings s;
  app.add_option("--kind", s.kind)->required()->check(CLI::IsMember({"proxy", "stream", "bridge"}));
  app.add_option("--dir", s.dir);
  app.add_option("--seed", s.seed);
  app.add_option("--faults", s.faults)->check(CLI::IsMember({"none", "io", "power"}));
  app.add_option("--front", s.front);
  app.add_option("--back", s.back);
  app.add_option("--fsync", s.fsync);
  app.add_option("--groups", s.groups)->delimiter(',');
  app.add_option("--from", s.from);
  app.add_option("--to", s.to);
  app.add_option("--group", s.group);
  CLI11_PARSE(app, argc, argv);
  // Dies with the checker (a ctest timeout, a crash): never left behind.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() == 1) return 1;
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);  // the threads below inherit it

  FaultEnv env;
  try {
    auto device = make_device(s, &env);
    device->start();
    print_line("ready " + device->in_endpoint() + " " + device->out_endpoint() + " " +
               device->stats_endpoint());
    std::atomic<bool> stopping{false};
    std::thread chaos;
    if (s.faults != "none")
      chaos = std::thread([&] { Chaos(env, s.seed, s.faults == "power").run(stopping); });
    int signal = 0;
    sigwait(&stop_signals, &signal);
    stopping = true;
    if (chaos.joinable()) chaos.join();
    env.clear_faults();
    env.set_free_space(std::nullopt);
    device->stop();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "checker_device: %s\n", e.what());
    return 1;
  }
  return 0;
}
