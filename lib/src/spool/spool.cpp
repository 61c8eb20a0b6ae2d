// Spool: the writer thread (group commit, segment rolling, write-error
// rollback), recovery on open, compaction, and reads.
#include "mqkit/spool.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <future>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_set>

#include "envelope/codec.hpp"
#include "log/env.hpp"
#include "log/lock_file.hpp"
#include "log/segment_file.hpp"
#include "log/segment_reader.hpp"
#include "mqkit/duration.hpp"
#include "mqkit/error.hpp"
#include "spool/records.hpp"
#include "spool/spool_index.hpp"

namespace mqkit {
namespace fs = std::filesystem;
using namespace detail::spool;
using namespace detail::log;

namespace detail::spool {

std::string segment_name(std::uint32_t number) {
  char name[32];
  std::snprintf(name, sizeof name, "%08u%s", number, kSegmentSuffix);
  return name;
}

// Segment numbers present in `dir`, ascending (8 digits, more past 99,999,999).
std::vector<std::uint32_t> list_segments(const std::string& dir, Env& env) {
  std::vector<std::string> names;
  if (const int err = env.list_dir(dir, names); err != 0)
    throw Error(std::error_code(err, std::system_category()),
                "cannot list spool directory " + dir + ": " + std::strerror(err));
  std::vector<std::uint32_t> numbers;
  const std::size_t suffix = std::strlen(kSegmentSuffix);
  for (const auto& name : names) {
    if (name.size() < 8 + suffix || name.size() > 10 + suffix || !name.ends_with(kSegmentSuffix))
      continue;
    const std::string digits = name.substr(0, name.size() - suffix);
    if (digits.find_first_not_of("0123456789") != std::string::npos) continue;
    const unsigned long long number = std::stoull(digits);
    if (number > 0xFFFFFFFFull || segment_name(static_cast<std::uint32_t>(number)) != name)
      continue;
    numbers.push_back(static_cast<std::uint32_t>(number));
  }
  std::sort(numbers.begin(), numbers.end());
  return numbers;
}

}  // namespace detail::spool

namespace {

[[noreturn]] void throw_error(int err, const std::string& what) {
  throw Error(std::error_code(err, std::system_category()), what + ": " + std::strerror(err));
}

struct QueuedRecord {
  RecordType type;
  std::string body;
  DecodedRecord update;  // applied to the index once durable (frame left empty)
  Completion done;
  std::uint64_t order_key = 0;  // a publish's ordering key (0: none)
};

}  // namespace

void parse_durability(std::string_view text, SpoolOptions& options) {
  if (text == "always") {
    options.durability = Durability::always;
  } else if (text == "never") {
    options.durability = Durability::never;
  } else if (text.starts_with("interval=")) {
    options.durability = Durability::interval;
    options.sync_interval = parse_duration(text.substr(9));
    if (options.sync_interval.count() <= 0)
      throw Error(errc::bad_argument, "interval must be positive, e.g. interval=10ms");
  } else {
    throw Error(errc::bad_argument, "'" + std::string(text) +
                                        "' is not a durability: use always, never or "
                                        "interval=DURATION (e.g. interval=10ms)");
  }
}

struct Spool::Impl {
  std::string dir;
  SpoolOptions options;
  Env* env = &Env::posix();
  std::optional<LockFile> lock;
  RecoveryReport report;

  mutable std::mutex index_mutex;
  SpoolIndex index;  // guarded by index_mutex
  // SpoolOptions::recall_schedule: not_before of every PUBLISH that has one,
  // filled while recovering (filtered to held messages by take_schedule).
  std::unordered_map<MessageId, std::uint64_t> schedule;  // guarded by index_mutex
  std::map<std::uint32_t, std::uint64_t> seg_sizes;       // guarded by index_mutex
  std::map<std::uint32_t, std::uint32_t> seg_seeds;       // CRC seed per segment; index_mutex
  std::set<std::uint32_t> damaged;  // kept for inspection, never compacted; set at open
  std::map<std::uint32_t, std::uint64_t> unreadable;  // per segment, by compaction; index_mutex
  // When compaction last failed to copy a segment's live messages (writer
  // thread only): it tries again after kRewriteBackoff, not after every batch.
  static constexpr std::chrono::seconds kRewriteBackoff{10};
  std::map<std::uint32_t, std::chrono::steady_clock::time_point> rewrite_failed_at;

  std::mutex queue_mutex;
  std::condition_variable queue_cv, idle_cv;
  std::vector<QueuedRecord> queue;  // guarded by queue_mutex
  std::uint64_t queued_bytes = 0;   // guarded by queue_mutex
  // The batch being written: counted against max_size until its bytes are
  // on disk (guarded by queue_mutex).
  std::uint64_t writing_bytes = 0;
  std::size_t in_flight = 0;  // guarded by queue_mutex
  bool closing = false;       // guarded by queue_mutex
  // Ordering keys with a publish refused `full` and not released yet: their
  // later publishes are refused too (guarded by queue_mutex).
  std::unordered_set<std::uint64_t> refused_keys;
  std::atomic<std::uint64_t> next_seq{1};
  std::atomic<std::uint64_t> disk_bytes{0}, syncs{0}, records_written{0};

  // Owned by the writer thread after open.
  std::unique_ptr<SegmentFile> active;
  std::uint32_t active_number = 0;
  SyncDeadline deadline;
  int sync_error = 0;  // a failed interval sync: nothing is confirmed until one succeeds
  // sync(): asked for and done (under queue_mutex), and how the last one went.
  std::uint64_t syncs_wanted = 0, syncs_done = 0;
  int wanted_sync_error = 0;
  std::thread writer;

  std::string path_of(std::uint32_t number) const { return dir + "/" + segment_name(number); }

