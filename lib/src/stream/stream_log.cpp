// StreamLog: append, index, read, recover and retain one partition's
// segments. Every segment keeps an in-memory table of its records' file
// positions (4 bytes a record), so a read from any offset is one pread.
// The files go through the segment-log engine of lib/src/log/.
#include "mqkit/stream_log.hpp"

#include <msgpack.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>

#include "detail/msgpack_fields.hpp"
#include "detail/wall_clock.hpp"
#include "log/env.hpp"
#include "log/lock_file.hpp"
#include "log/segment_file.hpp"
#include "log/segment_reader.hpp"
#include "mqkit/error.hpp"

namespace mqkit {
using namespace detail::log;

namespace {

constexpr const char* kSuffix = ".log";

using mqkit::detail::now_ms;

[[noreturn]] void throw_error(int err, const std::string& what) {
  throw Error(std::error_code(err, std::system_category()), what + ": " + std::strerror(err));
}

// A record position of 0 marks an offset whose record is missing or damaged
// (no record starts inside the header).
constexpr std::uint32_t kMissing = 0;

// The smallest stream record: a record header and a body of a 3-array, two
// one-byte integers and an empty bin (its 2-byte header).
constexpr std::uint64_t kMinStreamRecordSize = kRecordHeaderSize + 1 + 1 + 1 + 2;

std::string encode_body(std::uint64_t offset, std::uint64_t time_ms, std::string_view frame) {
  std::string body;
  body.reserve(frame.size() + 24);
  detail::StringSink sink{body};
  msgpack::packer<detail::StringSink> pk(sink);
  pk.pack_array(3);
  pk.pack(offset);
  pk.pack(time_ms);
  pk.pack_bin(static_cast<std::uint32_t>(frame.size()));
  pk.pack_bin_body(frame.data(), static_cast<std::uint32_t>(frame.size()));
  return body;
}

// Decodes a record body, [offset, time_ms, frame] (one more field of any
// scalar type is tolerated for a later version), with msgpack's visitor
// parser: no zone and no object tree, which recovery and every read would
// otherwise allocate per record.
class BodyVisitor : public msgpack::null_visitor {
 public:
  explicit BodyVisitor(StreamRecord& out) : out_(out) {}

  bool start_array(std::uint32_t size) {
    if (depth_++ > 0 || size < 3 || size > 4) return false;
    return true;
  }
  bool start_map(std::uint32_t) { return false; }
  bool visit_ext(const char*, std::uint32_t) { return false; }
  bool start_array_item() { return true; }
  bool end_array_item() {
    ++item_;
    return true;
  }
  bool visit_positive_integer(std::uint64_t v) {
    if (item_ == 0) out_.offset = v;
    if (item_ == 1) out_.time_ms = v;
    if (item_ < 2) ++typed_;
    return item_ != 2;
  }
  bool visit_bin(const char* data, std::uint32_t size) {
    if (item_ != 2) return item_ > 2;
    out_.frame.assign(data, size);
    ++typed_;
    return true;
  }
  bool visit_nil() { return item_ > 2; }
  bool visit_boolean(bool) { return item_ > 2; }
  bool visit_negative_integer(std::int64_t) { return item_ > 2; }
  bool visit_float32(float) { return item_ > 2; }
  bool visit_float64(double) { return item_ > 2; }
  bool visit_str(const char*, std::uint32_t) { return item_ > 2; }

  bool complete() const { return depth_ == 1 && typed_ == 3; }

 private:
  StreamRecord& out_;
  int depth_ = 0;
  std::uint32_t item_ = 0;
  int typed_ = 0;  // offset, time and frame each seen with their type
};

bool decode_body(std::string_view body, StreamRecord& out) {
  BodyVisitor visitor(out);
  return msgpack::parse(body.data(), body.size(), visitor) && visitor.complete();
}

}  // namespace

struct StreamLog::Impl {
  struct Segment {
    std::uint64_t base = 0;        // offset of its first record
    std::uint64_t first_time = 0;  // append time of its first record
    std::uint64_t last_time = 0;
    std::vector<std::uint32_t> positions;  // file position of record base+i (kMissing: damaged)
    std::uint64_t size = 0;                // bytes in the file
    std::unique_ptr<SegmentFile> file;
  };

