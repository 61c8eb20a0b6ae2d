// StreamPump: the stream device's state and its loop turn. One thread owns
// the partition logs, the readers and the consumer names. Appends are group
// commits: every PUBLISH read in one turn goes to its partition's log in one
// write (and one fdatasync under `always`) before any of them is confirmed.
#include "mqkit/devices/stream.hpp"

#include <algorithm>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <queue>
#include <set>
#include <unordered_map>

#include "atomic_file.hpp"
#include "detail/counter.hpp"
#include "detail/id_table.hpp"
#include "envelope/codec.hpp"
#include "mqkit/error.hpp"
#include "names.hpp"
#include "protocol/commands.hpp"
#include "protocol/records_batch.hpp"
#include "protocol/start_position.hpp"
#include "publish_intake.hpp"
#include "pump.hpp"
#include "router_peers.hpp"
#include "spool/lock_file.hpp"
#include "stream/positions_file.hpp"
#include "stream/stream_id.hpp"
#include "stream/time_seek.hpp"
#include "wire/socket.hpp"

namespace mqkit::devices {

std::uint32_t partition_of_key(std::string_view key, std::uint32_t partitions) noexcept {
  std::uint64_t hash = 14695981039346656037ull;  // FNV-1a 64
  for (const char c : key) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 1099511628211ull;
  }
  return partitions == 0 ? 0 : static_cast<std::uint32_t>(hash % partitions);
}

namespace {

using namespace mqkit::detail::protocol;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;
namespace md = mqkit::detail;

constexpr int kMissedHeartbeats = 5;          // a reader silent this many intervals is lost
constexpr std::size_t kMaxRecordBatch = 256;  // records in one RECORDS
constexpr std::size_t kMaxBatchBytes = 1024 * 1024;
// What one reader may hold sent and not yet committed: its credit (records)
// is capped, and so are the bytes, so that a reader that never reads cannot
// make the device queue its log in memory.
constexpr std::uint32_t kMaxCredit = 65536;
constexpr std::uint64_t kMaxReaderBytes = 8 * 1024 * 1024;
constexpr auto kSaveEvery = std::chrono::milliseconds(50);  // committed positions to disk
constexpr auto kRetentionEvery = std::chrono::seconds(1);
constexpr auto kReadRetryEvery = std::chrono::seconds(1);  // a record that could not be read
// A member giving up a partition has this long (or 5 heartbeats, if longer)
// to stop and commit before the partition goes to its next member anyway.
constexpr auto kMinReleaseTimeout = std::chrono::seconds(30);
constexpr std::uint64_t kNoOffset = UINT64_MAX;

using detail::reply_error;
using detail::send_command;
using detail::Sent;
using detail::view;

// One partition a reader reads: `next` is the next offset to send, `acked`
// the offset the reader has processed up to (COMMIT); in between: in flight,
// `sent_bytes` of it in the batches `sent` (their end offsets and sizes).
struct Cursor {
  std::uint32_t partition = 0;
  std::uint64_t next = 0;
  std::uint64_t acked = 0;
  std::deque<std::pair<std::uint64_t, std::uint64_t>> sent;
  std::uint64_t sent_bytes = 0;
  std::uint64_t failed_at = kNoOffset;  // a record that could not be read (reader told)
  Clock::time_point retry_at{};

  Cursor(std::uint32_t p, std::uint64_t at) : partition(p), next(at), acked(at) {}

  void sent_batch(std::size_t records, std::uint64_t bytes) {
    next += records;
    sent.emplace_back(next, bytes);
    sent_bytes += bytes;
  }
  void acked_to(std::uint64_t offset) {
    acked = std::max(acked, offset);
    while (!sent.empty() && sent.front().first <= acked) {
      sent_bytes -= sent.front().second;
      sent.pop_front();
    }
  }
  void move_to(std::uint64_t offset) {  // nothing in flight any more
    next = acked = offset;
    sent.clear();
    sent_bytes = 0;
  }
};

struct Reader {
  std::string name;  // empty: reads alone, every partition (or those it named)
  StartPosition from;
  std::uint32_t window = 1;
  std::vector<Cursor> cursors;
  std::size_t next_cursor = 0;  // round-robin over the partitions with data
  Clock::time_point last_heard;
  // Partitions taken from this member and not yet handed back: nobody else
  // reads them until it commits what it was sent, answers `assigned`, leaves
  // or `release_by` passes.
  std::vector<Cursor> releasing;
  Clock::time_point release_by;
  // `assigned` sent and not yet answered (answers come in order): only the
  // answer to the newest says what the member holds now.
  std::uint64_t unanswered = 0;