  // Group bits never change once given, so publishers keep a copy of them
  // and do not wait for the index, which the writer holds while it applies
  // a whole batch.
  std::mutex bits_mutex;
  std::map<std::string, std::uint64_t, std::less<>> bits;  // guarded by bits_mutex

  std::uint64_t mask_of(const std::vector<std::string>& groups) {
    std::uint64_t mask = 0;
    std::lock_guard b(bits_mutex);
    for (const auto& g : groups) {
      auto it = bits.find(g);
      if (it == bits.end()) {
        std::lock_guard l(index_mutex);
        const int bit = index.group_bit(g);  // gives a new group its bit
        if (bit < 0) return 0;
        it = bits.emplace(g, std::uint64_t{1} << bit).first;
      }
      mask |= it->second;
    }
    return mask;
  }

  // ---- open and recovery ----

  void open() {
    if (options.segment_size > kMaxSegmentSize ||
        options.max_record_size > kMaxSegmentSize - std::min(options.segment_size, kMaxSegmentSize))
      throw Error(errc::bad_argument,
                  "segment size plus the largest record must stay below 4 GiB (segment size " +
                      std::to_string(options.segment_size) + ")");
    if (const int err = make_dirs(*env, dir); err != 0)
      throw_error(err, "cannot create spool directory " + dir);
    lock.emplace(dir);
    if (!reserve_present()) take_reserve();  // best effort: a full disk may refuse it
    const auto numbers = list_segments(dir, *env);
    bool fresh_segment = numbers.empty();
    for (std::size_t i = 0; i < numbers.size(); ++i) {
      const bool last = i + 1 == numbers.size();
      if (!recover_segment(numbers[i], last) && last) fresh_segment = true;
    }
    if (fresh_segment) {
      const std::uint32_t number = numbers.empty() ? 1 : numbers.back() + 1;
      if (!create_segment(number, options.durability != Durability::never))
        throw_error(errno, "cannot create " + path_of(number));
    }
    next_seq = index.next_seq;
    std::uint64_t total = 0;
    for (const auto& [n, size] : seg_sizes) total += size;
    disk_bytes = total;
  }

  // A scheduled message's time, from its envelope (a copy says the same).
  void recall_not_before(const DecodedRecord& r) {
    if (!codec) codec.emplace();
    Limits unbounded;
    unbounded.max_message_size = r.frame.size();  // stored once: it was within limits then
    if (codec->decode(r.frame, scratch, unbounded) && scratch.envelope.not_before != 0)
      schedule[r.id] = scratch.envelope.not_before;
  }
  std::optional<mqkit::detail::EnvelopeCodec> codec;  // only while recovering
  Message scratch;

  // Replays one segment into the index. For the last one, also makes it the
  // active segment and returns true, or returns false when appends must go to
  // a new segment instead (its header or its middle is damaged: it is kept
  // as it is, for its records and for inspection).
  bool recover_segment(std::uint32_t number, bool last) {
    const std::string path = path_of(number);
    SegmentReader reader(path, options.max_record_size, *env);
    const ScanReport scan = reader.scan([&](const RecordView& r) {
      auto decoded = decode_record(r.type, r.body);
      if (!decoded) {
        ++report.corrupt_records;
        report.problems.push_back(path + ": record at offset " + std::to_string(r.offset) +
                                  " has a valid CRC but an unreadable body; skipped");
        return;
      }
      index.apply(*decoded, {number, static_cast<std::uint32_t>(r.offset), r.size});
      if (options.recall_schedule && decoded->type == RecordType::publish)
        recall_not_before(*decoded);
    });
    ++report.segments;
    report.records += scan.records;
    report.corrupt_records += scan.corrupt_records;
    report.corrupt_bytes += scan.corrupt_bytes;
    report.problems.insert(report.problems.end(), scan.problems.begin(), scan.problems.end());
    std::uint64_t size = reader.file_size();
    seg_seeds[number] = reader.crc_seed();
    if (reader.header_state() == HeaderState::damaged) {
      // A bad byte in a whole header: corruption, never a tail. The records
      // behind it were read where they check out; the file stays as it is.
      ++report.corrupt_records;
      seg_sizes[number] = size;
      damaged.insert(number);
      return false;
    }
    if (reader.header_state() == HeaderState::incomplete) {
      if (!last) {
        ++report.corrupt_records;
        report.corrupt_bytes += size;
        return false;  // left on disk for inspection
      }
      // A crash right after the file was created: it holds nothing.
      report.torn_tail_bytes += size;
      report.problems.push_back(path + ": " + std::to_string(size) +
                                " bytes of an incomplete header; the segment starts again");
      if (!create_segment(number, options.durability != Durability::never))
        throw_error(errno, "cannot repair " + path);
      return true;
    }
    // A tail whose first record is whole but fails its check is damage (a
    // confirmed record may be gone), not a write cut short: reported, and
    // the file kept as it is, appends going to a new segment.
    if (scan.torn_tail_bytes > 0 && !reader.zeros_from(scan.valid_end) &&
        reader.records_in_damaged_tail(scan.valid_end, kRecordHeaderSize) > 0) {
      ++report.corrupt_records;
      report.corrupt_bytes += scan.torn_tail_bytes;
      report.problems.push_back(path + ": the record at offset " + std::to_string(scan.valid_end) +
                                " is whole but fails its check; " +
                                std::to_string(scan.torn_tail_bytes) + " bytes kept as damage");
      seg_sizes[number] = size;
      return false;
    }
    if (scan.torn_tail_bytes > 0) {
      report.torn_tail_bytes += scan.torn_tail_bytes;
      report.problems.push_back(
          path + ": " + std::to_string(scan.torn_tail_bytes) + " bytes of torn tail after offset " +
          std::to_string(scan.valid_end) + (last ? " truncated" : " ignored"));
      if (last) size = scan.valid_end;
    }
    seg_sizes[number] = size;
    if (!last) return true;
    if (scan.corrupt_records > 0 || reader.crc_seed() == 0) return false;
    std::unique_ptr<SegmentFile> file;
    if (const int err = SegmentFile::open(*env, path, size, reader.crc_seed(), file); err != 0)
      throw_error(err, "cannot open " + path);
    if (scan.torn_tail_bytes > 0)
      if (const int err = file->cut_to(size); err != 0)
        throw_error(err, "cannot truncate the torn tail of " + path);
    active = std::move(file);
    active_number = number;
    return true;
  }

