// Spool: the writer thread (group commit, segment rolling, write-error
// rollback), recovery on open, compaction, and reads.
#include "mqkit/spool.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <future>
#include <mutex>
#include <thread>

#include "mqkit/duration.hpp"
#include "mqkit/error.hpp"
#include "spool/crc32c.hpp"
#include "spool/lock_file.hpp"
#include "spool/records.hpp"
#include "spool/segment_reader.hpp"
#include "spool/spool_index.hpp"

namespace mqkit {
namespace fs = std::filesystem;
using namespace detail::spool;

namespace detail::spool {

std::string segment_name(std::uint32_t number) {
  char name[32];
  std::snprintf(name, sizeof name, "%08u%s", number, kSegmentSuffix);
  return name;
}

// Segment numbers present in `dir`, ascending.
std::vector<std::uint32_t> list_segments(const std::string& dir) {
  std::vector<std::uint32_t> numbers;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() != 12 || !name.ends_with(kSegmentSuffix)) continue;
    const std::string digits = name.substr(0, 8);
    if (digits.find_first_not_of("0123456789") != std::string::npos) continue;
    numbers.push_back(static_cast<std::uint32_t>(std::stoul(digits)));
  }
  if (ec) throw Error(ec, "cannot list spool directory " + dir + ": " + ec.message());
  std::sort(numbers.begin(), numbers.end());
  return numbers;
}

}  // namespace detail::spool

namespace {

[[noreturn]] void throw_errno(const std::string& what) {
  const int err = errno;
  throw Error(std::error_code(err, std::system_category()), what + ": " + std::strerror(err));
}

bool pwrite_all(int fd, std::string_view data, std::uint64_t offset) {
  while (!data.empty()) {
    const ssize_t n = ::pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = EIO;
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
    offset += static_cast<std::uint64_t>(n);
  }
  return true;
}

bool sync_directory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

struct QueuedRecord {
  RecordType type;
  std::string body;
  DecodedRecord update;  // applied to the index once durable (frame left empty)
  Completion done;
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
  std::optional<LockFile> lock;
  RecoveryReport report;

  mutable std::mutex index_mutex;
  SpoolIndex index;                                  // guarded by index_mutex
  std::map<std::uint32_t, std::uint64_t> seg_sizes;  // guarded by index_mutex

  std::mutex queue_mutex;
  std::condition_variable queue_cv, idle_cv;
  std::vector<QueuedRecord> queue;  // guarded by queue_mutex
  std::uint64_t queued_bytes = 0;   // guarded by queue_mutex
  std::size_t in_flight = 0;        // guarded by queue_mutex
  bool closing = false;             // guarded by queue_mutex
  std::atomic<std::uint64_t> next_seq{1};
  std::atomic<std::uint64_t> disk_bytes{0}, syncs{0}, records_written{0};