  std::uint64_t in_flight() const {
    std::uint64_t n = 0;
    for (const auto& c : cursors) n += c.next - c.acked;
    for (const auto& c : releasing) n += c.next - c.acked;
    return n;
  }
  std::uint64_t in_flight_bytes() const {
    std::uint64_t n = 0;
    for (const auto& c : cursors) n += c.sent_bytes;
    for (const auto& c : releasing) n += c.sent_bytes;
    return n;
  }
  Cursor* cursor(std::uint32_t partition) {
    for (auto& c : cursors)
      if (c.partition == partition) return &c;
    return nullptr;
  }
};

// A consumer name: its members share the partitions; its positions are durable.
struct ConsumerName {
  std::vector<std::string> members;  // in the order they joined
  detail::Positions committed;
  bool dirty = false;  // committed differs from the file
};

// One partition's records waiting for this turn's group commit.
struct PendingAppend {
  std::vector<std::string_view> frames;  // views into the intake's frames of this turn
  std::vector<MessageId> ids;            // theirs, to settle
};

std::uint32_t read_partition_count(const std::string& dir) {
  std::ifstream in(dir + "/PARTITIONS");
  std::uint32_t n = 0;
  if (in >> n && n > 0) return n;
  return 0;
}

class StreamPump final : public detail::Pump, private detail::PublishSink {
 public:
  explicit StreamPump(const StreamOptions& o)
      : options_(o),
        front_(md::open_socket(zmq::socket_type::router, o.socket)),
        back_(md::open_socket(zmq::socket_type::router, o.socket)),
        intake_(o.dedup_window, o.socket.limits) {
    if (options_.heartbeat.count() <= 0) options_.heartbeat = std::chrono::milliseconds(1000);
    back_.set(zmq::sockopt::router_mandatory, true);  // a gone reader is an error, not a drop
    back_.set(zmq::sockopt::sndhwm, 0);               // credit bounds what each reader holds
    open_logs();
    names_load();
    rebuild_dedup_window();
    front_endpoint_ = md::attach(front_, bind(o.front));
    back_endpoint_ = md::attach(back_, bind(o.back));
    next_heartbeat_ = Clock::now() + options_.heartbeat;
    next_retention_ = Clock::now();
    refresh_counters();
  }

  ~StreamPump() override {
    try {
      // The loop has stopped: commits that readers sent just before still
      // count (a clean stop loses no position).
      for (int i = 0; i < 1024 && read_back(); ++i) {
      }
      save_positions(/*force=*/true);
    } catch (...) {
      // Positions are an at-least-once hint: the older file stands.
    }
  }

  const char* kind() const noexcept override { return "stream"; }
  std::string in_endpoint() const override { return front_endpoint_; }
  std::string out_endpoint() const override { return back_endpoint_; }
  std::vector<zmq::socket_t*> bound_sockets() override { return {&front_, &back_}; }

  void announce_admin_endpoint(const std::string& endpoint) { lock_->set_admin_endpoint(endpoint); }

  std::size_t poll_items(zmq::pollitem_t* items) override {
    items[0] = {front_.handle(), 0, ZMQ_POLLIN, 0};
    items[1] = {back_.handle(), 0, ZMQ_POLLIN, 0};
    return 2;
  }

  std::chrono::milliseconds poll_timeout() const override {
    auto next = std::min(next_heartbeat_, next_retention_);
    if (any_dirty_) next = std::min(next, next_save_);
    // Under interval=D an idle device still syncs what it wrote within D.
    if (options_.log.durability == Durability::interval)
      next = std::min(next, Clock::now() + options_.log.sync_interval);
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(next - Clock::now());
    return std::max(left + std::chrono::milliseconds(1), std::chrono::milliseconds(0));
  }

  void pump(const zmq::pollitem_t*) override {
    for (int i = 0; i < 256 && intake_.read(front_, *this); ++i) {
    }
    append_pending();
    sync_due_logs();
    intake_.end_turn(front_);
    for (int i = 0; i < 1024 && read_back(); ++i) {
    }
    settle_names();
    deliver_all();
    run_timers();
    if (Clock::now() >= next_snapshot_) refresh_counters();
  }

  Counters counters() const override {
    Counters out{{"partitions", logs_.size()},
                 {"published", intake_.published().get()},
                 {"appended", appended_.get()},
                 {"duplicate", intake_.duplicates().get()},
                 {"rejected", intake_.rejected().get()},
                 {"malformed", malformed_.get() + intake_.malformed().get()},
                 {"delivered", delivered_.get()},
                 {"position_resets", position_resets_.get()},
                 {"lost_readers", lost_readers_.get()},
                 {"retention_deleted", retention_deleted_.get()},
                 {"read_errors", read_errors_.get()},
                 {"damaged_skipped", damaged_skipped_.get()}};
    std::lock_guard lock(snapshot_mutex_);
    out.insert(out.end(), snapshot_.begin(), snapshot_.end());
    return out;
  }