  // Creates segment `number`, makes it the active one. False (errno set) on failure.
  bool create_segment(std::uint32_t number, bool durable) {
    std::unique_ptr<SegmentFile> file;
    const int err = SegmentFile::create(*env, path_of(number), durable, file);
    if (err != 0) {
      errno = err;
      return false;
    }
    {
      std::lock_guard l(index_mutex);
      seg_seeds[number] = file->seed();
    }
    active = std::move(file);
    active_number = number;
    set_size(number, kSegmentHeaderSize);
    return true;
  }

  // ---- appends ----

  // Queues a record for the writer thread. `fill_update` writes the index
  // update into the queued record in place, under the queue's lock (so it
  // must be short): a record costs no DecodedRecord built and moved twice
  // on the caller's thread, which is the proxy's hot path.
  template <class FillUpdate>
  void enqueue(RecordType type, std::string body, Completion done, std::uint64_t order_key,
               FillUpdate&& fill_update) {
    const std::uint64_t size = kRecordHeaderSize + body.size();
    if (size > options.max_record_size) {
      if (done) done({AppendStatus::io_error, EFBIG});
      return;
    }
    const bool takes_space = type == RecordType::publish || type == RecordType::dead_letter;
    bool wake = false;
    {
      std::unique_lock l(queue_mutex);
      if (closing) {
        l.unlock();
        if (done) done({AppendStatus::closed, 0});
        return;
      }
      // Acks and tombstones always fit: they are what frees space. A later
      // publish of a refused key is refused too, however small: it must
      // not be stored before the one that did not fit.
      if ((order_key != 0 && refused_keys.contains(order_key)) ||
          (takes_space && options.max_size > 0 &&
           disk_bytes.load() + writing_bytes + queued_bytes + size > options.max_size)) {
        if (order_key != 0) refused_keys.insert(order_key);
        l.unlock();
        if (done) done({AppendStatus::full, 0});
        return;
      }
      wake = queue.empty();  // the writer only sleeps on an empty queue
      QueuedRecord& record = queue.emplace_back();
      record.type = type;
      record.body = std::move(body);
      record.done = std::move(done);
      record.order_key = order_key;
      try {
        fill_update(record.update);  // may allocate (a long group name)
      } catch (...) {
        queue.pop_back();  // nothing half-filled is written; the caller sees the exception
        throw;
      }
      queued_bytes += size;
    }
    if (wake) queue_cv.notify_one();
  }

  void enqueue(RecordType type, std::string body, DecodedRecord update, Completion done) {
    enqueue(type, std::move(body), std::move(done), 0,
            [&update](DecodedRecord& queued) { queued = std::move(update); });
  }

  // ---- the writer thread ----

  // Settling records that met a full disk, written again after compaction
  // frees space (or the disk gets space back). Writer thread only.
  std::vector<QueuedRecord> retry;
  static constexpr std::chrono::milliseconds kFullDiskRetry{50};

  void writer_loop() {
    std::vector<QueuedRecord> batch;  // swapped with `queue`: both keep their capacity
    for (;;) {
      batch.clear();
      {
        std::unique_lock l(queue_mutex);
        auto ready = [&] { return !queue.empty() || closing || syncs_wanted > syncs_done; };
        if (!retry.empty())
          queue_cv.wait_for(l, kFullDiskRetry, ready);
        else if (options.durability == Durability::interval && deadline.dirty())
          queue_cv.wait_until(l, deadline.next(options.sync_interval), ready);
        else
          queue_cv.wait(l, ready);
        if (queue.empty() && (retry.empty() || syncs_wanted > syncs_done)) {
          if (closing) break;
          const std::uint64_t wanted = syncs_wanted;
          l.unlock();
          sync_active();  // the interval passed, or sync() asked
          if (wanted > syncs_done) {
            std::lock_guard done(queue_mutex);
            syncs_done = wanted;
            wanted_sync_error = sync_error;
            idle_cv.notify_all();
          }
          continue;
        }
        if (closing && queue.empty()) {
          // Closing on a full disk: the settling records still waiting fail.
          l.unlock();
          for (auto& r : retry)
            if (r.done) r.done({AppendStatus::io_error, ENOSPC});
          retry.clear();
          break;
        }
        batch.swap(queue);
        writing_bytes = queued_bytes;
        queued_bytes = 0;
        in_flight = batch.size() + retry.size();
      }
      if (!retry.empty()) {
        batch.insert(batch.begin(), std::make_move_iterator(retry.begin()),
                     std::make_move_iterator(retry.end()));
        retry.clear();
      }
      write_batch(batch);
      {
        std::lock_guard l(queue_mutex);
        writing_bytes = 0;  // on disk now (disk_bytes), or not written at all
      }
      compact_now();
      {
        std::lock_guard l(queue_mutex);
        in_flight = retry.size();
      }
      idle_cv.notify_all();
    }
    if (deadline.dirty()) sync_active();
    active.reset();
  }

  void sync_active() {
    if (const int err = active->sync(); err == 0) {
      ++syncs;
      sync_error = 0;
      deadline.synced();
    } else {
      sync_error = err;  // what was confirmed since the last sync may be lost: say so from now on
    }
  }

