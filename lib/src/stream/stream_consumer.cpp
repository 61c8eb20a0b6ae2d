// StreamConsumer: SUBSCRIBE, then RECORDS -> handler -> COMMIT, as a
// handler over a ClientSession (which heartbeats and subscribes again after
// a device restart).
#include "mqkit/stream_consumer.hpp"

#include <algorithm>
#include <map>
#include <mutex>

#include "mqkit/error.hpp"
#include "protocol/commands.hpp"
#include "protocol/records_batch.hpp"
#include "protocol/start_position.hpp"
#include "wire/client_session.hpp"

namespace mqkit {
namespace {
using namespace detail::protocol;
using Clock = std::chrono::steady_clock;
using detail::Incoming;
using std::chrono::milliseconds;
}  // namespace

// Its methods run under the session's mutex (see detail::SessionHandler).
struct StreamConsumer::Impl final : detail::SessionHandler {
  StreamConsumerOptions options;
  std::string from;  // as sent
  detail::EnvelopeCodec codec;
  NoticeHandler notice;
  std::function<void()> before_commit;
  std::vector<std::uint32_t> assigned;  // written by the run thread only
  mutable std::mutex assigned_mutex;    // for partitions() from other threads
  // Per partition: the next offset this reader has to handle (records below
  // it were handled: a redelivery of them is skipped), and what to commit.
  std::map<std::uint32_t, std::uint64_t> handled;
  std::map<std::uint32_t, std::uint64_t> to_commit;
  std::size_t uncommitted = 0;
  std::string stream_id;       // the stream's, from `assigned` (empty: a 1.1 stream)
  bool resubscribing = false;  // an unnamed reader asked to go on from `handled`
  // Commands read while a batch is handled (to see an `assigned` at once)
  // wait in the session's inbox and are handled in order after it.
  Clock::time_point next_look = Clock::now();
  const Handler* handler = nullptr;  // run()'s
  StreamEntry entry;                 // run()'s, reused
  // While the handler runs, the session heartbeats for it from a small
  // thread, so a slow handler does not lose the name's partitions.
  detail::ClientSession session;  // last: its beat thread stops before what it uses goes

  Impl(const std::string& endpoint, const StreamConsumerOptions& o)
      : options(o),
        from(stream_start_position(o.from)),
        session(endpoint, o.socket, /*watch=*/false) {}

  void send(const CommandFrame& c) { session.send(c); }

  void join() override {
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

  void tell(std::uint32_t partition, std::uint64_t offset, const std::string& why) {
    if (notice) notice(partition, offset, why);
  }

  // Returns false when the stream turned out to be another one (its
  // directory made anew: offsets start again) and this unnamed reader must
  // subscribe afresh from its start position.
  bool take_assignment(const CommandFrame& c) {
    session.set_heartbeat(milliseconds(c.heartbeat_ms));
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
      join();
      return;
    }
    answer_assignment(c);
  }

  void subscribe(milliseconds timeout) {
    join();
    const auto deadline = Clock::now() + timeout;
    while (true) {
      session.await_answer(deadline, "the stream did not answer the subscription",
                           "(is a stream device's --back there?)");
      Incoming reply;
      // A command with frames after it is not an answer to the subscription.
      if (!session.receive(reply) || reply.frame_count() > 0) continue;
      CommandFrame c;
      if (!decode_command(reply.command(), c)) continue;
      if (c.command == Command::error)
        throw Error(errc::bad_argument, "the stream refused: " + c.reason);
      if (c.command == Command::assigned) {
        take_assignment(c);
        answer_assignment(c);
        session.joined(*this);
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

  // Between two records: what arrived meanwhile is read, so that an
  // `assigned` that takes a partition away is seen at once, not after the
  // records queued before it (the rest waits in the inbox, in order).
  // True when it took an assignment.
  bool look_at_socket() {
    const auto now = Clock::now();
    if (now < next_look) return false;
    next_look = now + milliseconds(1);
    bool took = false;
    session.read_ahead([&](Incoming& in) {
      CommandFrame c;
      if (!decode_command(in.command(), c) || c.command == Command::heartbeat) return false;
      if (c.command == Command::assigned) {
        on_assigned(c);
        took = true;
        return false;
      }
      return true;
    });
    return took;
  }

  // One RECORDS batch. Returns normally, or rethrows the handler's exception
  // after committing the records before it. Ownership is checked before
  // every record: a partition taken away stops being handled at once.
  void take_records(const CommandFrame& c, const Incoming& in, std::unique_lock<std::mutex>& lock) {
    // A malformed batch: the whole records before the fault are still read.
    std::vector<BatchRecord> records;
    if (in.frame_count() == 1) (void)unpack_records(c, in.frame(0), records);
    std::uint64_t* next = nullptr;  // handled[c.partition], looked up again after an assignment
    for (std::size_t i = 0; i < records.size(); ++i) {
      if (session.stopping()) return;  // uncommitted: read again next time
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
            session.while_busy(lock, [&] { (*handler)(entry); });
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

  void take(Incoming& in, std::unique_lock<std::mutex>& lock) override {
    CommandFrame c;
    if (!decode_command(in.command(), c)) return;
    switch (c.command) {
      case Command::records:
        take_records(c, in, lock);
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
          join();
        } else if (resubscribing) {
          // Where it was is past the end of the (restarted) stream: the
          // stream was reset; read again from the start position.
          for (const auto& [p, next] : handled)
            tell(p, next,
                 "the stream refused to go on from where this reader was (" + c.reason +
                     "): it was reset; reading again from " + from);
          handled.clear();
          join();
        } else {
          throw Error(errc::bad_argument, "the stream refused: " + c.reason);
        }
        break;
      default:
        break;  // heartbeats
    }
  }

  void settle(std::unique_lock<std::mutex>& /*lock*/) override { flush_commits(); }
};

StreamConsumer::StreamConsumer(const std::string& stream_back, const StreamConsumerOptions& options,
                               std::chrono::milliseconds subscribe_timeout)
    : impl_(std::make_unique<Impl>(stream_back, options)) {
  impl_->subscribe(subscribe_timeout);
}

StreamConsumer::~StreamConsumer() {
  if (impl_) impl_->session.close(*impl_);
}

StreamConsumer::StreamConsumer(StreamConsumer&&) noexcept = default;
StreamConsumer& StreamConsumer::operator=(StreamConsumer&&) noexcept = default;

void StreamConsumer::run(const Handler& handler) {
  impl_->handler = &handler;
  impl_->session.run(*impl_);
}

void StreamConsumer::stop() noexcept {
  impl_->session.stop();
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