  // Per-partition and per-name figures, copied out of the loop's state.
  void refresh_counters() override {
    Counters snapshot{{"readers", readers_.size()}};
    std::uint64_t bytes = 0;
    for (std::uint32_t p = 0; p < logs_.size(); ++p) {
      const StreamLog& log = *logs_[p];
      const std::string prefix = "partition." + std::to_string(p) + ".";
      snapshot.emplace_back(prefix + "first_offset", log.first_offset());
      snapshot.emplace_back(prefix + "next_offset", log.next_offset());
      snapshot.emplace_back(prefix + "records", log.next_offset() - log.first_offset());
      snapshot.emplace_back(prefix + "bytes", log.bytes());
      snapshot.emplace_back(prefix + "segments", log.segments());
      bytes += log.bytes();
    }
    snapshot.insert(snapshot.begin() + 1, {"bytes", bytes});
    for (const auto& [name, consumer] : names_) {
      const std::string prefix = "consumer." + name + ".";
      std::uint64_t lag = 0;
      for (std::uint32_t p = 0; p < logs_.size(); ++p) {
        auto it = consumer.committed.find(p);
        const std::uint64_t at =
            it == consumer.committed.end() ? logs_[p]->first_offset() : it->second;
        lag += logs_[p]->next_offset() - std::min(at, logs_[p]->next_offset());
      }
      snapshot.emplace_back(prefix + "members", consumer.members.size());
      snapshot.emplace_back(prefix + "lag", lag);
    }
    std::lock_guard lock(snapshot_mutex_);
    snapshot_ = std::move(snapshot);
    next_snapshot_ = Clock::now() + std::chrono::milliseconds(200);
  }

 private:
  // ---- opening ----

  void open_logs() {
    std::error_code ec;
    fs::create_directories(options_.dir, ec);
    if (ec) throw Error(ec, "cannot create stream directory " + options_.dir + ": " + ec.message());
    lock_.emplace(options_.dir);
    stream_id_ = detail::load_or_create_stream_id(options_.dir);
    const std::uint32_t had = read_partition_count(options_.dir);
    std::uint32_t count = options_.partitions != 0 ? options_.partitions : std::max(had, 1u);
    if (had != 0 && had != count) {
      // Keys would map to other partitions: refuse unless the stream is empty.
      for (std::uint32_t p = 0; p < had; ++p) {
        StreamLog log(partition_dir(p), options_.log);
        if (log.next_offset() > 0)
          throw Error(errc::bad_argument,
                      options_.dir + " holds a stream of " + std::to_string(had) +
                          " partitions; its partition count cannot change once it holds "
                          "records (use --partitions " +
                          std::to_string(had) + " or another --dir)");
      }
    }
    if (count != had)
      detail::replace_file(options_.dir + "/PARTITIONS", std::to_string(count) + "\n");
    for (std::uint32_t p = 0; p < count; ++p)
      logs_.push_back(std::make_unique<StreamLog>(partition_dir(p), options_.log));
    pending_.resize(count);
  }

  std::string partition_dir(std::uint32_t p) const {
    return options_.dir + "/p" + std::to_string(p);
  }

  void names_load() {
    for (auto& [name, positions] : detail::load_positions(options_.dir)) {
      if (!detail::valid_name(name)) continue;
      names_[name].committed = std::move(positions);
    }
  }

  // A restarted stream still answers `duplicate` to re-sends of records it
  // stored just before it stopped: the newest ids of all partitions together
  // (newest first by append time, however the keys spread them) are read
  // back from the logs' tails until the window is full.
  void rebuild_dedup_window() {
    const std::size_t window = options_.dedup_window;
    if (window == 0) return;
    const std::uint64_t chunk = std::clamp<std::uint64_t>(window / logs_.size(), 16, 4096);
    struct Tail {
      std::uint64_t begin = 0;                                  // read back to here
      std::vector<std::pair<std::uint64_t, MessageId>> newest;  // time, id; newest last
    };
    std::vector<Tail> tails(logs_.size());
    // Refills a partition's tail with the chunk before what was read; false at its start.
    auto refill = [&](std::uint32_t p) {
      Tail& tail = tails[p];
      const StreamLog& log = *logs_[p];
      while (tail.newest.empty() && tail.begin > log.first_offset()) {
        const std::uint64_t end = tail.begin;
        tail.begin = end - std::min(end - log.first_offset(), chunk);
        for_each_readable(log, tail.begin, end, [&](const StreamRecord& r) {
          if (md::envelope_offset(r.frame) &&
              codec_.decode(r.frame, decoded_, options_.socket.limits))
            tail.newest.emplace_back(r.time_ms, decoded_.id());
        });
      }
      return !tail.newest.empty();
    };
    using Head = std::pair<std::uint64_t, std::uint32_t>;  // time, partition
    std::priority_queue<Head> heads;
    for (std::uint32_t p = 0; p < logs_.size(); ++p) {
      tails[p].begin = logs_[p]->next_offset();
      if (refill(p)) heads.emplace(tails[p].newest.back().first, p);
    }
    std::vector<MessageId> newest_first;
    while (newest_first.size() < window && !heads.empty()) {
      const std::uint32_t p = heads.top().second;
      heads.pop();
      newest_first.push_back(tails[p].newest.back().second);
      tails[p].newest.pop_back();
      if (refill(p)) heads.emplace(tails[p].newest.back().first, p);
    }
    for (auto it = newest_first.rbegin(); it != newest_first.rend(); ++it) intake_.remember(*it);
  }