  struct Touched {
    SegmentFile* file;
    std::uint32_t number;
    std::uint64_t size_before;
  };

  // Bytes of the batch being written are in disk_bytes now: not counted twice.
  void landed(std::uint64_t bytes) {
    std::lock_guard l(queue_mutex);
    writing_bytes -= std::min(bytes, writing_bytes);
  }

  void set_size(std::uint32_t number, std::uint64_t size) {
    std::lock_guard l(index_mutex);
    seg_sizes[number] = size;
    std::uint64_t total = 0;
    for (const auto& [n, s] : seg_sizes) total += s;
    disk_bytes = total;
  }

  // Writes `records` to the active segment (rolling as needed) and syncs as
  // the policy says, or always when `force_sync`. Returns 0, or the errno of
  // the first failure, in which case every touched segment is cut back to
  // its size before this call: nothing of a failed batch stays on disk.
  int write_records(const std::vector<std::pair<RecordType, std::string_view>>& records,
                    std::vector<Location>& where, bool force_sync) {
    if (sync_error != 0 && options.durability == Durability::interval) {
      sync_active();  // an earlier interval sync failed: confirm nothing until one succeeds
      if (sync_error != 0) return sync_error;
    }
    std::vector<std::unique_ptr<SegmentFile>> rolled_from;  // closed at the end
    std::vector<Touched> touched{{active.get(), active_number, active->size()}};
    std::string buffer;
    where.resize(records.size());
    int err = 0;
    auto flush_buffer = [&] {
      if (buffer.empty()) return 0;
      if (const int e = active->append(buffer); e != 0) return e;
      set_size(active_number, active->size());
      landed(buffer.size());
      buffer.clear();
      return 0;
    };
    const bool sync_on_roll = options.durability != Durability::never || force_sync;
    for (std::size_t i = 0; i < records.size(); ++i) {
      const std::uint64_t size = kRecordHeaderSize + records[i].second.size();
      if (active->size() + buffer.size() + size > options.segment_size &&
          active->size() + buffer.size() > kSegmentHeaderSize) {
        err = flush_buffer();
        if (err == 0 && sync_on_roll) err = active->sync();
        if (err == 0) {
          std::unique_ptr<SegmentFile> old = std::move(active);
          if (!create_segment(active_number + 1, sync_on_roll)) {
            err = errno;
            active = std::move(old);
          } else {
            rolled_from.push_back(std::move(old));
          }
        }
        if (err != 0) break;
        touched.push_back({active.get(), active_number, kSegmentHeaderSize});
      }
      where[i] = {active_number, static_cast<std::uint32_t>(active->size() + buffer.size()),
                  static_cast<std::uint32_t>(size)};
      append_record(buffer, active->seed(), records[i].first, records[i].second);
    }
    if (err == 0) err = flush_buffer();
    if (err == 0) {
      deadline.wrote();
      if (options.durability == Durability::always || force_sync) {
        err = active->sync();
        if (err == 0) {
          ++syncs;
          deadline.synced();
        } else if (options.durability == Durability::interval) {
          sync_error = err;  // what was confirmed since the last sync may be lost, as below
        }
      } else if (options.durability == Durability::interval &&
                 deadline.due(options.sync_interval)) {
        sync_active();
        err = sync_error;
      }
    }
    if (err != 0) {
      for (auto it = touched.rbegin(); it != touched.rend(); ++it) {
        (void)it->file->cut_to(it->size_before);
        set_size(it->number, it->size_before);
      }
    }
    return err;
  }

  // ---- the disk reserve ----
  // Acks are what free space, so they must be writable on a full disk. A
  // small reserve file is given up when settling records (or compaction)
  // hit ENOSPC, and taken again once compaction has freed space.
  static constexpr std::size_t kReserveSize = 64 * 1024;
  std::string reserve_path() const { return dir + "/RESERVE"; }

  bool reserve_present() const {
    std::unique_ptr<File> file;
    return env->open(reserve_path(), OpenMode::read_only, file) == 0;
  }

  bool take_reserve() {
    std::unique_ptr<File> file;
    if (env->open(reserve_path(), OpenMode::create, file) != 0) return false;
    const bool ok = file->allocate(kReserveSize) == 0;
    file.reset();
    if (!ok) (void)env->unlink(reserve_path());
    return ok;
  }

  bool release_reserve() { return env->unlink(reserve_path()) == 0; }

  static bool settles(RecordType type) {
    return type == RecordType::ack || type == RecordType::dead || type == RecordType::tombstone ||
           type == RecordType::attempt;
  }

  // Under interval, a failed delivery's ATTEMPT record is synced before it
  // completes: the message goes out again only after that, and a power
  // loss must not hand a worker a lower attempt number than one it saw.
  bool must_sync(const std::vector<QueuedRecord>& batch) const {
    return options.durability == Durability::interval &&
           std::any_of(batch.begin(), batch.end(),
                       [](const QueuedRecord& r) { return r.type == RecordType::attempt; });
  }

  void write_batch(std::vector<QueuedRecord>& batch) {
    std::vector<std::pair<RecordType, std::string_view>> records;
    records.reserve(batch.size());
    for (const auto& r : batch) records.emplace_back(r.type, r.body);
    std::vector<Location> where;
    int err = write_records(records, where, must_sync(batch));
    if (err == ENOSPC) {
      write_on_full_disk(batch);
      return;
    }
    records_written += err == 0 ? batch.size() : 0;
    if (err == 0) {
      std::lock_guard l(index_mutex);
      for (std::size_t i = 0; i < batch.size(); ++i) index.apply(batch[i].update, where[i]);
    }
    for (auto& r : batch)
      if (r.done) r.done(err == 0 ? AppendResult{} : AppendResult{AppendStatus::io_error, err});
  }