  // Owned by the writer thread after open.
  int active_fd = -1;
  std::uint32_t active_number = 0;
  std::uint64_t active_size = 0;
  bool dirty = false;
  std::chrono::steady_clock::time_point last_sync = std::chrono::steady_clock::now();
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
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) throw Error(ec, "cannot create spool directory " + dir + ": " + ec.message());
    lock.emplace(dir);
    if (!fs::exists(reserve_path())) take_reserve();  // best effort: a full disk may refuse it
    const auto numbers = list_segments(dir);
    for (std::size_t i = 0; i < numbers.size(); ++i) {
      const bool last = i + 1 == numbers.size();
      recover_segment(numbers[i], last);
    }
    if (numbers.empty()) {
      create_segment(1);
    } else {
      active_number = numbers.back();
      active_fd = ::open(path_of(active_number).c_str(), O_WRONLY | O_CLOEXEC);
      if (active_fd < 0) throw_errno("cannot open " + path_of(active_number));
      active_size = seg_sizes[active_number];
    }
    next_seq = index.next_seq;
    std::uint64_t total = 0;
    for (const auto& [n, size] : seg_sizes) total += size;
    disk_bytes = total;
  }

  void recover_segment(std::uint32_t number, bool last) {
    const std::string path = path_of(number);
    SegmentReader reader(path, options.max_record_size);
    const ScanReport scan = reader.scan([&](const RecordView& r) {
      auto decoded = decode_record(r.type, r.body);
      if (!decoded) {
        ++report.corrupt_records;
        report.problems.push_back(path + ": record at offset " + std::to_string(r.offset) +
                                  " has a valid CRC but an unreadable body; skipped");
        return;
      }
      index.apply(*decoded, {number, static_cast<std::uint32_t>(r.offset), r.size});
    });
    ++report.segments;
    report.records += scan.records;
    report.corrupt_records += scan.corrupt_records;
    report.corrupt_bytes += scan.corrupt_bytes;
    report.problems.insert(report.problems.end(), scan.problems.begin(), scan.problems.end());
    std::uint64_t size = reader.file_size();
    if (!reader.header_ok() && !last) {
      // A whole segment in the middle is unreadable: corruption, not a tail.
      // It is left on disk for inspection and kept out of compaction (it
      // holds nothing readable that an ack elsewhere could refer to).
      ++report.corrupt_records;
      report.corrupt_bytes += size;
      return;
    } else if (scan.torn_tail_bytes > 0 || !reader.header_ok()) {
      // A last segment without a complete header (a crash right after it was
      // created) is repaired too: appends must never start at offset 0.
      report.torn_tail_bytes += scan.torn_tail_bytes;
      report.problems.push_back(
          path + ": " + std::to_string(scan.torn_tail_bytes) + " bytes of torn tail after offset " +
          std::to_string(scan.valid_end) + (last ? " truncated" : " ignored"));
      if (last) {
        size = std::max<std::uint64_t>(scan.valid_end, kSegmentHeaderSize);
        repair_tail(path, scan.valid_end);
      }
    }
    seg_sizes[number] = size;
  }

  // Cuts a torn tail; rewrites a header that never got written completely.
  void repair_tail(const std::string& path, std::uint64_t valid_end) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) throw_errno("cannot repair " + path);
    bool ok = true;
    if (valid_end < kSegmentHeaderSize) {
      char header[kSegmentHeaderSize];
      write_segment_header(header);
      ok = ::ftruncate(fd, 0) == 0 && pwrite_all(fd, {header, sizeof header}, 0);
    } else {
      ok = ::ftruncate(fd, static_cast<off_t>(valid_end)) == 0;
    }
    ok = ok && ::fdatasync(fd) == 0;
    ::close(fd);
    if (!ok) throw_errno("cannot truncate the torn tail of " + path);
  }

  // Creates segment `number`, makes it the active one. False (errno set) on failure.
  bool create_segment(std::uint32_t number) {
    const std::string path = path_of(number);
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return false;
    char header[kSegmentHeaderSize];
    write_segment_header(header);
    if (!pwrite_all(fd, {header, sizeof header}, 0) ||
        (options.durability == Durability::always &&
         (::fdatasync(fd) != 0 || !sync_directory(dir)))) {
      const int err = errno;
      ::close(fd);
      ::unlink(path.c_str());
      errno = err;
      return false;
    }
    active_fd = fd;
    active_number = number;
    active_size = kSegmentHeaderSize;
    set_size(number, kSegmentHeaderSize);
    return true;
  }

  // ---- appends ----

  void enqueue(RecordType type, std::string body, DecodedRecord update, Completion done) {
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
      // Acks and tombstones always fit: they are what frees space.
      if (takes_space && options.max_size > 0 &&
          disk_bytes.load() + queued_bytes + size > options.max_size) {
        l.unlock();
        if (done) done({AppendStatus::full, 0});
        return;
      }
      wake = queue.empty();  // the writer only sleeps on an empty queue
      queue.push_back({type, std::move(body), std::move(update), std::move(done)});
      queued_bytes += size;
    }
    if (wake) queue_cv.notify_one();
  }

  // ---- the writer thread ----

  void writer_loop() {
    std::vector<QueuedRecord> batch;  // swapped with `queue`: both keep their capacity
    for (;;) {
      batch.clear();
      {
        std::unique_lock l(queue_mutex);
        auto ready = [&] { return !queue.empty() || closing; };
        if (options.durability == Durability::interval && dirty)
          queue_cv.wait_until(l, last_sync + options.sync_interval, ready);
        else
          queue_cv.wait(l, ready);
        if (queue.empty()) {
          if (closing) break;
          l.unlock();
          sync_active();  // the interval passed
          continue;
        }
        batch.swap(queue);
        queued_bytes = 0;
        in_flight = batch.size();
      }
      write_batch(batch);
      compact_now();
      {
        std::lock_guard l(queue_mutex);
        in_flight = 0;
      }
      idle_cv.notify_all();
    }
    if (dirty) sync_active();
    if (active_fd >= 0) ::close(active_fd);
    active_fd = -1;
  }

  void sync_active() {
    if (::fdatasync(active_fd) == 0) {
      ++syncs;
      dirty = false;
    }
    last_sync = std::chrono::steady_clock::now();
  }

  struct Touched {
    int fd;
    std::uint32_t number;
    std::uint64_t size_before;
  };

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
    std::vector<Touched> touched{{active_fd, active_number, active_size}};
    std::string buffer;
    where.resize(records.size());
    int err = 0;
    auto flush_buffer = [&] {
      if (buffer.empty()) return true;
      if (!pwrite_all(active_fd, buffer, active_size)) return false;
      active_size += buffer.size();
      buffer.clear();
      set_size(active_number, active_size);
      return true;
    };
    for (std::size_t i = 0; i < records.size(); ++i) {
      const std::uint64_t size = kRecordHeaderSize + records[i].second.size();
      if (active_size + buffer.size() + size > options.segment_size &&
          active_size + buffer.size() > kSegmentHeaderSize) {
        const bool rolled =
            flush_buffer() &&
            (options.durability == Durability::never || ::fdatasync(active_fd) == 0) &&
            create_segment(active_number + 1);
        if (!rolled) {
          err = errno;
          break;
        }
        touched.push_back({active_fd, active_number, kSegmentHeaderSize});
      }
      where[i] = {active_number, static_cast<std::uint32_t>(active_size + buffer.size()),
                  static_cast<std::uint32_t>(size)};
      append_record(buffer, records[i].first, records[i].second);
    }
    if (err == 0 && !flush_buffer()) err = errno;
    if (err == 0) {
      dirty = true;
      if (options.durability == Durability::always || force_sync) {
        if (::fdatasync(active_fd) != 0) {
          err = errno;
        } else {
          ++syncs;
          dirty = false;
          last_sync = std::chrono::steady_clock::now();
        }
      } else if (options.durability == Durability::interval &&
                 std::chrono::steady_clock::now() - last_sync >= options.sync_interval) {
        sync_active();
      }
    }
    if (err != 0) {
      for (auto it = touched.rbegin(); it != touched.rend(); ++it) {
        [[maybe_unused]] int rc = ::ftruncate(it->fd, static_cast<off_t>(it->size_before));
        rc = ::fdatasync(it->fd);
        set_size(it->number, it->size_before);
      }
      active_size = touched.back().size_before;
    }
    for (const auto& t : touched)
      if (t.fd != active_fd) ::close(t.fd);  // segments rolled away from
    return err;
  }

  // ---- the disk reserve ----
  // Acks are what free space, so they must be writable on a full disk. A
  // small reserve file is given up when a batch holding acks hits ENOSPC,
  // and taken again once compaction has freed space.
  static constexpr std::size_t kReserveSize = 64 * 1024;
  std::string reserve_path() const { return dir + "/RESERVE"; }

  bool take_reserve() {
    const int fd = ::open(reserve_path().c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return false;
    const bool ok = ::posix_fallocate(fd, 0, kReserveSize) == 0;
    ::close(fd);
    if (!ok) ::unlink(reserve_path().c_str());
    return ok;
  }

  bool release_reserve() { return ::unlink(reserve_path().c_str()) == 0; }

  void write_batch(std::vector<QueuedRecord>& batch) {
    std::vector<std::pair<RecordType, std::string_view>> records;
    records.reserve(batch.size());
    bool settles = false;
    for (const auto& r : batch) {
      records.emplace_back(r.type, r.body);
      settles |= r.type == RecordType::ack || r.type == RecordType::dead ||
                 r.type == RecordType::tombstone;
    }
    std::vector<Location> where;
    int err = write_records(records, where, false);
    if (err == ENOSPC && settles && release_reserve()) err = write_records(records, where, false);
    records_written += err == 0 ? batch.size() : 0;
    if (err == 0) {
      std::lock_guard l(index_mutex);
      for (std::size_t i = 0; i < batch.size(); ++i) index.apply(batch[i].update, where[i]);
    }
    for (auto& r : batch)
      if (r.done) r.done(err == 0 ? AppendResult{} : AppendResult{AppendStatus::io_error, err});
  }

  // ---- compaction (writer thread) ----

  void compact_now() {
    for (;;) {
      std::uint32_t oldest = 0;
      std::uint64_t size = 0;
      SegmentUsage usage;
      {
        std::lock_guard l(index_mutex);
        if (seg_sizes.size() < 2) return;
        oldest = seg_sizes.begin()->first;
        size = seg_sizes.begin()->second;
        if (oldest == active_number) return;
        usage = index.usage[oldest];
      }
      // Only the oldest segment is ever removed, so an ack is never lost
      // while the message it settles still exists in an older segment. A
      // mostly live segment stays; a mostly settled one has its live
      // messages copied forward first.
      if (usage.live_messages > 0 && usage.live_bytes * 2 > size) return;
      if (usage.live_messages > 0 && !rewrite_live(oldest)) return;
      if (::unlink(path_of(oldest).c_str()) != 0) return;
      {
        std::lock_guard l(index_mutex);
        seg_sizes.erase(oldest);
        index.usage.erase(oldest);
        std::uint64_t total = 0;
        for (const auto& [n, s] : seg_sizes) total += s;
        disk_bytes = total;
      }
      if (!fs::exists(reserve_path())) take_reserve();
    }
  }

  // Copies the live messages of segment `number` to the active segment, with
  // the groups they are still pending for, and syncs them before returning.
  bool rewrite_live(std::uint32_t number) {
    std::vector<std::pair<MessageId, IndexEntry>> live;
    {
      std::lock_guard l(index_mutex);
      for (const auto& [id, e] : index.entries)
        if (e.where.segment == number) live.emplace_back(id, e);
    }
    SegmentReader reader(path_of(number), options.max_record_size);
    std::vector<std::string> bodies;
    std::vector<std::pair<RecordType, std::string_view>> records;
    std::vector<DecodedRecord> updates;
    std::map<std::uint64_t, std::size_t> wanted;  // offset -> index in live
    for (std::size_t i = 0; i < live.size(); ++i) wanted[live[i].second.where.offset] = i;
    std::vector<std::string> groups_now;
    (void)reader.scan([&](const RecordView& r) {
      if (!wanted.contains(r.offset)) return;
      auto decoded = decode_record(r.type, r.body);
      if (!decoded) return;
      // The failure history travels with the copy (its old ATTEMPT records
      // may be in the segment about to go); read with the groups, in one lock.
      std::vector<std::pair<std::string, Failures>> history;
      {
        std::lock_guard l(index_mutex);
        auto it = index.entries.find(SpoolIndex::key_of(*decoded));
        if (it == index.entries.end()) return;  // settled meanwhile
        groups_now = index.groups_of(it->second.groups);
        if (auto f = index.failures.find(decoded->id); f != index.failures.end())
          for (const auto& h : f->second)
            history.emplace_back(index.group_names[static_cast<std::size_t>(h.group_bit)], h);
      }
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
    for (std::size_t i = 0; i < records.size(); ++i) records[i].second = bodies[i];
    std::vector<Location> where;
    if (write_records(records, where, /*force_sync=*/true) != 0) return false;
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
    {
      std::lock_guard l(index_mutex);
      auto it = index.entries.find(key);
      if (it == index.entries.end()) return std::nullopt;
      where = it->second.where;
      groups = index.groups_of(it->second.groups);
    }
    const int fd = ::open(path_of(where.segment).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::nullopt;
    std::string data(where.size, '\0');
    const ssize_t n = ::pread(fd, data.data(), data.size(), where.offset);
    ::close(fd);
    if (n != static_cast<ssize_t>(data.size()) || data.size() < kRecordHeaderSize)
      return std::nullopt;
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
                    std::string_view frame, Completion done) {
  DecodedRecord update;
  update.type = RecordType::publish;
  update.id = id;
  update.group_mask = impl_->mask_of(groups);
  if (update.group_mask == 0 && !groups.empty())
    throw Error(errc::bad_argument, "a spool holds at most 64 groups at once");
  update.seq = impl_->next_seq++;
  impl_->enqueue(RecordType::publish, encode_publish(update.seq, id, groups, frame),
                 std::move(update), std::move(done));
}

void Spool::ack(const MessageId& id, const std::string& group, Completion done) {
  DecodedRecord update;
  update.type = RecordType::ack;
  update.id = id;
  update.group = group;
  impl_->enqueue(RecordType::ack, encode_ack(id, group), std::move(update), std::move(done));
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

std::vector<MessageId> Spool::take_recent_ids() {
  std::lock_guard l(impl_->index_mutex);
  std::vector<MessageId> ids(impl_->index.recent.begin(), impl_->index.recent.end());
  impl_->index.recent_capacity = 0;  // only recovery's ids are asked for
  impl_->index.recent = {};
  return ids;
}

void Spool::forget_group(const std::string& group) {
  std::lock_guard b(impl_->bits_mutex);  // the same order as mask_of
  impl_->bits.erase(group);
  std::lock_guard l(impl_->index_mutex);
  impl_->index.release_group(group);
}

void Spool::flush() {
  std::unique_lock l(impl_->queue_mutex);
  impl_->idle_cv.wait(l, [&] { return impl_->queue.empty() && impl_->in_flight == 0; });
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