  // Calls `visit` with each record of [begin, end) that reads, in order. A
  // damaged record is stepped over (its id is gone with it, so a re-send of
  // it is stored again: kept, not lost); a read the disk fails (EIO) is
  // tried again a few times before that record is left out. A few MiB are
  // held at a time, however large the range: only what `visit` keeps stays.
  template <typename Visit>
  static void for_each_readable(const StreamLog& log, std::uint64_t begin, std::uint64_t end,
                                Visit&& visit) {
    constexpr int kReadTries = 4;
    for (std::uint64_t at = begin; at < end;) {
      std::vector<StreamRecord> records;
      bool read = false;
      // A run is read with one pread: when it keeps failing, the record at
      // `at` alone (the bad sector may be further on), and only then is it
      // left out.
      for (int tries = 0; !read && tries < kReadTries + 1; ++tries) {
        try {
          const std::size_t wanted = tries < kReadTries ? static_cast<std::size_t>(end - at) : 1;
          records = log.read(at, wanted, kMaxBatchBytes);
          read = true;
        } catch (const Error&) {
        }
      }
      if (!read) {  // the disk keeps failing this one
        ++at;
        continue;
      }
      if (records.empty()) {  // a damaged record here, or the end
        const std::uint64_t damaged = log.damaged_from(at);
        if (damaged == 0) break;
        at += damaged;
        continue;
      }
      at = records.back().offset + 1;
      for (const auto& r : records)
        if (r.offset < end) visit(r);
    }
  }

  // ---- producers ----

  // A message new to the stream: it joins its partition's group commit.
  bool store(detail::Publish& m) override {
    if (m.target_group) {
      intake_.answer(m.producer, m.id, ConfirmStatus::rejected,
                     "a stream has no groups: publish without a target group");
      return false;
    }
    const auto partitions = static_cast<std::uint32_t>(logs_.size());
    const std::uint32_t p = m.message.envelope.key
                                ? partition_of_key(*m.message.envelope.key, partitions)
                                : static_cast<std::uint32_t>(spread_++ % partitions);
    pending_[p].frames.push_back(m.frame);
    pending_[p].ids.push_back(m.id);
    return true;
  }

  // Under interval=D: the logs whose first unsynced append is D old are
  // synced now (an append does so itself; this covers an idle device). A
  // failed sync makes that log's appends fail until one succeeds, so the
  // producers hear it in their confirms.
  void sync_due_logs() {
    if (options_.log.durability != Durability::interval) return;
    for (auto& log : logs_) {
      try {
        log->sync_if_due();
      } catch (const Error&) {  // tried again next turn
      }
    }
  }

  // The group commit: one append (one write, one sync) per partition.
  void append_pending() {
    for (std::uint32_t p = 0; p < pending_.size(); ++p) {
      PendingAppend& batch = pending_[p];
      if (batch.frames.empty()) continue;
      try {
        logs_[p]->append_batch(batch.frames);
        appended_.add(batch.frames.size());
        // Over the size limit: the oldest segments go now, not at the next tick.
        if (options_.log.retain_bytes > 0 && logs_[p]->bytes() > options_.log.retain_bytes)
          apply_retention(p);
        for (const auto& id : batch.ids) intake_.settle(id, ConfirmStatus::stored, "");
      } catch (const Error& e) {
        // Nothing of the batch was appended: the producers may send again.
        const std::string why =
            "partition " + std::to_string(p) + " could not store it: " + e.what();
        for (const auto& id : batch.ids) intake_.settle(id, ConfirmStatus::rejected, why);
      }
      batch.frames.clear();
      batch.ids.clear();
    }
  }

  // ---- readers ----

  bool read_back() {
    zmq::message_t identity, command;
    extra_frames_.clear();
    if (!detail::receive_command(back_, identity, command, extra_frames_)) return false;
    const bool extra = !extra_frames_.empty();
    const std::string reader(view(identity));
    CommandFrame cmd;
    const auto decoded = decode_command(view(command), cmd);
    if (!decoded || extra) {
      malformed_.add();
      reply_error(back_, reader, decoded ? "reader commands are one frame" : decoded.detail);
      return true;
    }
    if (cmd.command == Command::subscribe) {
      subscribe(reader, cmd);
      return true;
    }
    auto it = readers_.find(reader);
    if (it == readers_.end()) {
      // A restarted stream, or a reader given up as lost: it must subscribe again.
      if (cmd.command != Command::detach)
        reply_error(back_, reader, std::string(kNotAttached) + ": send subscribe again");
      return true;
    }
    it->second.last_heard = Clock::now();
    switch (cmd.command) {
      case Command::commit:
        commit(it->second, cmd.positions);
        break;
      case Command::heartbeat:
        break;
      case Command::assigned:
        answered(it->second, cmd.positions);
        break;
      case Command::detach:
        remove_reader(reader);
        break;
      default:
        malformed_.add();
        reply_error(back_, reader, "readers may subscribe, commit, heartbeat, detach");
    }
    return true;
  }

  void subscribe(const std::string& identity, const CommandFrame& cmd) {
    if (!cmd.group.empty() && !detail::valid_name(cmd.group)) {
      reply_error(back_, identity,
                  "consumer name '" + cmd.group +
                      "' is not valid: use 1-128 letters, digits, '-', '_' or '.'");
      return;
    }
    Reader r;
    r.name = cmd.group;
    r.window = std::clamp<std::uint32_t>(cmd.credit, 1, kMaxCredit);
    r.last_heard = Clock::now();
    try {
      r.from = StartPosition::parse(cmd.from);
      check_start(r.from);
    } catch (const Error& e) {
      reply_error(back_, identity, e.what());
      return;
    }
    if (readers_.contains(identity)) remove_reader(identity);  // subscribing afresh
    auto& reader = readers_.emplace(identity, std::move(r)).first->second;
    if (reader.name.empty()) {
      for (std::uint32_t p = 0; p < logs_.size(); ++p) {
        if (reader.from.kind == StartPosition::Kind::partitions && !reader.from.offsets.contains(p))
          continue;
        reader.cursors.emplace_back(p, start_of(reader.from, p));
      }
      send_assigned(identity);
      return;
    }
    names_[reader.name].members.push_back(identity);
    rebalance(reader.name, identity);
  }