  std::string dir;
  StreamLogOptions options;
  Env* env = &Env::posix();
  std::optional<LockFile> lock;
  std::map<std::uint64_t, Segment> segments;  // by base offset
  std::uint64_t next = 0;
  std::uint64_t synced_next = 0;  // records before this are synced (interval)
  SyncDeadline deadline;
  int sync_error = 0;    // a failed interval sync: appends fail until one succeeds
  bool writable = true;  // false: the last segment is damaged, the next append starts a new one

  std::string path_of(std::uint64_t base) const {
    char name[32];
    std::snprintf(name, sizeof name, "%020llu%s", static_cast<unsigned long long>(base), kSuffix);
    return dir + "/" + name;
  }

  bool durable() const { return options.durability != Durability::never; }

  void open() {
    if (options.segment_size > kMaxSegmentSize ||
        options.max_record_size > kMaxSegmentSize - std::min(options.segment_size, kMaxSegmentSize))
      throw Error(errc::bad_argument,
                  "stream segment size plus the largest record must stay below 4 GiB (segment "
                  "size " +
                      std::to_string(options.segment_size) + ")");
    if (const int err = make_dirs(*env, dir); err != 0)
      throw_error(err, "cannot create stream directory " + dir);
    lock.emplace(dir);
    std::vector<std::string> names;
    if (const int err = env->list_dir(dir, names); err != 0)
      throw_error(err, "cannot list stream directory " + dir);
    std::vector<std::uint64_t> bases;
    for (const auto& name : names)
      if (name.size() == 24 && name.ends_with(kSuffix) &&
          name.find_first_not_of("0123456789") == 20)
        bases.push_back(std::stoull(name.substr(0, 20)));
    std::sort(bases.begin(), bases.end());
    for (std::size_t i = 0; i < bases.size(); ++i) recover(bases[i], i + 1 == bases.size());
    if (segments.empty()) create_segment(0);
    synced_next = next;  // what survived is what readers may have
  }

  void recover(std::uint64_t base, bool last) {
    const std::string path = path_of(base);
    SegmentReader reader(path, options.max_record_size, *env);
    Segment seg;
    seg.base = base;
    StreamRecord r;
    bool damaged = reader.header_state() == HeaderState::damaged;
    const auto scan = reader.scan([&](const RecordView& v) {
      if (v.type != RecordType::stream || !decode_body(v.body, r) ||
          r.offset < base + seg.positions.size() || v.offset > kMaxSegmentSize) {
        damaged = true;  // not one of ours, or out of order: skipped
        return;
      }
      // Offsets lost to damage before this record stay taken (kMissing).
      seg.positions.resize(r.offset - base, kMissing);
      if (seg.first_time == 0) seg.first_time = r.time_ms;
      seg.last_time = r.time_ms;
      seg.positions.push_back(static_cast<std::uint32_t>(v.offset));
    });
    damaged |= scan.corrupt_records > 0;
    // A last record that is whole but fails its check is damage, not a
    // write cut short: its offset (and any after it) may have been handed
    // out and read, so those offsets stay taken, as gaps.
    if (last && !damaged && scan.torn_tail_bytes > 0 && reader.header_state() == HeaderState::ok)
      if (const auto lost = reader.records_in_damaged_tail(scan.valid_end, kMinStreamRecordSize);
          lost > 0) {
        damaged = true;
        seg.positions.resize(seg.positions.size() + lost, kMissing);
      }
    // Records lost between the previous segment and this one are gaps too.
    if (!segments.empty()) {
      auto& prev = segments.rbegin()->second;
      if (prev.base + prev.positions.size() < base)
        prev.positions.resize(base - prev.base, kMissing);
    }
    seg.size = reader.header_state() == HeaderState::incomplete
                   ? 0
                   : (damaged ? reader.file_size() : scan.valid_end);
    std::unique_ptr<SegmentFile> file;
    if (reader.header_state() == HeaderState::incomplete && last) {
      // A crash right after the file was created: it holds nothing.
      if (const int err = SegmentFile::create(*env, path, durable(), file); err != 0)
        throw_error(err, "cannot repair " + path);
      seg.size = kSegmentHeaderSize;
    } else {
      if (const int err = SegmentFile::open(*env, path, seg.size, reader.crc_seed(), file);
          err != 0)
        throw_error(err, "cannot open " + path);
      if (last && !damaged && scan.torn_tail_bytes > 0)
        if (const int err = file->cut_to(seg.size); err != 0)
          throw_error(err, "cannot repair the torn tail of " + path);
    }
    seg.file = std::move(file);
    next = std::max(next, base + seg.positions.size());
    // A damaged last segment is kept as it is; appends go to a new one.
    if (last) writable = !damaged && reader.crc_seed() != 0;
    segments[base] = std::move(seg);
  }

