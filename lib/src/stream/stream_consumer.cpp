// StreamConsumer: SUBSCRIBE, then a loop of RECORDS -> handler -> COMMIT,
// with heartbeats and subscribing again after a device restart.
#include "mqkit/stream_consumer.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <map>
#include <mutex>

#include "detail/wall_clock.hpp"
#include "mqkit/duration.hpp"
#include "mqkit/error.hpp"
#include "reliable/busy_beat.hpp"
#include "reliable/protocol.hpp"
#include "wire/socket.hpp"
#include "wire/stop_event.hpp"
#include "wire/wait.hpp"

namespace mqkit {
namespace {
using namespace detail::proxy;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int kMissedHeartbeats = 5;  // device silence that makes the reader subscribe again

using detail::view;

// 2026-11-28T10:00:00Z, 2026-11-28T10:00:00.250+01:00 (also 't' or ' ' for 'T').
std::optional<std::int64_t> parse_rfc3339(std::string_view text) {
  int year, month, day, hour, minute, second, used = 0;
  const std::string s(text);
  if (std::sscanf(s.c_str(), "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &year, &month, &day, &hour,
                  &minute, &second, &used) != 6 ||
      used != 19)
    return std::nullopt;
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60)
    return std::nullopt;
  std::string_view rest = text.substr(19);
  std::int64_t millis = 0;
  if (!rest.empty() && rest.front() == '.') {
    std::size_t digits = 1;
    while (digits < rest.size() && std::isdigit(static_cast<unsigned char>(rest[digits]))) ++digits;
    if (digits == 1) return std::nullopt;
    for (std::size_t i = 1; i < 4; ++i) millis = millis * 10 + (i < digits ? rest[i] - '0' : 0);
    rest.remove_prefix(digits);
  }
  std::int64_t offset_minutes = 0;
  if (rest == "Z" || rest == "z") {
  } else if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':') {
    int oh = 0, om = 0;
    if (std::from_chars(rest.data() + 1, rest.data() + 3, oh).ec != std::errc() ||
        std::from_chars(rest.data() + 4, rest.data() + 6, om).ec != std::errc())
      return std::nullopt;
    offset_minutes = (rest[0] == '+' ? 1 : -1) * (oh * 60 + om);
  } else {
    return std::nullopt;
  }
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  const std::int64_t seconds = static_cast<std::int64_t>(timegm(&tm)) - offset_minutes * 60;
  return seconds * 1000 + millis;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c));
  });
}

}  // namespace

std::string stream_start_position(std::string_view from) {
  if (from.empty() || from == "earliest" || from == "latest" || all_digits(from))
    return from.empty() ? "earliest" : std::string(from);
  if (from.find(':') != std::string_view::npos && from.find('-') == std::string_view::npos) {
    // P:N[,P:N...]: checked by the device, which knows the partitions.
    return std::string(from);
  }
  if (from.front() == '-') {
    const auto ago = parse_duration(from.substr(1));
    const auto now = static_cast<std::int64_t>(detail::now_ms());
    return "@" + std::to_string(std::max<std::int64_t>(now - ago.count(), 0));
  }
  if (auto ms = parse_rfc3339(from); ms && *ms >= 0) return "@" + std::to_string(*ms);
  throw Error(errc::bad_argument,
              "start position '" + std::string(from) +
                  "' is not earliest, latest, an offset N, P:N[,P:N...], an RFC 3339 time "
                  "(2026-11-28T10:00:00Z) or a time ago (-10m)");
}

struct StreamConsumer::Impl {
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
    if (options.name.empty() && !handled.empty()) {
      // A device that restarted does not know this reader: go on from here.
      start.clear();
      for (const auto& [p, next] : handled)
        start += (start.empty() ? "" : ",") + std::to_string(p) + ":" + std::to_string(next);
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

  void take_assignment(const CommandFrame& c) {
    if (c.heartbeat_ms > 0) heartbeat = milliseconds(c.heartbeat_ms);
    std::lock_guard lock(assigned_mutex);
    assigned.clear();
    for (const auto& p : c.positions) {
      assigned.push_back(p.partition);
      auto& next = handled[p.partition];
      // Handled beyond where the device starts us (its commit was lost):
      // those records are skipped, not handled twice.
      next = std::max(next, p.offset);
    }
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

  // One RECORDS batch. Returns normally, or rethrows the handler's exception
  // after committing the records before it.
  // The records of one RECORDS batch: one frame, each record's frame after
  // its 4-byte big-endian length (docs/stream-protocol.md).
  static std::vector<std::string_view> unpack_records(const std::vector<zmq::message_t>& frames,
                                                      std::size_t expected) {
    std::vector<std::string_view> out;
    if (frames.size() != 1) return out;
    std::string_view rest = view(frames[0]);
    while (rest.size() >= 4 && out.size() < expected) {
      const auto* p = reinterpret_cast<const unsigned char*>(rest.data());
      const std::size_t n = (std::size_t{p[0]} << 24) | (std::size_t{p[1]} << 16) |
                            (std::size_t{p[2]} << 8) | std::size_t{p[3]};
      if (rest.size() - 4 < n) break;  // a lying length: stop at what is whole
      out.push_back(rest.substr(4, n));
      rest.remove_prefix(4 + n);
    }
    return out;
  }

  void take_records(const CommandFrame& c, std::vector<zmq::message_t>& frames,
                    const Handler& handler, StreamEntry& entry,
                    std::unique_lock<std::mutex>& lock) {
    if (!owns(c.partition)) return;  // moved to another member meanwhile
    const auto records = unpack_records(frames, c.times.size());
    auto& next = handled[c.partition];  // a map node: stable while the batch is handled
    for (std::size_t i = 0; i < records.size(); ++i) {
      if (stopping()) return;  // uncommitted: read again next time
      const std::uint64_t offset = c.offset + i;
      if (offset >= next) {
        entry.partition = c.partition;
        entry.offset = offset;
        entry.time_ms = c.times[i];
        if (codec.decode(records[i], entry.message, options.socket.limits)) {
          try {
            busy.while_busy(lock, [&] { handler(entry); });
          } catch (...) {
            flush_commits();
            throw;
          }
        }
        next = offset + 1;
      }
      to_commit[c.partition] = offset + 1;
      if (++uncommitted >= std::clamp<std::uint32_t>(options.window / 2, 1, 1024)) flush_commits();
    }
  }

  void run(const Handler& handler) {
    std::unique_lock lock(socket_mutex);
    zmq::message_t command;
    std::vector<zmq::message_t> frames;
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
      if (!wait(std::max(until_beat, milliseconds(1)))) continue;
      while (!stopping() && socket.recv(command, zmq::recv_flags::dontwait)) {
        last_heard = Clock::now();
        frames.clear();
        for (bool more = command.more(); more;) {
          frames.emplace_back();
          (void)socket.recv(frames.back(), zmq::recv_flags::dontwait);
          more = frames.back().more();
        }
        CommandFrame c;
        if (!decode_command(view(command), c)) continue;
        switch (c.command) {
          case Command::records:
            take_records(c, frames, handler, entry, lock);
            break;
          case Command::assigned:
            flush_commits();
            take_assignment(c);
            break;
          case Command::notice:
            handled[c.partition] = c.offset;
            to_commit.erase(c.partition);
            if (notice) notice(c.partition, c.offset, c.reason);
            break;
          case Command::error:
            if (!c.reason.starts_with(kNotAttached))
              throw Error(errc::bad_argument, "the stream refused: " + c.reason);
            send_subscribe();
            break;
          default:
            break;  // heartbeats
        }
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