  // Offsets past a partition's end are a mistake worth saying at once.
  void check_start(const StartPosition& from) const {
    auto check = [&](std::uint32_t p, std::uint64_t offset) {
      if (p >= logs_.size())
        throw Error(errc::bad_argument, "partition " + std::to_string(p) +
                                            " does not exist: the stream has " +
                                            std::to_string(logs_.size()) + " (0.." +
                                            std::to_string(logs_.size() - 1) + ")");
      if (offset > logs_[p]->next_offset())
        throw Error(errc::bad_argument, "offset " + std::to_string(offset) +
                                            " is past the end of partition " + std::to_string(p) +
                                            " (its next offset is " +
                                            std::to_string(logs_[p]->next_offset()) + ")");
    };
    if (from.kind == StartPosition::Kind::offset)
      for (std::uint32_t p = 0; p < logs_.size(); ++p) check(p, from.value);
    if (from.kind == StartPosition::Kind::partitions)
      for (const auto& [p, offset] : from.offsets) check(p, offset);
  }

  std::uint64_t start_of(const StartPosition& from, std::uint32_t p) const {
    const StreamLog& log = *logs_[p];
    switch (from.kind) {
      case StartPosition::Kind::earliest:
        return log.first_offset();
      case StartPosition::Kind::latest:
        return log.readable_end();
      case StartPosition::Kind::time:
        return detail::offset_at_time(log, from.value);
      case StartPosition::Kind::offset:
        return std::min(from.value, log.next_offset());
      case StartPosition::Kind::partitions: {
        auto it = from.offsets.find(p);
        return it == from.offsets.end() ? log.first_offset()
                                        : std::min(it->second, log.next_offset());
      }
    }
    return log.first_offset();
  }

  // Shares the name's partitions among its members: partition p goes to
  // member p % members. Revoke first, then assign: a partition that moves is
  // taken from its old member at once but given to the new one only once the
  // old one has let it go (released()), so one member reads it at a time.
  // Members whose share changed are told.
  void rebalance(const std::string& name, const std::string& joined = {}) {
    ConsumerName& consumer = names_[name];
    const std::size_t members = consumer.members.size();
    std::vector<bool> changed(members, false);
    std::vector<bool> taken(logs_.size(), false);  // read, or still being let go, by someone
    for (std::size_t i = 0; i < members; ++i) {
      Reader& reader = readers_.at(consumer.members[i]);
      auto mine = [&](std::uint32_t p) { return p < logs_.size() && p % members == i; };
      // Its own partitions coming back to it before it let them go.
      for (auto it = reader.releasing.begin(); it != reader.releasing.end();) {
        if (!mine(it->partition)) {
          ++it;
          continue;
        }
        // It may have dropped what it held of it: send again from its commit.
        it->move_to(it->acked);
        reader.cursors.push_back(std::move(*it));
        it = reader.releasing.erase(it);
        changed[i] = true;
      }
      for (auto it = reader.cursors.begin(); it != reader.cursors.end();) {
        if (mine(it->partition)) {
          ++it;
          continue;
        }
        // Nothing in flight: let go at once; else wait for it to stop and commit.
        if (it->acked < it->next) {
          if (reader.releasing.empty()) reader.release_by = Clock::now() + release_timeout();
          reader.releasing.push_back(std::move(*it));
        }
        it = reader.cursors.erase(it);
        changed[i] = true;
      }
      for (const auto& c : reader.cursors) taken[c.partition] = true;
      for (const auto& c : reader.releasing) taken[c.partition] = true;
    }
    for (std::size_t i = 0; i < members; ++i) {
      Reader& reader = readers_.at(consumer.members[i]);
      for (std::uint32_t p = static_cast<std::uint32_t>(i); p < logs_.size();
           p += static_cast<std::uint32_t>(members)) {
        if (taken[p]) continue;
        auto committed = consumer.committed.find(p);
        if (committed == consumer.committed.end()) {
          // A name's first read of a partition: its start becomes its position.
          committed = consumer.committed.emplace(p, start_of(reader.from, p)).first;
          mark_dirty(consumer);
        }
        reader.cursors.emplace_back(p, std::min(committed->second, logs_[p]->next_offset()));
        changed[i] = true;
      }
      if (changed[i]) {
        std::sort(reader.cursors.begin(), reader.cursors.end(),
                  [](const Cursor& a, const Cursor& b) { return a.partition < b.partition; });
        reader.next_cursor = 0;
      }
    }
    // Told after the loop: telling may lose a member (and rebalance again).
    std::vector<std::string> to_tell;
    for (std::size_t i = 0; i < members; ++i)
      if (changed[i] || consumer.members[i] == joined) to_tell.push_back(consumer.members[i]);
    for (const auto& identity : to_tell) send_assigned(identity);
  }