  // The ordering keys of `refused` publishes refuse their later publishes
  // from now on, and those already queued behind them are taken out of the
  // queue and refused with them (appended to `refused`, in queue order).
  void refuse_keys_of(std::vector<QueuedRecord>& refused) {
    std::lock_guard l(queue_mutex);
    const std::size_t first_queued = refused.size();
    for (std::size_t i = 0; i < first_queued; ++i)
      if (refused[i].order_key != 0) refused_keys.insert(refused[i].order_key);
    if (refused_keys.empty()) return;
    auto behind = std::stable_partition(queue.begin(), queue.end(), [&](const QueuedRecord& r) {
      return r.order_key == 0 || !refused_keys.contains(r.order_key);
    });
    for (auto it = behind; it != queue.end(); ++it) {
      queued_bytes -= kRecordHeaderSize + it->body.size();
      refused.push_back(std::move(*it));
    }
    queue.erase(behind, queue.end());
  }

  // The disk is full: publishes fail with `full` (backpressure, the client
  // retries later); settling records, which are what frees space, are
  // written alone, with the reserve's space if need be, and otherwise kept
  // and written again until they land.
  void write_on_full_disk(std::vector<QueuedRecord>& batch) {
    std::vector<QueuedRecord> settling, refused;
    for (auto& r : batch) (settles(r.type) ? settling : refused).push_back(std::move(r));
    refuse_keys_of(refused);
    for (auto& r : refused)
      if (r.done) r.done({AppendStatus::full, ENOSPC});
    if (settling.empty()) return;
    std::vector<std::pair<RecordType, std::string_view>> records;
    for (const auto& r : settling) records.emplace_back(r.type, r.body);
    std::vector<Location> where;
    const bool sync = must_sync(settling);
    int err = write_records(records, where, sync);
    if (err == ENOSPC && release_reserve()) err = write_records(records, where, sync);
    if (err == ENOSPC) {
      retry = std::move(settling);
      return;
    }
    records_written += err == 0 ? settling.size() : 0;
    if (err == 0) {
      std::lock_guard l(index_mutex);
      for (std::size_t i = 0; i < settling.size(); ++i) index.apply(settling[i].update, where[i]);
    }
    for (auto& r : settling)
      if (r.done) r.done(err == 0 ? AppendResult{} : AppendResult{AppendStatus::io_error, err});
  }

  // ---- compaction (writer thread) ----

  // A segment can go when none of its settling records names a message whose
  // PUBLISH is still on disk in an older segment (deleting it would bring
  // that message back on recovery).
  bool settles_nothing_older(std::uint32_t number) const {
    auto u = index.usage.find(number);
    if (u == index.usage.end()) return true;
    for (const auto& [older, count] : u->second.settles)
      if (count > 0 && older < number && seg_sizes.contains(older)) return false;
    return true;
  }

  bool remove_segment(std::uint32_t number) {
    if (env->unlink(path_of(number)) != 0) return false;
    (void)env->sync_dir(dir);  // the delete is durable before anything relies on it
    std::lock_guard l(index_mutex);
    seg_sizes.erase(number);
    seg_seeds.erase(number);
    unreadable.erase(number);
    rewrite_failed_at.erase(number);
    index.usage.erase(number);
    std::uint64_t total = 0;
    for (const auto& [n, s] : seg_sizes) total += s;
    disk_bytes = total;
    return true;
  }

  void compact_now() {
    bool removed_any = false;
    // Copies made here go to segments from this number on: they are not
    // copied again in the same pass, whatever the accounting says.
    std::uint32_t first_new = 0;
    {
      std::lock_guard l(index_mutex);
      first_new = active_number;
    }
    bool copied_mostly_live = false;
    for (;;) {
      std::uint32_t oldest = 0;
      std::uint64_t size = 0;
      SegmentUsage usage;
      bool mostly_garbage = false;
      {
        std::lock_guard l(index_mutex);
        if (seg_sizes.size() < 2) break;
        // Settled bytes pinned behind a mostly live oldest segment (newer
        // segments settle its messages, so they cannot go first) are
        // reclaimed by copying it too, once they are most of the disk.
        std::uint64_t live = 0, disk = 0;
        for (const auto& [number, bytes] : seg_sizes) {
          // Kept whatever happens: damaged, or holding a live message that
          // did not read back.
          if (damaged.contains(number) || unreadable.contains(number)) continue;
          disk += bytes;
          if (const auto u = index.usage.find(number); u != index.usage.end())
            live += u->second.live_bytes + u->second.history_bytes;
        }
        mostly_garbage = disk > 2 * live + 2 * options.segment_size;
        oldest = seg_sizes.begin()->first;
        size = seg_sizes.begin()->second;
        if (oldest >= first_new || oldest == active_number || damaged.contains(oldest)) break;
        // A live message of it did not read back lately: the whole segment
        // is not read again after every batch, only once the back-off passed.
        if (const auto failed = rewrite_failed_at.find(oldest);
            failed != rewrite_failed_at.end() &&
            std::chrono::steady_clock::now() - failed->second < kRewriteBackoff)
          break;
        usage = index.usage[oldest];
      }
      // The oldest segment settles nothing older. A mostly live one stays
      // (unless settled bytes are most of the disk); a mostly settled one has
      // its live messages copied forward first.
      // Their histories go with them: a segment of copies whose ATTEMPT
      // records outweigh their messages is live, not to be copied again.
      // One such copy per pass: the settled segments it frees go below, and
      // the writer returns to its queue instead of copying a whole backlog.
      const bool mostly_live = (usage.live_bytes + usage.history_bytes) * 2 > size;
      if (usage.live_messages > 0 && mostly_live && (!mostly_garbage || copied_mostly_live)) break;
      if (usage.live_messages > 0 && !rewrite_live(oldest)) {
        rewrite_failed_at[oldest] = std::chrono::steady_clock::now();
        break;
      }
      copied_mostly_live = copied_mostly_live || (usage.live_messages > 0 && mostly_live);
      rewrite_failed_at.erase(oldest);
      if (!remove_segment(oldest)) break;
      removed_any = true;
    }
    // Newer segments whose messages are all settled go too, unless one of
    // their settling records still names a message in an older segment.
    std::vector<std::uint32_t> done;
    {
      std::lock_guard l(index_mutex);
      for (const auto& [number, size] : seg_sizes) {
        if (number == active_number || number == seg_sizes.begin()->first ||
            damaged.contains(number))
          continue;
        auto u = index.usage.find(number);
        if (u != index.usage.end() && u->second.live_messages > 0) continue;
        if (settles_nothing_older(number)) done.push_back(number);
      }
    }
    for (const auto number : done) removed_any |= remove_segment(number);
    if (removed_any && !reserve_present()) take_reserve();
  }

