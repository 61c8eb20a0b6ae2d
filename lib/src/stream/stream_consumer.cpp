// StreamConsumer: SUBSCRIBE, then a loop of RECORDS -> handler -> COMMIT,
// with heartbeats and subscribing again after a device restart.
#include "mqkit/stream_consumer.hpp"

#include <algorithm>
#include <deque>
#include <map>
#include <mutex>

#include "mqkit/error.hpp"
#include "protocol/commands.hpp"
#include "protocol/records_batch.hpp"
#include "protocol/start_position.hpp"
#include "reliable/busy_beat.hpp"
#include "wire/socket.hpp"
#include "wire/stop_event.hpp"
#include "wire/wait.hpp"

namespace mqkit {
namespace {
using namespace detail::protocol;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int kMissedHeartbeats = 5;  // device silence that makes the reader subscribe again

using detail::view;

}  // namespace

struct StreamConsumer::Impl {
  // A command from the stream and the frames after it (RECORDS: the records).
  struct Incoming {
    zmq::message_t command;
    std::vector<zmq::message_t> frames;
  };

  StreamConsumerOptions options;
  std::string from;  // as sent
  zmq::socket_t socket;
  detail::StopEvent stop;
  detail::EnvelopeCodec codec;
  NoticeHandler notice;
  std::function<void()> before_commit;
  milliseconds heartbeat{1000};
  Clock::time_point last_heard = Clock::now(), next_beat = Clock::now();
  std::vector<std::uint32_t> assigned;  // written by the run thread only
  mutable std::mutex assigned_mutex;    // for partitions() from other threads
  // Per partition: the next offset this reader has to handle (records below
  // it were handled: a redelivery of them is skipped), and what to commit.
  std::map<std::uint32_t, std::uint64_t> handled;
  std::map<std::uint32_t, std::uint64_t> to_commit;
  std::size_t uncommitted = 0;
  std::string stream_id;       // the stream's, from `assigned` (empty: a 1.1 stream)
  bool resubscribing = false;  // an unnamed reader asked to go on from `handled`
  // Commands read while a batch was being handled (to see an `assigned` at
  // once): handled in order after it.
  std::deque<Incoming> inbox;
  Clock::time_point next_look = Clock::now();

  // While the handler runs, a small thread heartbeats for it (the run loop
  // and that thread share the socket under socket_mutex), so a slow handler
  // does not lose the name's partitions.
  std::mutex socket_mutex;
  detail::BusyBeat busy{socket_mutex};  // last: stopped before what it uses goes

  Impl(const std::string& endpoint, const StreamConsumerOptions& o)
      : options(o),
        from(stream_start_position(o.from)),
        socket(detail::open_socket(zmq::socket_type::dealer, o.socket)) {
    detail::attach(socket, connect(endpoint));
  }

  // On the heartbeat thread, while a handler runs.
  void beat_while_handling() {
    if (Clock::now() < next_beat) return;
    send({.command = Command::heartbeat});
    next_beat = Clock::now() + heartbeat;
  }

  void send(const CommandFrame& c) {
    const auto encoded = encode_command(c);
    (void)socket.send(zmq::buffer(encoded), zmq::send_flags::none);
  }

  void send_subscribe() {
    std::string start = from;
    resubscribing = options.name.empty() && !handled.empty();
    if (resubscribing) {
      // A device that restarted does not know this reader: go on from here.
      start = StartPosition{.kind = StartPosition::Kind::partitions, .offsets = handled}.text();
    }
    to_commit.clear();
    uncommitted = 0;
    send({.command = Command::subscribe,
          .group = options.name,
          .credit = std::max<std::uint32_t>(options.window, 1),
          .from = start});
  }

  bool stopping() const noexcept { return stop.is_set() || detail::global_stop().is_set(); }

  bool wait(milliseconds timeout) {
    return detail::wait_readable(socket, stop, timeout) == detail::Wait::readable;
  }

  void tell(std::uint32_t partition, std::uint64_t offset, const std::string& why) {
    if (notice) notice(partition, offset, why);
  }