  std::chrono::milliseconds release_timeout() const {
    return std::max<std::chrono::milliseconds>(kMinReleaseTimeout,
                                               kMissedHeartbeats * options_.heartbeat);
  }

  // The member let go of the partitions taken from it: they go to their new members.
  void released(Reader& reader) {
    if (reader.releasing.empty()) return;
    reader.releasing.clear();
    if (!reader.name.empty()) to_settle_.insert(reader.name);
  }

  // Its answer to an `assigned`: it stopped reading (and committed) every
  // partition not in `holds`. An answer to an older `assigned` says nothing
  // of what a newer one gave back and took again: only the newest counts.
  void answered(Reader& reader, const std::vector<Position>& holds) {
    if (reader.unanswered > 0) --reader.unanswered;
    if (reader.unanswered > 0) return;  // a newer `assigned` is on its way or being handled
    const auto before = reader.releasing.size();
    std::erase_if(reader.releasing, [&](const Cursor& c) {
      return std::none_of(holds.begin(), holds.end(),
                          [&](const Position& h) { return h.partition == c.partition; });
    });
    if (reader.releasing.size() != before && !reader.name.empty()) to_settle_.insert(reader.name);
  }

  // Rebalances the names whose members let partitions go.
  void settle_names() {
    while (!to_settle_.empty()) {
      const std::string name = *to_settle_.begin();
      to_settle_.erase(to_settle_.begin());
      auto it = names_.find(name);
      if (it != names_.end() && !it->second.members.empty()) rebalance(name);
    }
  }

  // Tells a reader which partitions it reads from where; a reader that is
  // gone is lost (its name rebalanced).
  void send_assigned(const std::string& identity) {
    auto it = readers_.find(identity);
    if (it == readers_.end()) return;  // lost while others were told
    CommandFrame c{.command = Command::assigned,
                   .group = it->second.name,
                   .heartbeat_ms = static_cast<std::uint64_t>(options_.heartbeat.count()),
                   .stream_id = stream_id_};
    for (const auto& cursor : it->second.cursors)
      c.positions.push_back({cursor.partition, cursor.next});
    const Sent sent = send_command(back_, identity, encode_command(c));
    if (sent == Sent::gone) {
      lose_reader(identity);
      return;
    }
    if (sent == Sent::ok) ++it->second.unanswered;
  }

  void commit(Reader& reader, const std::vector<Position>& positions) {
    for (const auto& position : positions) {
      Cursor* cursor = reader.cursor(position.partition);
      auto releasing =
          std::find_if(reader.releasing.begin(), reader.releasing.end(),
                       [&](const Cursor& c) { return c.partition == position.partition; });
      if (cursor == nullptr && releasing != reader.releasing.end()) cursor = &*releasing;
      // Not its partition (any more), or not sent: a late or confused commit.
      if (cursor == nullptr || position.offset > cursor->next) continue;
      cursor->acked_to(position.offset);
      if (releasing != reader.releasing.end() && cursor == &*releasing &&
          cursor->acked >= cursor->next) {
        // Everything it was sent of a partition it is giving up is handled: let go.
        reader.releasing.erase(releasing);
        if (!reader.name.empty()) to_settle_.insert(reader.name);
      }
      if (reader.name.empty()) continue;
      ConsumerName& consumer = names_[reader.name];
      auto& committed = consumer.committed[position.partition];
      if (position.offset > committed) {
        committed = position.offset;
        mark_dirty(consumer);
      }
    }
  }

  void mark_dirty(ConsumerName& consumer) {
    consumer.dirty = true;
    if (!any_dirty_) next_save_ = Clock::now() + kSaveEvery;
    any_dirty_ = true;
  }

  void remove_reader(const std::string& identity) {
    auto it = readers_.find(identity);
    if (it == readers_.end()) return;
    const std::string name = it->second.name;
    readers_.erase(it);
    if (name.empty()) return;
    ConsumerName& consumer = names_[name];
    std::erase(consumer.members, identity);
    if (!consumer.members.empty()) rebalance(name);
  }

  void lose_reader(const std::string& identity) {
    if (!readers_.contains(identity)) return;
    lost_readers_.add();
    remove_reader(identity);
  }

  // ---- delivery ----

  void deliver_all() {
    // Delivering may lose a reader (and rebalance others): walk a copy of the keys.
    identities_.clear();
    for (const auto& [identity, reader] : readers_) identities_.push_back(identity);
    for (const auto& identity : identities_) {
      for (int batches = 0; batches < 64; ++batches) {
        auto it = readers_.find(identity);
        if (it == readers_.end() || !deliver_batch(identity, it->second)) break;
      }
    }
  }

