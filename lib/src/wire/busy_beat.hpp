// BusyBeat: keeps a client alive while its handler runs. A client's run loop
// owns its socket under `mutex` and does its own heartbeats; while the
// handler runs (the mutex released), a small thread calls `tick` under the
// mutex once per `interval`, to send a heartbeat (and, for a proxy worker,
// IN_PROGRESS), so a slow handler is not taken for a dead peer.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>

#include <zmq.hpp>

namespace mqkit::detail {

class BusyBeat {
 public:
  explicit BusyBeat(std::mutex& mutex) : mutex_(mutex) {}
  ~BusyBeat() {
    {
      std::lock_guard lock(mutex_);
      closing_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  BusyBeat(const BusyBeat&) = delete;
  BusyBeat& operator=(const BusyBeat&) = delete;

  // Starts the thread. `interval` and `tick` run on it, under the mutex; a
  // zmq::error_t from `tick` (the context going away) ends it.
  void start(std::function<std::chrono::milliseconds()> interval, std::function<void()> tick) {
    thread_ = std::thread([this, interval = std::move(interval), tick = std::move(tick)] {
      std::unique_lock lock(mutex_);
      while (!closing_) {
        wake_.wait_for(lock, interval());
        if (closing_ || !busy_) continue;
        try {
          tick();
        } catch (const zmq::error_t&) {
          return;
        }
      }
    });
  }

  // Runs `handler` with `lock` (on the mutex) released and the beat on; the
  // lock is held again when it returns or throws.
  template <typename Handler>
  decltype(auto) while_busy(std::unique_lock<std::mutex>& lock, Handler&& handler) {
    // No notify: the thread wakes once per interval anyway and then ticks
    // if a handler is running. Waking it per handler call cost the proxy's
    // and the stream's readers a futex round per message.
    busy_ = true;
    lock.unlock();
    struct Relock {
      std::unique_lock<std::mutex>& lock;
      bool& busy;
      ~Relock() {
        lock.lock();
        busy = false;
      }
    } relock{lock, busy_};
    return std::forward<Handler>(handler)();
  }

 private:
  std::mutex& mutex_;
  std::condition_variable wake_;
  bool busy_ = false;     // guarded by mutex_
  bool closing_ = false;  // guarded by mutex_
  std::thread thread_;
};

}  // namespace mqkit::detail