  void create_segment(std::uint64_t base) {
    const std::string path = path_of(base);
    std::unique_ptr<SegmentFile> file;
    if (const int err = SegmentFile::create(*env, path, durable(), file); err != 0)
      throw_error(err, "cannot create " + path);
    Segment seg;
    seg.base = base;
    seg.size = kSegmentHeaderSize;
    seg.file = std::move(file);
    segments[base] = std::move(seg);
    writable = true;
  }

  void sync_now(Segment& seg) {
    if (const int err = seg.file->sync(); err != 0) {
      sync_error = err;
      throw_error(err, "cannot sync " + path_of(seg.base));
    }
    sync_error = 0;
    deadline.synced();
    synced_next = next;  // older segments were synced when they rolled
  }

  std::uint64_t append(const std::vector<std::string_view>& frames, std::uint64_t time_ms) {
    if (frames.empty()) return next;
    if (time_ms == 0) time_ms = now_ms();
    Segment* seg = &segments.rbegin()->second;
    if (sync_error != 0) sync_now(*seg);  // confirm nothing until the failed sync is made good
    if (!writable || (seg->size > kSegmentHeaderSize && seg->size >= options.segment_size)) {
      if (writable && durable()) sync_now(*seg);
      create_segment(next);
      seg = &segments.rbegin()->second;
    }
    std::string buffer;
    std::vector<std::uint32_t> positions;
    for (std::size_t i = 0; i < frames.size(); ++i) {
      const std::string body = encode_body(next + i, time_ms, frames[i]);
      if (kRecordHeaderSize + body.size() > options.max_record_size)
        throw Error(errc::too_large, "a stream record is larger than the limit");
      positions.push_back(static_cast<std::uint32_t>(seg->size + buffer.size()));
      append_record(buffer, seg->file->seed(), RecordType::stream, body);
    }
    if (const int err = seg->file->append(buffer); err != 0)
      throw_error(err, "cannot append to " + path_of(seg->base));
    deadline.wrote();
    bool synced = false;
    if (options.durability == Durability::always ||
        (options.durability == Durability::interval && deadline.due(options.sync_interval))) {
      if (const int err = seg->file->sync(); err != 0) {
        if (options.durability == Durability::always) {
          (void)seg->file->cut_to(seg->size);  // nothing of a failed append stays
          throw_error(err, "cannot sync " + path_of(seg->base));
        }
        sync_error = err;  // the appends since the last good sync may be lost: say so from now on
      } else {
        deadline.synced();
        synced = true;
      }
    }
    if (seg->positions.empty()) seg->first_time = time_ms;
    seg->last_time = time_ms;
    seg->positions.insert(seg->positions.end(), positions.begin(), positions.end());
    seg->size += buffer.size();
    const std::uint64_t first = next;
    next += frames.size();
    if (synced) synced_next = next;
    return first;
  }

  // The segment holding `offset` (present or damaged), if any is retained.
  const Segment* segment_of(std::uint64_t offset) const {
    auto it = segments.upper_bound(offset);
    if (it == segments.begin()) return nullptr;
    --it;
    return offset < it->first + it->second.positions.size() ? &it->second : nullptr;
  }