  // Sends one RECORDS batch from the next partition with records to send;
  // false when there is nothing to send or no credit (records, or bytes: a
  // reader that does not read makes the device stop reading the log for it).
  bool deliver_batch(const std::string& identity, Reader& reader) {
    const std::uint64_t in_flight = reader.in_flight();
    if (in_flight >= reader.window || reader.cursors.empty()) return false;
    const std::uint64_t in_flight_bytes = reader.in_flight_bytes();
    if (in_flight > 0 && in_flight_bytes >= kMaxReaderBytes) return false;
    for (std::size_t tried = 0; tried < reader.cursors.size(); ++tried) {
      Cursor& cursor = reader.cursors[reader.next_cursor++ % reader.cursors.size()];
      const StreamLog& log = *logs_[cursor.partition];
      if (cursor.next < log.first_offset() && !reset_to_earliest(identity, reader, cursor))
        return false;  // the reader is gone
      if (cursor.next >= log.readable_end()) continue;
      if (cursor.failed_at == cursor.next && Clock::now() < cursor.retry_at) continue;
      const std::size_t n = static_cast<std::size_t>(
          std::min<std::uint64_t>(reader.window - in_flight, kMaxRecordBatch));
      const std::size_t max_bytes = static_cast<std::size_t>(std::max<std::uint64_t>(
          std::min<std::uint64_t>(kMaxBatchBytes,
                                  kMaxReaderBytes - std::min(in_flight_bytes, kMaxReaderBytes)),
          1));
      std::vector<StreamRecord> records;
      if (!read_for(identity, cursor, n, max_bytes, records)) return false;  // the reader is gone
      if (records.empty()) {
        // The log stops before a damaged record: once the reader holds
        // nothing before it, it is told and steps over the damaged run.
        if (cursor.failed_at == cursor.next || cursor.acked < cursor.next) continue;
        std::string why;
        const std::uint64_t damaged = log.damaged_from(cursor.next, &why);
        if (damaged == 0) continue;
        if (!skip_damaged(identity, reader, cursor, cursor.next + damaged, why)) return false;
        return true;
      }
      if (records.front().offset > cursor.next) {
        // The log skipped damaged records here: once the reader holds nothing
        // before them, it is told and goes on after them.
        if (cursor.acked < cursor.next) continue;
        if (!skip_damaged(identity, reader, cursor, records.front().offset)) return false;
      }
      std::size_t run = 1;  // one batch is consecutive offsets
      while (run < records.size() && records[run].offset == records[run - 1].offset + 1) ++run;
      records.resize(run);
      const auto encoded = encode_command(records_command(cursor.partition, records));
      zmq::message_t batch(records_frame_size(records));
      pack_records_frame(records, {static_cast<char*>(batch.data()), batch.size()});
      const std::uint64_t bytes = batch.size();
      try {
        if (!back_.send(zmq::buffer(identity),
                        zmq::send_flags::sndmore | zmq::send_flags::dontwait))
          return false;  // its queue is full for now
        (void)back_.send(zmq::buffer(encoded), zmq::send_flags::sndmore);
        (void)back_.send(batch, zmq::send_flags::none);
      } catch (const zmq::error_t&) {
        lose_reader(identity);
        return false;
      }
      cursor.sent_batch(records.size(), bytes);
      delivered_.add(records.size());
      return true;
    }
    return false;
  }

  // Reads the next records for a cursor. A read that fails is contained to
  // this reader: the records before the one that does not read still go;
  // at that one the reader is told (once) and it is tried again every
  // second, while the device and its other readers go on. False when the
  // reader turned out to be gone.
  bool read_for(const std::string& identity, Cursor& cursor, std::size_t n, std::size_t max_bytes,
                std::vector<StreamRecord>& out) {
    const StreamLog& log = *logs_[cursor.partition];
    try {
      out = log.read(cursor.next, n, max_bytes);
      while (!out.empty() && out.back().offset >= log.readable_end()) out.pop_back();
      return true;
    } catch (const Error& e) {
      out.clear();
      std::string why = e.what();
      for (std::uint64_t at = cursor.next; out.size() < n && at < log.readable_end(); ++at) {
        try {
          auto one = log.read(at, 1);
          if (one.empty() || (!out.empty() && one.front().offset != out.back().offset + 1)) break;
          at = one.front().offset;
          out.push_back(std::move(one.front()));
        } catch (const Error& single) {
          why = single.what();
          break;
        }
      }
      if (!out.empty()) return true;
      cursor.retry_at = Clock::now() + kReadRetryEvery;
      if (cursor.failed_at == cursor.next) return true;  // told already
      cursor.failed_at = cursor.next;
      read_errors_.add();
      return notify(identity, cursor.partition, cursor.next,
                    "the record at offset " + std::to_string(cursor.next) + " of partition " +
                        std::to_string(cursor.partition) + " cannot be read (" + why +
                        "); reading this partition stops there and is tried again every second");
    }
  }

  // The log left out damaged records before `to`: the reader is told and
  // goes on from `to` (for a name, that becomes its position). `why`: the
  // log's reason, when it gave one.
  bool skip_damaged(const std::string& identity, Reader& reader, Cursor& cursor, std::uint64_t to,
                    const std::string& why = {}) {
    const std::uint64_t from = cursor.next;
    damaged_skipped_.add(to - from);
    cursor.move_to(to);
    if (!reader.name.empty()) {
      ConsumerName& consumer = names_[reader.name];
      auto& committed = consumer.committed[cursor.partition];
      if (committed < to) {
        committed = to;
        mark_dirty(consumer);
      }
    }
    const bool one = to - from == 1;
    return notify(
        identity, cursor.partition, to,
        (one ? "the record at offset " + std::to_string(from)
             : "the records at offsets " + std::to_string(from) + "-" + std::to_string(to - 1)) +
            " of partition " + std::to_string(cursor.partition) +
            (one ? " is damaged" : " are damaged") + (why.empty() ? "" : " (" + why + ")") +
            (one ? " and was" : " and were") + " skipped; reading on from offset " +
            std::to_string(to));
  }