  // Copies the live messages of segment `number` to the active segment, with
  // the groups they are still pending for, and syncs them before returning.
  // False (the segment must stay) when any live message was not copied.
  bool rewrite_live(std::uint32_t number) {
    std::vector<std::pair<MessageId, IndexEntry>> live;
    {
      std::lock_guard l(index_mutex);
      for (const auto& [id, e] : index.entries)
        if (e.where.segment == number) live.emplace_back(id, e);
    }
    std::optional<SegmentReader> reader;
    try {
      reader.emplace(path_of(number), options.max_record_size, *env);
    } catch (const Error&) {
      return false;  // unreadable for now (EIO): the segment stays, compaction tries again later
    }
    std::vector<std::string> bodies;
    std::vector<std::pair<RecordType, std::string_view>> records;
    std::vector<DecodedRecord> updates;
    std::map<std::uint64_t, std::size_t> wanted;  // offset -> index in live
    for (std::size_t i = 0; i < live.size(); ++i) wanted[live[i].second.where.offset] = i;
    std::vector<std::string> groups_now;
    std::size_t accounted = 0;  // copied, or settled meanwhile
    (void)reader->scan([&](const RecordView& r) {
      if (!wanted.contains(r.offset)) return;
      auto decoded = decode_record(r.type, r.body);
      if (!decoded) return;
      // The failure history travels with the copy (its old ATTEMPT records
      // may be in the segment about to go); read with the groups, in one lock.
      std::vector<std::pair<std::string, Failures>> history;
      {
        std::lock_guard l(index_mutex);
        auto it = index.entries.find(SpoolIndex::key_of(*decoded));
        if (it == index.entries.end() || it->second.where.segment != number) {
          ++accounted;  // settled (or moved) meanwhile
          return;
        }
        groups_now = index.groups_of(it->second.groups);
        if (auto f = index.failures.find(decoded->id); f != index.failures.end())
          for (const auto& h : f->second)
            history.emplace_back(index.group_names[static_cast<std::size_t>(h.group_bit)], h);
      }
      ++accounted;
      if (r.type == RecordType::publish) {
        bodies.push_back(encode_publish(decoded->seq, decoded->id, groups_now, decoded->frame));
      } else {
        bodies.push_back(std::string(r.body));  // a dead letter has one group: copy as is
      }
      DecodedRecord update = *decoded;
      update.frame = {};
      update.groups = groups_now;
      updates.push_back(std::move(update));
      records.emplace_back(r.type, std::string_view());
      for (const auto& [group, h] : history) {
        bodies.push_back(
            encode_attempt(decoded->id, group, h.attempts, h.first_failure_ms, h.last_error));
        updates.push_back(DecodedRecord{RecordType::attempt,
                                        decoded->id,
                                        0,
                                        {group},
                                        {},
                                        {},
                                        h.last_error,
                                        h.attempts,
                                        h.first_failure_ms,
                                        0});
        records.emplace_back(RecordType::attempt, std::string_view());
      }
    });
    if (accounted != live.size()) {
      // A live message could not be read back: the segment stays, so nothing
      // is lost, and stats() says so.
      std::lock_guard l(index_mutex);
      unreadable[number] = live.size() - accounted;
      return false;
    }
    for (std::size_t i = 0; i < records.size(); ++i) records[i].second = bodies[i];
    // Under fsync never the active segment may have been created without a
    // directory sync: its entry must be durable before an original goes
    // (and a roll inside the forced write below syncs the new one's).
    if (env->sync_dir(dir) != 0) return false;
    std::vector<Location> where;
    int err = write_records(records, where, /*force_sync=*/true);
    if (err == ENOSPC && release_reserve()) err = write_records(records, where, true);
    if (err != 0) return false;
    std::lock_guard l(index_mutex);
    for (std::size_t i = 0; i < updates.size(); ++i) index.apply(updates[i], where[i]);
    return true;
  }

  // ---- reads ----

  // The record of the entry `key` (an id, or a dead letter's key), which
  // must be about `id` when one is given (a compaction may have moved
  // another record there meanwhile).
  std::optional<StoredMessage> read(const MessageId& key,
                                    std::optional<MessageId> id = std::nullopt) const {
    // Compaction may move the record between the lookup and the read: the
    // moved copy is found by looking again.
    for (int attempt = 0; attempt < 3; ++attempt)
      if (auto found = read_once(key, id); found || !index_has(key)) return found;
    return std::nullopt;
  }

  bool index_has(const MessageId& key) const {
    std::lock_guard l(index_mutex);
    return index.entries.contains(key);
  }

