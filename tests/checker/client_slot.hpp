// ClientSlot: one of the checker's consumers (a proxy worker, a member of a
// named stream reader), made, run, stopped and made again on a thread of its
// own until finish(). A device that is down makes the constructor throw
// Error: the slot tries again after 100 ms.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "mqkit/error.hpp"

namespace mqkit::checker {

template <typename Client>
class ClientSlot {
 public:
  // `make` builds a client, `run` runs it until its stop(); both on the
  // slot's thread.
  ClientSlot(std::function<std::unique_ptr<Client>()> make, std::function<void(Client&)> run)
      : make_(std::move(make)), run_(std::move(run)) {
    thread_ = std::thread([this] { loop(); });
  }
  ~ClientSlot() { finish(); }
  ClientSlot(const ClientSlot&) = delete;
  ClientSlot& operator=(const ClientSlot&) = delete;

  // Stops the client (it detaches); the slot makes a new one.
  void restart() {
    std::lock_guard lock(mutex_);
    if (current_) current_->stop();
  }
  void finish() {
    done_ = true;
    restart();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void loop() {
    while (!done_) {
      try {
        std::unique_ptr<Client> client = make_();
        // Forgotten before the client goes, however run_ ends.
        struct Forget {
          ClientSlot& slot;
          ~Forget() {
            std::lock_guard lock(slot.mutex_);
            slot.current_ = nullptr;
          }
        } forget{*this};
        {
          std::lock_guard lock(mutex_);
          current_ = client.get();
        }
        if (!done_) run_(*client);
      } catch (const Error&) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
  }

  std::function<std::unique_ptr<Client>()> make_;
  std::function<void(Client&)> run_;
  std::atomic<bool> done_{false};
  std::mutex mutex_;
  Client* current_ = nullptr;
  std::thread thread_;
};

}  // namespace mqkit::checker