  std::uint64_t first_offset() const { return segments.begin()->first; }

  // Reads records [index, last) of `seg` while they check out; stops at the
  // first damaged one. Throws Error when the file cannot be read (EIO).
  void read_run(const Segment& seg, std::size_t index, std::size_t last, std::size_t max_bytes,
                std::size_t& bytes, std::vector<StreamRecord>& out) const {
    // Read no more of the file than `max_bytes` asks for (and at least one
    // record): a batch of large records must not become one huge read.
    const std::size_t budget = max_bytes > bytes ? max_bytes - bytes : 0;
    std::size_t end = index;
    while (end < last && seg.positions[end] != kMissing) {
      if (end > index && seg.positions[end] - seg.positions[index] >= budget) break;
      ++end;
    }
    if (end == index) return;
    const std::uint64_t from = seg.positions[index];
    std::uint64_t to = seg.size;
    for (std::size_t i = end; i < seg.positions.size(); ++i)
      if (seg.positions[i] != kMissing) {
        to = seg.positions[i];
        break;
      }
    std::string data(to - from, '\0');
    // A failed read is the disk's answer for now, not damage: the caller
    // tries again later, and no reader is told to step over the record.
    if (const int err = read_exact(seg.file->file(), from, data.data(), data.size()); err != 0)
      throw Error(std::error_code(err, std::system_category()),
                  "cannot read offset " + std::to_string(seg.base + index) + " of " + dir + ": " +
                      std::strerror(err));
    const std::string_view view(data);
    for (std::size_t i = index; i < end && bytes < max_bytes; ++i) {
      const std::uint64_t at = seg.positions[i] - from;
      if (view.size() - at < kRecordHeaderSize) return;
      std::uint32_t length;
      std::memcpy(&length, data.data() + at, 4);  // little-endian, as written
      if (view.size() - at - kRecordHeaderSize < length) return;
      StreamRecord r;
      if (!record_checks_out(view.substr(at, kRecordHeaderSize + length), seg.file->seed()) ||
          !decode_body(view.substr(at + kRecordHeaderSize, length), r) || r.offset != seg.base + i)
        return;
      bytes += r.frame.size();
      out.push_back(std::move(r));
    }
  }
};

StreamLog::StreamLog(const std::string& dir, const StreamLogOptions& options)
    : impl_(std::make_unique<Impl>()) {
  impl_->dir = dir;
  impl_->options = options;
  if (options.env != nullptr) impl_->env = options.env;
  impl_->open();
}

StreamLog::~StreamLog() {
  if (impl_->durable() && impl_->deadline.dirty() && !impl_->segments.empty())
    (void)impl_->segments.rbegin()->second.file->sync();
}

std::uint64_t StreamLog::append_batch(const std::vector<std::string_view>& frames,
                                      std::uint64_t time_ms) {
  return impl_->append(frames, time_ms);
}

void StreamLog::sync_if_due() {
  if (impl_->options.durability != Durability::interval) return;
  if (impl_->sync_error == 0 && !impl_->deadline.due(impl_->options.sync_interval)) return;
  impl_->sync_now(impl_->segments.rbegin()->second);
}

std::vector<StreamRecord> StreamLog::read(std::uint64_t offset, std::size_t max_records,
                                          std::size_t max_bytes) const {
  if (offset < impl_->first_offset())
    throw Error(errc::bad_argument, "offset " + std::to_string(offset) +
                                        " is no longer retained: the first is " +
                                        std::to_string(impl_->first_offset()));
  if (offset > impl_->next)
    throw Error(errc::bad_argument, "offset " + std::to_string(offset) +
                                        " is past the end: the next record gets " +
                                        std::to_string(impl_->next));
  std::vector<StreamRecord> out;
  std::size_t bytes = 0;
  while (out.size() < max_records && offset < impl_->next && bytes < max_bytes) {
    const auto* seg = impl_->segment_of(offset);
    if (seg == nullptr) break;
    const std::size_t index = offset - seg->base;
    const std::size_t last =
        std::min<std::size_t>(seg->positions.size(), index + (max_records - out.size()));
    const std::size_t before = out.size();
    try {
      impl_->read_run(*seg, index, last, max_bytes, bytes, out);
    } catch (const Error&) {
      if (out.empty()) throw;
      break;  // what was read before it goes now; the failing read comes next time
    }
    offset += out.size() - before;
    if (offset != seg->base + last) break;  // a damaged record, or max_bytes
  }
  return out;
}

std::uint64_t StreamLog::damaged_from(std::uint64_t offset, std::string* why) const {
  if (offset < impl_->first_offset() || offset >= impl_->next) return 0;
  std::uint64_t count = 0;
  for (std::uint64_t at = offset; at < impl_->next; ++at) {
    const auto* seg = impl_->segment_of(at);
    bool bad = seg == nullptr || seg->positions[at - seg->base] == kMissing;
    if (!bad) {
      std::vector<StreamRecord> one;
      std::size_t bytes = 0;
      try {
        impl_->read_run(*seg, at - seg->base, at - seg->base + 1, SIZE_MAX, bytes, one);
      } catch (const Error&) {
        break;  // unreadable for now is not damaged: never skipped for it
      }
      bad = one.empty();
    }
    if (!bad) break;
    ++count;
  }
  if (count > 0 && why != nullptr)
    *why = "records " + std::to_string(offset) + ".." + std::to_string(offset + count - 1) +
           " of " + impl_->dir + " are damaged on disk and skipped";
  return count;
}
std::uint64_t StreamLog::first_offset() const noexcept {
  return impl_->first_offset();
}
std::uint64_t StreamLog::next_offset() const noexcept {
  return impl_->next;
}
std::uint64_t StreamLog::readable_end() const noexcept {
  return impl_->options.durability == Durability::interval ? impl_->synced_next : impl_->next;
}

std::uint64_t StreamLog::offset_at(std::uint64_t time_ms) const noexcept {
  for (const auto& [base, seg] : impl_->segments) {
    if (seg.first_time == 0 || seg.last_time < time_ms) continue;
    // Append times only grow within a partition: the first at/after time_ms
    // is in this segment. Its records are scanned by reading their times.
    if (seg.first_time >= time_ms) return base;
    try {
      for (std::size_t i = 0; i < seg.positions.size(); ++i) {
        const auto records = read(base + i, 1);
        if (!records.empty() && records.front().time_ms >= time_ms) return base + i;
      }
    } catch (const Error&) {
      return base;  // unreadable: start at the segment rather than skip it
    }
  }
  return impl_->next;
}

std::uint64_t StreamLog::enforce_retention(std::uint64_t now) {
  if (now == 0) now = now_ms();
  std::uint64_t removed = 0;
  auto& segs = impl_->segments;
  while (segs.size() > 1) {  // never the active (last) segment
    auto oldest = segs.begin();
    const bool too_big = impl_->options.retain_bytes > 0 && bytes() > impl_->options.retain_bytes;
    const bool too_old =
        impl_->options.retain_age.count() > 0 &&
        oldest->second.last_time + static_cast<std::uint64_t>(impl_->options.retain_age.count()) <
            now;
    if (!too_big && !too_old) break;
    oldest->second.file.reset();
    if (const int err = impl_->env->unlink(impl_->path_of(oldest->first)); err != 0)
      throw_error(err, "cannot delete " + impl_->path_of(oldest->first));
    (void)impl_->env->sync_dir(impl_->dir);
    removed += oldest->second.positions.size();
    segs.erase(oldest);
  }
  return removed;
}

std::uint64_t StreamLog::bytes() const noexcept {
  std::uint64_t total = 0;
  for (const auto& [base, seg] : impl_->segments) total += seg.size;
  return total;
}

std::size_t StreamLog::segments() const noexcept {
  return impl_->segments.size();
}

}  // namespace mqkit