  // Sends a NOTICE; false when the reader turned out to be gone (and was lost).
  bool notify(const std::string& identity, std::uint32_t partition, std::uint64_t offset,
              const std::string& why) {
    const auto encoded = encode_command(
        {.command = Command::notice, .reason = why, .partition = partition, .offset = offset});
    if (send_command(back_, identity, encoded) != Sent::gone) return true;
    lose_reader(identity);
    return false;
  }

  // The reader's position is no longer retained: say so and go on from the
  // earliest record there is. False when the reader turned out to be gone
  // (and was lost: `reader` and `cursor` are no more).
  bool reset_to_earliest(const std::string& identity, Reader& reader, Cursor& cursor) {
    const std::uint64_t first = logs_[cursor.partition]->first_offset();
    const std::string why = "offset " + std::to_string(cursor.next) + " of partition " +
                            std::to_string(cursor.partition) +
                            " is no longer retained; reading on from the earliest retained "
                            "record, offset " +
                            std::to_string(first);
    position_resets_.add();
    cursor.move_to(first);
    if (!reader.name.empty()) {
      ConsumerName& consumer = names_[reader.name];
      consumer.committed[cursor.partition] = first;
      mark_dirty(consumer);
    }
    return notify(identity, cursor.partition, first, why);
  }

  // ---- timers ----

  void run_timers() {
    const auto now = Clock::now();
    if (now >= next_heartbeat_) {
      next_heartbeat_ = now + options_.heartbeat;
      heartbeat_readers(now);
      // A member that neither stopped nor answered in time lets go anyway.
      for (auto& [identity, reader] : readers_)
        if (!reader.releasing.empty() && now >= reader.release_by) released(reader);
      settle_names();
    }
    if (any_dirty_ && now >= next_save_) save_positions(false);
    if (now >= next_retention_) {
      next_retention_ = now + kRetentionEvery;
      for (std::uint32_t p = 0; p < logs_.size(); ++p) apply_retention(p);
    }
  }

  void apply_retention(std::uint32_t p) {
    try {
      retention_deleted_.add(logs_[p]->enforce_retention());
    } catch (const Error&) {
      // A segment that cannot be deleted stays (and is tried again next tick).
      retention_errors_.add();
    }
  }

  void heartbeat_readers(Clock::time_point now) {
    static const std::string beat = encode_command({.command = Command::heartbeat});
    std::vector<std::string> lost;
    for (const auto& [identity, reader] : readers_)
      if (now - reader.last_heard > kMissedHeartbeats * options_.heartbeat ||
          send_command(back_, identity, beat) == Sent::gone)
        lost.push_back(identity);
    for (const auto& identity : lost) lose_reader(identity);
  }

  void save_positions(bool force) {
    if (!any_dirty_ && !force) return;
    for (auto& [name, consumer] : names_) {
      if (!consumer.dirty) continue;
      detail::save_positions(options_.dir, name, consumer.committed);
      consumer.dirty = false;
    }
    any_dirty_ = false;
  }

  StreamOptions options_;
  std::optional<md::spool::LockFile> lock_;
  std::vector<std::unique_ptr<StreamLog>> logs_;
  zmq::socket_t front_, back_;
  std::string front_endpoint_, back_endpoint_;
  std::string stream_id_;  // DIR/STREAM_ID: readers tell a reset stream by it
  md::EnvelopeCodec codec_;
  Message decoded_;

  std::vector<PendingAppend> pending_;
  std::uint64_t spread_ = 0;  // round-robin for records without a key
  detail::PublishIntake intake_;
  std::vector<zmq::message_t> extra_frames_;  // after a reader's command: not allowed

  std::unordered_map<std::string, Reader> readers_;
  std::vector<std::string> identities_;
  std::map<std::string, ConsumerName> names_;
  std::set<std::string> to_settle_;  // names with partitions let go, to hand on
  bool any_dirty_ = false;
  Clock::time_point next_heartbeat_, next_retention_, next_save_, next_snapshot_;

  mutable std::mutex snapshot_mutex_;
  Counters snapshot_;  // guarded by snapshot_mutex_
  md::Counter appended_, malformed_, delivered_, position_resets_, lost_readers_,
      retention_deleted_, retention_errors_, read_errors_, damaged_skipped_;
};

}  // namespace

Stream::Stream(const StreamOptions& options)
    : Device({options.front, options.back, options.stats, options.socket},
             std::make_unique<StreamPump>(options)) {
  if (!stats_endpoint().empty())
    static_cast<StreamPump&>(pump()).announce_admin_endpoint(stats_endpoint());
}

}  // namespace mqkit::devices
