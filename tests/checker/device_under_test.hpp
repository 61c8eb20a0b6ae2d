// DeviceUnderTest: the checker's child device process (checker_device),
// started, killed with SIGKILL and started again on the same endpoints and
// directory, with the faults it injected summed over its lives.
#pragma once

#include <signal.h>

#include <chrono>
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
  DeviceUnderTest(std::string binary, std::string kind, std::string dir, std::uint32_t seed,
                  History& history)
      : binary_(std::move(binary)),
        kind_(std::move(kind)),
        dir_(std::move(dir)),
        seed_(seed),
        history_(history) {}

  // Starts it (again); endpoints stay those of the first start.
  void start(const std::string& faults) {
    for (int attempt = 0; attempt < 50; ++attempt) {
      const std::uint32_t seed = seed_ * 1000 + static_cast<std::uint32_t>(lives_);
      child_ = std::make_unique<test::ChildProcess>(std::vector<std::string>{
          binary_, kind_, dir_, std::to_string(seed), faults, front_, back_});
      if (const auto line = child_->read_line(std::chrono::seconds(30));
          line && line->starts_with("ready ")) {
        if (lives_ == 0) {  // later lives bind the same: the clients' threads read these
          std::istringstream words(line->substr(6));
          words >> front_ >> back_;
        }
        ++lives_;
        history_.set_incarnation(lives_);
        history_.add("start", {}, "faults " + faults);
        return;
      }
      // Its port still taken, or its files still locked by the one killed: again.
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
          history_.add("died", {}, "a simulated power loss");
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
    history_.add("kill", {}, "kill -9");
    close_life();
    ++kills_;
    child_.reset();
  }

  // SIGTERM and its exit status (0: a clean stop).
  int stop() {
    child_->signal(SIGTERM);
    const auto code = child_->wait(std::chrono::seconds(30));
    drain();
    close_life();
    history_.add("stop");
    child_.reset();
    return code.value_or(-1);
  }

  bool running() const { return child_ != nullptr; }
  const std::string& front() const { return front_; }
  const std::string& back() const { return back_; }
  int kills() const { return kills_; }
  // Deaths that were not a kill or a simulated power loss, with stderr.
  const std::vector<std::string>& crashes() const { return crashes_; }
  const std::map<std::string, std::uint64_t>& faults() const { return total_; }

 private:
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
  std::string front_ = "tcp://127.0.0.1:*", back_ = "tcp://127.0.0.1:*";
  std::unique_ptr<test::ChildProcess> child_;
  int lives_ = 0, kills_ = 0;
  std::string last_error_;
  std::vector<std::string> crashes_;
  std::map<std::string, std::uint64_t> life_, total_;
};

}  // namespace mqkit::checker