  // Returns false when the stream turned out to be another one (its
  // directory made anew: offsets start again) and this unnamed reader must
  // subscribe afresh from its start position.
  bool take_assignment(const CommandFrame& c) {
    if (c.heartbeat_ms > 0) heartbeat = milliseconds(c.heartbeat_ms);
    resubscribing = false;  // answered
    const bool reset = !c.stream_id.empty() && !stream_id.empty() && c.stream_id != stream_id;
    if (!c.stream_id.empty()) stream_id = c.stream_id;
    if (reset) {
      // What this reader handled was in the old stream: the device's
      // positions are the truth now, and nothing of the old one is committed.
      to_commit.clear();
      uncommitted = 0;
      if (options.name.empty()) {
        for (const auto& [p, next] : handled)
          tell(p, 0,
               "the stream was reset (a new stream in its directory): reading again from " + from);
        handled.clear();
        std::lock_guard lock(assigned_mutex);
        assigned.clear();
        return false;
      }
    }
    std::lock_guard lock(assigned_mutex);
    const std::vector<std::uint32_t> had = std::move(assigned);
    assigned.clear();
    for (const auto& p : c.positions) {
      assigned.push_back(p.partition);
      auto& next = handled[p.partition];
      if (reset) {
        if (next != p.offset)
          tell(p.partition, p.offset,
               "the stream was reset (a new stream in its directory): reading partition " +
                   std::to_string(p.partition) + " from offset " + std::to_string(p.offset) +
                   ", the stream's position for this reader");
        next = p.offset;
      } else if (std::find(had.begin(), had.end(), p.partition) == had.end()) {
        // A partition taken up: handled beyond where the device starts us
        // (its commit was lost)? Those records are skipped, not handled
        // twice. (For a partition it kept, the device's offset is what it
        // sent, maybe still waiting here behind this `assigned`.)
        next = std::max(next, p.offset);
      }
    }
    if (reset)  // the partitions it does not read now start afresh too
      for (auto& [p, next] : handled)
        if (!owns(p)) next = 0;
    return true;
  }

  // A 1.2 stream waits for this answer before it gives the partitions this
  // reader let go to another member: sent after what was handled of them is
  // committed.
  void answer_assignment(const CommandFrame& c) {
    if (c.stream_id.empty()) return;  // a 1.1 stream does not wait for it
    CommandFrame answer{.command = Command::assigned, .group = options.name};
    for (const auto p : assigned) answer.positions.push_back({p, handled[p]});
    send(answer);
  }

  void on_assigned(const CommandFrame& c) {
    flush_commits();
    if (!take_assignment(c)) {
      send_subscribe();
      return;
    }
    answer_assignment(c);
  }

  void subscribe(milliseconds timeout) {
    send_subscribe();
    const auto deadline = Clock::now() + timeout;
    while (true) {
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
      if (left.count() <= 0 || !wait(left))
        throw Error(errc::timeout,
                    "the stream did not answer the subscription (is a stream "
                    "device's --back there?)");
      zmq::message_t reply;
      (void)socket.recv(reply);
      if (reply.more()) {  // not an answer to the subscription: drop it whole
        for (zmq::message_t rest; socket.recv(rest, zmq::recv_flags::dontwait) && rest.more();) {
        }
        continue;
      }
      CommandFrame c;
      if (!decode_command(view(reply), c)) continue;
      if (c.command == Command::error)
        throw Error(errc::bad_argument, "the stream refused: " + c.reason);
      if (c.command == Command::assigned) {
        take_assignment(c);
        answer_assignment(c);
        last_heard = Clock::now();
        busy.start([this] { return heartbeat; }, [this] { beat_while_handling(); });
        return;
      }
    }
  }

  void flush_commits() {
    if (to_commit.empty()) return;
    if (before_commit) before_commit();  // throws: nothing committed
    CommandFrame c{.command = Command::commit};
    for (const auto& [p, offset] : to_commit) c.positions.push_back({p, offset});
    send(c);
    to_commit.clear();
    uncommitted = 0;
  }

  bool owns(std::uint32_t partition) const {
    return std::find(assigned.begin(), assigned.end(), partition) != assigned.end();
  }

  // One command and its frames, without waiting; false when there is none.
  bool receive(Incoming& in) {
    if (!socket.recv(in.command, zmq::recv_flags::dontwait)) return false;
    in.frames.clear();
    for (bool more = in.command.more(); more;) {
      in.frames.emplace_back();
      (void)socket.recv(in.frames.back(), zmq::recv_flags::dontwait);
      more = in.frames.back().more();
    }
    last_heard = Clock::now();
    return true;
  }

  // Between two records: what arrived meanwhile is read, so that an
  // `assigned` that takes a partition away is seen at once, not after the
  // records queued before it (the rest waits in the inbox, in order).
  // True when it took an assignment.
  bool look_at_socket() {
    const auto now = Clock::now();
    if (now < next_look) return false;
    next_look = now + milliseconds(1);
    bool took = false;
    for (int i = 0; i < 64; ++i) {
      Incoming in;
      if (!receive(in)) break;
      CommandFrame c;
      if (!decode_command(view(in.command), c)) continue;
      if (c.command == Command::heartbeat) continue;
      if (c.command == Command::assigned) {
        on_assigned(c);
        took = true;
        continue;
      }
      inbox.push_back(std::move(in));
    }
    return took;
  }

