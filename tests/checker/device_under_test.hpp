// DeviceUnderTest: the checker's child device process (checker_device),
// started, killed with SIGKILL and started again on the same endpoints and
// directory, with the faults it injected summed over its lives and the
// instants of its simulated power losses.
#pragma once

#include <signal.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "child_process.hpp"
#include "history.hpp"

namespace mqkit::checker {

class DeviceUnderTest {
 public:
  // `extra`: more of checker_device's options (--fsync, --groups, a
  // bridge's --from/--to/--group).
  DeviceUnderTest(std::string binary, std::string kind, std::string dir, std::uint32_t seed,
                  History& history, std::vector<std::string> extra = {})
      : binary_(std::move(binary)),
        kind_(std::move(kind)),
        dir_(std::move(dir)),
        seed_(seed),
        history_(history),
        extra_(std::move(extra)) {}

  // Starts it (again); endpoints stay those of the first start.
  void start(const std::string& faults) {
    // Its port may still be taken, or its files locked by the life just
    // killed or by `mqkit dlq replay` working on the files of a stopped
    // proxy (up to its --timeout): tried again for up to 30 s.
    for (const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
         std::chrono::steady_clock::now() < give_up;) {
      const std::uint32_t seed = seed_ * 1000 + static_cast<std::uint32_t>(lives_);
      std::vector<std::string> argv{
          binary_,    "--kind", kind_,     "--dir", dir_,     "--seed", std::to_string(seed),
          "--faults", faults,   "--front", front_,  "--back", back_};
      argv.insert(argv.end(), extra_.begin(), extra_.end());
      child_ = std::make_unique<test::ChildProcess>(argv);
      if (const auto line = child_->read_line(std::chrono::seconds(30));
          line && line->starts_with("ready ")) {
        std::istringstream words(line->substr(6));
        std::string front, back;
        words >> front >> back >> stats_;  // a new stats port each life
        if (lives_ == 0) {  // later lives bind the same: the clients' threads read these
          front_ = front;
          back_ = back;
        }
        ++lives_;
        if (numbers_lives_) history_.set_incarnation(lives_);
        history_.add("start", {}, kind_ + ", faults " + faults);
        return;
      }
      last_error_ = child_->stderr_text();
      child_.reset();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    throw std::runtime_error("the " + kind_ + " does not start: " + last_error_);
  }

  // Reads what it printed for up to `how_long` (its fault counts); false
  // when it died by itself meanwhile (a power loss).
  bool watch(std::chrono::milliseconds how_long) {
    const auto until = std::chrono::steady_clock::now() + how_long;
    while (std::chrono::steady_clock::now() < until) {
      const auto line = child_->read_line(std::chrono::milliseconds(20));
      if (line) {
        if (line->starts_with("faults ")) take_faults(line->substr(7));
        continue;
      }
      if (const auto code = child_->wait(std::chrono::milliseconds(0))) {
        drain();
        const bool power_loss = life_.contains("power_loss") && *code == 128 + SIGKILL;
        if (power_loss) {
          history_.add("died", {}, kind_ + ": a simulated power loss");
          power_losses_.push_back(std::chrono::steady_clock::now());
        } else {  // a crash of the device itself: never expected
          history_.add("crashed", {}, "exit status " + std::to_string(*code));
          crashes_.push_back("exit status " + std::to_string(*code) + ": " +
                             child_->stderr_text().substr(0, 2000));
        }
        close_life();
        child_.reset();
        return false;
      }
    }
    return true;
  }

  void kill() {
    child_->signal(SIGKILL);
    (void)child_->wait(std::chrono::seconds(10));
    drain();
    history_.add("kill", {}, kind_ + ": kill -9");
    close_life();
    ++kills_;
    child_.reset();
  }

  // SIGTERM and its exit status (0: a clean stop; -1: still running after
  // 30 s, then killed).
  int stop() {
    child_->signal(SIGTERM);
    const auto code = child_->wait(std::chrono::seconds(30));
    drain();
    last_error_ = child_->stderr_text().substr(0, 2000);
    if (!code) last_error_ += "; its threads: " + thread_stacks(child_->pid());
    close_life();
    history_.add("stop");
    child_.reset();
    return code.value_or(-1);
  }

  // Whether the history's life numbers (#N) are this device's: one device
  // per run numbers them (the proxy, where a bridge and a stream run too).
  void number_lives(bool yes) { numbers_lives_ = yes; }
  bool running() const { return child_ != nullptr; }
  const std::string& kind() const { return kind_; }
  const std::string& last_stderr() const { return last_error_; }
  const std::string& front() const { return front_; }
  const std::string& back() const { return back_; }
  const std::string& stats() const { return stats_; }  // this life's
  const std::vector<std::chrono::steady_clock::time_point>& power_losses() const {
    return power_losses_;
  }
  int kills() const { return kills_; }
  // Deaths that were not a kill or a simulated power loss, with stderr.
  const std::vector<std::string>& crashes() const { return crashes_; }
  const std::map<std::string, std::uint64_t>& faults() const { return total_; }

 private:
  // Where a process that will not stop is stuck: gdb's backtrace of every
  // thread, when gdb is installed (CI installs it for the checker).
  static std::string thread_stacks(pid_t pid) {
    const std::string command = "timeout 60 gdb -p " + std::to_string(pid) +
                                " -batch -nx -ex 'thread apply all bt 24' 2>/dev/null";
    std::string text;
    if (FILE* gdb = popen(command.c_str(), "r")) {
      char buffer[4096];
      while (const std::size_t n = std::fread(buffer, 1, sizeof buffer, gdb)) {
        if (text.size() < 20000) text.append(buffer, n);
      }
      pclose(gdb);
    }
    std::string frames;  // only the lines that name a thread or a frame
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);)
      if (line.starts_with("Thread ") || line.starts_with("#")) frames += line + "\n";
    return frames.empty() ? "(no backtrace: is gdb installed?)" : frames;
  }

  void drain() {
    while (const auto line = child_->read_line(std::chrono::milliseconds(5)))
      if (line->starts_with("faults ")) take_faults(line->substr(7));
  }
  void take_faults(const std::string& counts) {
    life_.clear();
    std::istringstream words(counts);
    for (std::string word; words >> word;)
      if (const auto eq = word.find('='); eq != std::string::npos)
        life_[word.substr(0, eq)] = std::stoull(word.substr(eq + 1));
  }
  void close_life() {
    for (const auto& [kind, n] : life_) total_[kind] += n;
    life_.clear();
  }

  std::string binary_, kind_, dir_;
  std::uint32_t seed_;
  History& history_;
  std::vector<std::string> extra_;
  bool numbers_lives_ = true;
  std::string front_ = "tcp://127.0.0.1:*", back_ = "tcp://127.0.0.1:*", stats_;
  std::vector<std::chrono::steady_clock::time_point> power_losses_;
  std::unique_ptr<test::ChildProcess> child_;
  int lives_ = 0, kills_ = 0;
  std::string last_error_;
  std::vector<std::string> crashes_;
  std::map<std::string, std::uint64_t> life_, total_;
};

}  // namespace mqkit::checker
