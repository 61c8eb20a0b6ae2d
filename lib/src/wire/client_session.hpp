// ClientSession: a client's connection to a proxy or a stream device. It owns
// the DEALER (and, until the device answers, the connection watch), reads a
// command with the frames after it, heartbeats when idle, joins again (the
// handler's ATTACH or SUBSCRIBE) after the device has been silent for
// kMissedHeartbeats intervals, keeps beating from a small thread while the
// handler works, and says DETACH on close. ReliableConsumer and
// StreamConsumer are handlers over it; ReliableProducer uses its socket
// pieces (it has no heartbeat). Methods may throw Error or zmq::error_t
// unless noexcept.
#pragma once

#include <zmq.hpp>

#include <chrono>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mqkit/socket_options.hpp"
#include "protocol/commands.hpp"
#include "wire/busy_beat.hpp"
#include "wire/connection_watch.hpp"
#include "wire/stop_event.hpp"

namespace mqkit::detail {

// A command from the device and the frames after it (DELIVER's messages,
// RECORDS' batch), as views of the received frames.
class Incoming {
 public:
  std::string_view command() const noexcept;
  std::size_t frame_count() const noexcept { return frames_.size(); }
  std::string_view frame(std::size_t i) const noexcept;

  // The handler's note on a command it read ahead (0: none).
  std::uint64_t note = 0;

 private:
  friend class ClientSession;
  zmq::message_t command_;
  std::vector<zmq::message_t> frames_;
};

// SessionHandler: what a client does over its session. Its methods are called with the
// session's mutex held (on the run thread, or on the beat thread while the
// client's handler runs).
class SessionHandler {
 public:
  // Sends the ATTACH or SUBSCRIBE that joins the device (again).
  virtual void join() = 0;
  // One command read by run(); `lock` holds the mutex (see while_busy).
  virtual void take(Incoming& in, std::unique_lock<std::mutex>& lock) = 0;
  // After run() has taken all that was waiting, and before a detach.
  virtual void settle(std::unique_lock<std::mutex>& lock) = 0;
  // On the beat thread, after its heartbeat (if one was due), while the
  // client's handler runs.
  virtual void beat(std::chrono::steady_clock::time_point /*now*/) {}
  // How often the beat thread wakes.
  virtual std::chrono::milliseconds beat_interval(std::chrono::milliseconds heartbeat) {
    return heartbeat;
  }

  virtual ~SessionHandler() = default;
};

class ClientSession {
 public:
  using Clock = std::chrono::steady_clock;
  // The device's silence, in heartbeat intervals, that makes the client join again.
  static constexpr int kMissedHeartbeats = 5;

  // Opens a DEALER with `options` and connects it to `endpoint`. With
  // `watch`, a connection watch says why a handshake failed (and when the
  // connection drops) from before the connect on.
  ClientSession(const std::string& endpoint, const SocketOptions& options, bool watch);
  ClientSession(const ClientSession&) = delete;
  ClientSession& operator=(const ClientSession&) = delete;

  // The run loop and the beat thread share the socket under this mutex.
  std::mutex& mutex() noexcept { return mutex_; }

  // Sends `c`, waiting at most `wait_for_room` (one heartbeat interval by
  // default) while the socket's queue is full; false when it was dropped.
  bool send(const protocol::CommandFrame& c, std::chrono::milliseconds wait_for_room);
  bool send(const protocol::CommandFrame& c);
  // Sends `command` and `frames` as one message without blocking; false when
  // the socket takes nothing now (then nothing was sent).
  bool try_send(std::string_view command, std::span<const std::string_view> frames);

  // Waits up to `timeout` (-1: forever) for input, woken early by stop(), the
  // process-wide stop or a connection event; true when a command waits.
  bool wait(std::chrono::milliseconds timeout);
  // One command and all its frames, without waiting; false when none waits.
  bool receive(Incoming& in);
  // Waits until `until` for the device's answer to a join, in short steps.
  // Throws Error(timeout) "`who`: <handshake problem>" as soon as the watch
  // sees one, or "`who` `hint`" at `until` or a stop.
  void await_answer(Clock::time_point until, const std::string& who, std::string_view hint);

  // Reads up to 64 commands that arrived meanwhile; `keep` decides for each
  // whether it waits for run() (in order) or was dealt with.
  void read_ahead(const std::function<bool(Incoming&)>& keep);

  // Joined: the device's heartbeat interval (0: keep the one we have).
  void set_heartbeat(std::chrono::milliseconds heartbeat);
  std::chrono::milliseconds heartbeat() const noexcept { return heartbeat_; }
  // Joined: stops the watch (nothing would read its events any more) and
  // starts the beat thread for `handler`.
  void joined(SessionHandler& handler);

  // Heartbeats, joins again after silence, and gives `handler` each command,
  // until stop() or a process-wide stop.
  void run(SessionHandler& handler);
  // Runs `work` with `lock` released and the beat on.
  template <typename Work>
  decltype(auto) while_busy(std::unique_lock<std::mutex>& lock, Work&& work) {
    return busy_.while_busy(lock, std::forward<Work>(work));
  }
  // Settles and says DETACH.
  void detach(SessionHandler& handler);
  // detach() for a destructor: what fails (the context going away, a
  // throwing before-ack hook) is let go.
  void close(SessionHandler& handler) noexcept;

  void stop() noexcept { stop_.signal(); }
  const StopEvent& stop_event() const noexcept { return stop_; }
  bool stopping() const noexcept { return stop_.is_set() || global_stop().is_set(); }

  // Reads the watch's events: true when the connection dropped or a
  // handshake failed since the last call (false without a watch).
  bool dropped();
  // Why the last handshake failed; empty when it did not, or without a watch.
  std::string connection_problem() const;

 private:
  bool next(Incoming& in);

  zmq::socket_t socket_;
  std::optional<ConnectionWatch> watch_;
  StopEvent stop_;
  std::chrono::milliseconds heartbeat_{1000};
  Clock::time_point last_heard_ = Clock::now(), next_beat_ = Clock::now();
  std::deque<Incoming> inbox_;  // read ahead, for run() in order
  std::mutex mutex_;
  BusyBeat busy_{mutex_};  // last: stopped before what it uses goes
};

}  // namespace mqkit::detail