  // One RECORDS batch. Returns normally, or rethrows the handler's exception
  // after committing the records before it. Ownership is checked before
  // every record: a partition taken away stops being handled at once.
  void take_records(const CommandFrame& c, std::vector<zmq::message_t>& frames,
                    const Handler& handler, StreamEntry& entry,
                    std::unique_lock<std::mutex>& lock) {
    // A malformed batch: the whole records before the fault are still read.
    std::vector<BatchRecord> records;
    if (frames.size() == 1) (void)unpack_records(c, view(frames[0]), records);
    std::uint64_t* next = nullptr;  // handled[c.partition], looked up again after an assignment
    for (std::size_t i = 0; i < records.size(); ++i) {
      if (stopping()) return;  // uncommitted: read again next time
      if (next == nullptr || look_at_socket()) {
        if (!owns(c.partition)) return;  // moved to another member: it reads on from the commit
        next = &handled[c.partition];
      }
      const std::uint64_t offset = records[i].offset;
      if (offset >= *next) {
        entry.partition = c.partition;
        entry.offset = offset;
        entry.time_ms = records[i].time_ms;
        if (codec.decode(records[i].frame, entry.message, options.socket.limits)) {
          try {
            busy.while_busy(lock, [&] { handler(entry); });
          } catch (...) {
            flush_commits();
            throw;
          }
        }
        *next = offset + 1;
      }
      to_commit[c.partition] = offset + 1;
      if (++uncommitted >= std::clamp<std::uint32_t>(options.window / 2, 1, 1024)) flush_commits();
    }
  }

  void dispatch(Incoming& in, const Handler& handler, StreamEntry& entry,
                std::unique_lock<std::mutex>& lock) {
    CommandFrame c;
    if (!decode_command(view(in.command), c)) return;
    switch (c.command) {
      case Command::records:
        take_records(c, in.frames, handler, entry, lock);
        break;
      case Command::assigned:
        on_assigned(c);
        break;
      case Command::notice:
        // Its position moved on (retention, damaged records skipped): it
        // reads on from there. A notice that keeps the position (a record
        // that cannot be read for now) moves nothing.
        if (auto& next = handled[c.partition]; c.offset > next) {
          next = c.offset;
          to_commit.erase(c.partition);
        }
        tell(c.partition, c.offset, c.reason);
        break;
      case Command::error:
        if (c.reason.starts_with(kNotAttached)) {
          send_subscribe();
        } else if (resubscribing) {
          // Where it was is past the end of the (restarted) stream: the
          // stream was reset; read again from the start position.
          for (const auto& [p, next] : handled)
            tell(p, next,
                 "the stream refused to go on from where this reader was (" + c.reason +
                     "): it was reset; reading again from " + from);
          handled.clear();
          send_subscribe();
        } else {
          throw Error(errc::bad_argument, "the stream refused: " + c.reason);
        }
        break;
      default:
        break;  // heartbeats
    }
  }

  void run(const Handler& handler) {
    std::unique_lock lock(socket_mutex);
    Incoming in;
    StreamEntry entry;
    while (!stopping()) {
      auto now = Clock::now();
      if (now >= next_beat) {
        send({.command = Command::heartbeat});
        next_beat = now + heartbeat;
      }
      if (now - last_heard > kMissedHeartbeats * heartbeat) {
        send_subscribe();  // the device went away or forgot us
        last_heard = now;
      }
      const auto until_beat = std::chrono::duration_cast<milliseconds>(next_beat - now);
      if (inbox.empty() && !wait(std::max(until_beat, milliseconds(1)))) continue;
      while (!stopping()) {
        if (!inbox.empty()) {
          in = std::move(inbox.front());
          inbox.pop_front();
        } else if (!receive(in)) {
          break;
        }
        dispatch(in, handler, entry, lock);
      }
      flush_commits();
    }
    flush_commits();
  }

  void detach() {
    std::lock_guard lock(socket_mutex);
    flush_commits();
    send({.command = Command::detach});
  }
};

StreamConsumer::StreamConsumer(const std::string& stream_back, const StreamConsumerOptions& options,
                               std::chrono::milliseconds subscribe_timeout)
    : impl_(std::make_unique<Impl>(stream_back, options)) {
  impl_->subscribe(subscribe_timeout);
}

StreamConsumer::~StreamConsumer() {
  if (!impl_) return;
  try {
    impl_->detach();
  } catch (...) {
  }
}

StreamConsumer::StreamConsumer(StreamConsumer&&) noexcept = default;
StreamConsumer& StreamConsumer::operator=(StreamConsumer&&) noexcept = default;

void StreamConsumer::run(const Handler& handler) {
  impl_->run(handler);
}

void StreamConsumer::stop() noexcept {
  impl_->stop.signal();
}

void StreamConsumer::on_before_commit(std::function<void()> hook) {
  impl_->before_commit = std::move(hook);
}

void StreamConsumer::on_notice(NoticeHandler handler) {
  impl_->notice = std::move(handler);
}

std::vector<std::uint32_t> StreamConsumer::partitions() const {
  std::lock_guard lock(impl_->assigned_mutex);
  return impl_->assigned;
}

}  // namespace mqkit