  // Dead letters of `id`, whatever their group.
  std::vector<std::pair<MessageId, std::string>> dead_letter_keys(const MessageId& id) const {
    std::vector<std::pair<MessageId, std::string>> found;
    std::lock_guard l(index_mutex);
    for (const auto& group : index.group_names)
      if (!group.empty())
        if (const auto key = dead_letter_key(id, group); index.entries.contains(key))
          found.emplace_back(key, group);
    return found;
  }

  std::optional<StoredMessage> read_once(const MessageId& key,
                                         const std::optional<MessageId>& id) const {
    Location where;
    std::vector<std::string> groups;
    std::uint32_t seed = 0;
    {
      std::lock_guard l(index_mutex);
      auto it = index.entries.find(key);
      if (it == index.entries.end()) return std::nullopt;
      where = it->second.where;
      groups = index.groups_of(it->second.groups);
      if (auto s = seg_seeds.find(where.segment); s != seg_seeds.end()) seed = s->second;
    }
    std::unique_ptr<File> file;
    if (env->open(path_of(where.segment), OpenMode::read_only, file) != 0) return std::nullopt;
    std::string data(where.size, '\0');
    if (read_exact(*file, where.offset, data.data(), data.size()) != 0 ||
        !record_checks_out(data, seed))
      return std::nullopt;  // damaged since it was written: never an empty or wrong frame
    const auto type = static_cast<RecordType>(data[8]);
    auto decoded = decode_record(type, std::string_view(data).substr(kRecordHeaderSize));
    if (!decoded || (id && decoded->id != *id)) return std::nullopt;
    StoredMessage m{decoded->id, decoded->seq, groups, std::string(decoded->frame), std::nullopt};
    if (type == RecordType::dead_letter)
      m.dead_letter =
          DeadLetterInfo{decoded->groups.front(),   decoded->reason,          decoded->attempts,
                         decoded->first_failure_ms, decoded->last_failure_ms, decoded->last_error};
    return m;
  }
};

Spool::Spool(const std::string& dir, const SpoolOptions& options)
    : impl_(std::make_unique<Impl>()) {
  impl_->dir = dir;
  impl_->options = options;
  impl_->index.recent_capacity = options.recall_recent_ids;
  if (options.env != nullptr) impl_->env = options.env;
  impl_->open();
  impl_->writer = std::thread([impl = impl_.get()] {
    ::pthread_setname_np(::pthread_self(), "mqkit-spool");  // for top -H and perf
    impl->writer_loop();
  });
}

Spool::~Spool() {
  {
    std::lock_guard l(impl_->queue_mutex);
    impl_->closing = true;
  }
  impl_->queue_cv.notify_all();
  if (impl_->writer.joinable()) impl_->writer.join();
}

void Spool::publish(const MessageId& id, const std::vector<std::string>& groups,
                    std::string_view frame, Completion done, std::uint64_t order_key) {
  const std::uint64_t group_mask = impl_->mask_of(groups);
  if (group_mask == 0 && !groups.empty())
    throw Error(errc::bad_argument, "a spool holds at most 64 groups at once");
  const std::uint64_t seq = impl_->next_seq++;
  impl_->enqueue(RecordType::publish, encode_publish(seq, id, groups, frame), std::move(done),
                 order_key, [&](DecodedRecord& update) {
                   update.type = RecordType::publish;
                   update.id = id;
                   update.seq = seq;
                   update.group_mask = group_mask;
                 });
}

void Spool::release_order_key(std::uint64_t key) {
  std::lock_guard l(impl_->queue_mutex);
  impl_->refused_keys.erase(key);
}

void Spool::ack(const MessageId& id, const std::string& group, Completion done) {
  impl_->enqueue(RecordType::ack, encode_ack(id, group), std::move(done), 0,
                 [&](DecodedRecord& update) {
                   update.type = RecordType::ack;
                   update.id = id;
                   update.group = group;
                 });
}

void Spool::dead(const MessageId& id, const std::string& group, std::string_view reason,
                 std::uint32_t attempts, std::string_view last_error, Completion done) {
  DecodedRecord update{RecordType::dead, id, 0, {group}, {}, {}, {}, 0, 0, 0};
  impl_->enqueue(RecordType::dead, encode_dead(id, group, reason, attempts, last_error),
                 std::move(update), std::move(done));
}

void Spool::record_attempt(const MessageId& id, const std::string& group, const DeliveryHistory& h,
                           Completion done) {
  DecodedRecord update{RecordType::attempt, id, 0, {group}, {}, {}, h.last_error, h.attempts,
                       h.first_failure_ms,  0};
  impl_->enqueue(RecordType::attempt,
                 encode_attempt(id, group, h.attempts, h.first_failure_ms, h.last_error),
                 std::move(update), std::move(done));
}

std::optional<DeliveryHistory> Spool::history(const MessageId& id, const std::string& group) const {
  std::lock_guard l(impl_->index_mutex);
  const int bit = impl_->index.find_group(group);
  if (bit < 0) return std::nullopt;
  const auto* f = impl_->index.failures_of(id, bit);
  if (f == nullptr) return std::nullopt;
  return DeliveryHistory{f->attempts, f->first_failure_ms, f->last_error};
}

void Spool::add_dead_letter(const MessageId& id, std::string_view frame, const DeadLetterInfo& info,
                            Completion done) {
  const std::uint64_t seq = impl_->next_seq++;
  DecodedRecord update{RecordType::dead_letter, id, seq, {info.group}, {}, {}, {}, 0, 0, 0};
  impl_->enqueue(RecordType::dead_letter, encode_dead_letter(seq, id, frame, info),
                 std::move(update), std::move(done));
}

void Spool::remove_dead_letter(const MessageId& id, const std::string& group, Completion done) {
  DecodedRecord update{RecordType::tombstone, id, 0, {group}, {}, {}, {}, 0, 0, 0};
  impl_->enqueue(RecordType::tombstone, encode_ack(id, group), std::move(update), std::move(done));
}

void Spool::remove_dead_letter(const MessageId& id, Completion done) {
  const auto found = impl_->dead_letter_keys(id);
  if (found.empty()) {  // nothing to remove: still one completion
    remove_dead_letter(id, std::string(), std::move(done));
    return;
  }
  for (std::size_t i = 0; i < found.size(); ++i)
    remove_dead_letter(id, found[i].second, i + 1 == found.size() ? std::move(done) : nullptr);
}

std::optional<StoredMessage> Spool::read_dead_letter(const MessageId& id,
                                                     const std::string& group) const {
  auto m = impl_->read(dead_letter_key(id, group), id);
  if (m && !m->dead_letter) return std::nullopt;
  return m;
}

AppendResult Spool::publish_sync(const MessageId& id, const std::vector<std::string>& groups,
                                 std::string_view frame) {
  std::promise<AppendResult> result;
  publish(id, groups, frame, [&result](AppendResult r) { result.set_value(r); });
  return result.get_future().get();
}

AppendResult Spool::ack_sync(const MessageId& id, const std::string& group) {
  std::promise<AppendResult> result;
  ack(id, group, [&result](AppendResult r) { result.set_value(r); });
  return result.get_future().get();
}

std::vector<MessageId> Spool::pending(const std::string& group) const {
  std::lock_guard l(impl_->index_mutex);
  return impl_->index.pending(group);
}

bool Spool::holds(const MessageId& id) const {
  return impl_->index_has(id);
}

std::optional<StoredMessage> Spool::read(const MessageId& id) const {
  if (auto m = impl_->read(id, id)) return m;
  for (const auto& [key, group] : impl_->dead_letter_keys(id))  // a dead-letter spool
    if (auto m = impl_->read(key, id)) return m;
  return std::nullopt;
}

std::vector<StoredMessage> Spool::dead_letters() const {
  std::vector<std::pair<std::uint64_t, MessageId>> ids;
  {
    std::lock_guard l(impl_->index_mutex);
    for (const auto& [id, e] : impl_->index.entries) ids.emplace_back(e.seq, id);
  }
  std::sort(ids.begin(), ids.end());
  std::vector<StoredMessage> out;
  for (const auto& [seq, id] : ids)
    if (auto m = impl_->read(id, std::nullopt); m && m->dead_letter) out.push_back(std::move(*m));
  return out;
}

std::vector<std::string> Spool::groups() const {
  std::lock_guard l(impl_->index_mutex);
  std::vector<std::string> names;
  for (const auto& name : impl_->index.group_names)
    if (!name.empty()) names.push_back(name);  // an empty name is a released place
  return names;
}

std::unordered_map<MessageId, std::uint64_t> Spool::take_schedule() {
  std::lock_guard l(impl_->index_mutex);
  auto schedule = std::move(impl_->schedule);
  impl_->schedule = {};
  impl_->codec.reset();
  std::erase_if(schedule, [&](const auto& entry) {
    auto it = impl_->index.entries.find(entry.first);
    return it == impl_->index.entries.end() || it->second.groups == 0;
  });
  return schedule;
}

std::vector<MessageId> Spool::take_recent_ids() {
  std::lock_guard l(impl_->index_mutex);
  std::vector<MessageId> ids(impl_->index.recent.begin(), impl_->index.recent.end());
  impl_->index.recent_capacity = 0;  // only recovery's ids are asked for
  impl_->index.recent = {};
  return ids;
}

void Spool::forget_group(const std::string& group) {
  // A PUBLISH naming the group may still be queued: written after the
  // release, it would keep the group's bit (and the next group's name).
  flush();
  std::lock_guard b(impl_->bits_mutex);  // the same order as mask_of
  impl_->bits.erase(group);
  std::lock_guard l(impl_->index_mutex);
  impl_->index.release_group(group);
}

void Spool::flush() {
  std::unique_lock l(impl_->queue_mutex);
  impl_->idle_cv.wait(l, [&] { return impl_->queue.empty() && impl_->in_flight == 0; });
}

int Spool::sync() {
  if (impl_->options.durability == Durability::always) return 0;  // confirmed means synced
  flush();
  std::unique_lock l(impl_->queue_mutex);
  const std::uint64_t ticket = ++impl_->syncs_wanted;
  impl_->queue_cv.notify_one();
  impl_->idle_cv.wait(l, [&] { return impl_->syncs_done >= ticket || impl_->closing; });
  return impl_->syncs_done >= ticket ? impl_->wanted_sync_error : ECANCELED;
}

SpoolStats Spool::stats() const {
  SpoolStats s;
  std::lock_guard l(impl_->index_mutex);
  for (const auto& [n, size] : impl_->seg_sizes) s.bytes += size;
  s.segments = impl_->seg_sizes.size();
  s.messages = impl_->index.entries.size();
  s.pending = impl_->index.pending_counts();
  s.syncs = impl_->syncs;
  s.records_written = impl_->records_written;
  for (const auto& [n, count] : impl_->unreadable) s.unreadable += count;
  return s;
}

void Spool::set_admin_endpoint(const std::string& endpoint) {
  impl_->lock->set_admin_endpoint(endpoint);
}

std::optional<SpoolOwner> spool_owner(const std::string& dir) {
  auto owner = lock_owner(dir);
  if (!owner) return std::nullopt;
  return SpoolOwner{static_cast<int>(owner->pid), owner->admin};
}

std::uint64_t Spool::bytes() const noexcept {
  return impl_->disk_bytes.load();
}

const RecoveryReport& Spool::recovery() const noexcept {
  return impl_->report;
}
const std::string& Spool::dir() const noexcept {
  return impl_->dir;
}

}  // namespace mqkit
