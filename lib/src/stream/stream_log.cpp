// StreamLog: append, index, read, recover and retain one partition's
// segments. Every segment keeps an in-memory table of its records' file
// positions (4 bytes a record), so a read from any offset is one pread.
#include "mqkit/stream_log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <msgpack.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>

#include "detail/msgpack_fields.hpp"
#include "detail/wall_clock.hpp"
#include "mqkit/error.hpp"
#include "spool/lock_file.hpp"
#include "spool/segment_reader.hpp"

namespace mqkit {
namespace fs = std::filesystem;
using namespace detail::spool;

namespace {

constexpr const char* kSuffix = ".log";

using mqkit::detail::now_ms;

[[noreturn]] void throw_errno(const std::string& what) {
  const int err = errno;
  throw Error(std::error_code(err, std::system_category()), what + ": " + std::strerror(err));
}

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

bool decode_body(std::string_view body, StreamRecord& out) {
  try {
    const msgpack::unpack_limit limit(4, 0, body.size(), body.size(), 0, 2);
    auto handle = msgpack::unpack(body.data(), body.size(), nullptr, nullptr, limit);
    const auto& o = handle.get();
    if (o.type != msgpack::type::ARRAY || o.via.array.size < 3) return false;
    const auto* a = o.via.array.ptr;
    if (a[0].type != msgpack::type::POSITIVE_INTEGER ||
        a[1].type != msgpack::type::POSITIVE_INTEGER || a[2].type != msgpack::type::BIN)
      return false;
    out.offset = a[0].via.u64;
    out.time_ms = a[1].via.u64;
    out.frame.assign(a[2].via.bin.ptr, a[2].via.bin.size);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace

struct StreamLog::Impl {
  struct Segment {
    std::uint64_t base = 0;        // offset of its first record
    std::uint64_t first_time = 0;  // append time of its first record
    std::uint64_t last_time = 0;
    std::vector<std::uint32_t> positions;  // file position of record base+i
    std::uint64_t size = 0;                // bytes in the file
    int fd = -1;
  };

  std::string dir;
  StreamLogOptions options;
  std::optional<LockFile> lock;
  std::map<std::uint64_t, Segment> segments;  // by base offset
  std::uint64_t next = 0;

  std::string path_of(std::uint64_t base) const {
    char name[32];
    std::snprintf(name, sizeof name, "%020llu%s", static_cast<unsigned long long>(base), kSuffix);
    return dir + "/" + name;
  }

  void open() {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) throw Error(ec, "cannot create stream directory " + dir + ": " + ec.message());
    lock.emplace(dir);
    std::vector<std::uint64_t> bases;
    for (const auto& entry : fs::directory_iterator(dir)) {
      const std::string name = entry.path().filename().string();
      if (name.size() == 24 && name.ends_with(kSuffix) &&
          name.find_first_not_of("0123456789") == 20)
        bases.push_back(std::stoull(name.substr(0, 20)));
    }
    std::sort(bases.begin(), bases.end());
    for (std::size_t i = 0; i < bases.size(); ++i) recover(bases[i], i + 1 == bases.size());
    if (segments.empty()) create_segment(0);
  }

  void recover(std::uint64_t base, bool last) {
    const std::string path = path_of(base);
    SegmentReader reader(path, options.max_record_size);
    Segment seg;
    seg.base = base;
    StreamRecord r;
    const auto scan = reader.scan([&](const RecordView& v) {
      if (v.type != RecordType::stream || !decode_body(v.body, r)) return;
      if (r.offset != base + seg.positions.size()) return;  // out of sequence: not ours
      if (seg.positions.empty()) seg.first_time = r.time_ms;
      seg.last_time = r.time_ms;
      seg.positions.push_back(static_cast<std::uint32_t>(v.offset));
    });
    seg.size = std::max<std::uint64_t>(scan.valid_end, kSegmentHeaderSize);
    const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) throw_errno("cannot open " + path);
    if (last && (scan.torn_tail_bytes > 0 || !reader.header_ok())) {
      // A write cut short by a crash: cut it (and rewrite a missing header).
      char header[kSegmentHeaderSize];
      write_segment_header(header);
      if (::ftruncate(fd, static_cast<off_t>(seg.size)) != 0 ||
          (!reader.header_ok() && ::pwrite(fd, header, sizeof header, 0) != sizeof header) ||
          ::fdatasync(fd) != 0)
        throw_errno("cannot repair the torn tail of " + path);
    }
    seg.fd = fd;
    next = base + seg.positions.size();
    segments[base] = std::move(seg);
  }

  void create_segment(std::uint64_t base) {
    const std::string path = path_of(base);
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw_errno("cannot create " + path);
    char header[kSegmentHeaderSize];
    write_segment_header(header);
    if (::pwrite(fd, header, sizeof header, 0) != sizeof header ||
        (options.durability == Durability::always && ::fdatasync(fd) != 0)) {
      ::close(fd);
      throw_errno("cannot write " + path);
    }
    Segment seg;
    seg.base = base;
    seg.size = kSegmentHeaderSize;
    seg.fd = fd;
    segments[base] = std::move(seg);
  }

  std::uint64_t append(const std::vector<std::string_view>& frames, std::uint64_t time_ms) {
    if (frames.empty()) return next;
    if (time_ms == 0) time_ms = now_ms();
    Segment* seg = &segments.rbegin()->second;
    if (seg->size > kSegmentHeaderSize && seg->size >= options.segment_size) {
      if (options.durability != Durability::never) (void)::fdatasync(seg->fd);
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
      append_record(buffer, RecordType::stream, body);
    }
    std::size_t done = 0;
    while (done < buffer.size()) {
      const ssize_t n = ::pwrite(seg->fd, buffer.data() + done, buffer.size() - done,
                                 static_cast<off_t>(seg->size + done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        const int err = n == 0 ? EIO : errno;
        [[maybe_unused]] int rc = ::ftruncate(seg->fd, static_cast<off_t>(seg->size));
        errno = err;
        throw_errno("cannot append to " + path_of(seg->base));
      }
      done += static_cast<std::size_t>(n);
    }
    if (options.durability == Durability::always && ::fdatasync(seg->fd) != 0) {
      const int err = errno;
      [[maybe_unused]] int rc = ::ftruncate(seg->fd, static_cast<off_t>(seg->size));
      errno = err;
      throw_errno("cannot sync " + path_of(seg->base));
    }
    if (seg->positions.empty()) seg->first_time = time_ms;
    seg->last_time = time_ms;
    seg->positions.insert(seg->positions.end(), positions.begin(), positions.end());
    seg->size += buffer.size();
    const std::uint64_t first = next;
    next += frames.size();
    return first;
  }

  const Segment* segment_of(std::uint64_t offset) const {
    auto it = segments.upper_bound(offset);
    if (it == segments.begin()) return nullptr;
    --it;
    return offset < it->first + it->second.positions.size() ? &it->second : nullptr;
  }

  std::uint64_t first_offset() const { return segments.begin()->first; }
};

StreamLog::StreamLog(const std::string& dir, const StreamLogOptions& options)
    : impl_(std::make_unique<Impl>()) {
  impl_->dir = dir;
  impl_->options = options;
  impl_->open();
}

StreamLog::~StreamLog() {
  for (auto& [base, seg] : impl_->segments) {
    if (impl_->options.durability != Durability::never) (void)::fdatasync(seg.fd);
    ::close(seg.fd);
  }
}

std::uint64_t StreamLog::append_batch(const std::vector<std::string_view>& frames,
                                      std::uint64_t time_ms) {
  return impl_->append(frames, time_ms);
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
    std::size_t last =
        std::min<std::size_t>(seg->positions.size(), index + (max_records - out.size()));
    // Read no more of the file than `max_bytes` asks for (and at least one
    // record): a batch of large records must not become one huge read.
    for (std::size_t end = index + 1; end < last; ++end)
      if (seg->positions[end] - seg->positions[index] >= max_bytes - bytes) {
        last = end;
        break;
      }
    const std::uint64_t from = seg->positions[index];
    const std::uint64_t to = last < seg->positions.size() ? seg->positions[last] : seg->size;
    std::string data(to - from, '\0');
    if (::pread(seg->fd, data.data(), data.size(), static_cast<off_t>(from)) !=
        static_cast<ssize_t>(data.size()))
      throw Error(errc::malformed, "cannot read " + impl_->path_of(seg->base));
    for (std::size_t i = index; i < last && bytes < max_bytes; ++i) {
      const std::uint64_t at = seg->positions[i] - from;
      std::uint32_t length;
      std::memcpy(&length, data.data() + at, 4);  // little-endian, as written
      StreamRecord r;
      if (!decode_body(std::string_view(data).substr(at + kRecordHeaderSize, length), r))
        throw Error(errc::malformed, "record " + std::to_string(offset) + " does not decode");
      bytes += r.frame.size();
      out.push_back(std::move(r));
      ++offset;
    }
  }
  return out;
}

std::uint64_t StreamLog::first_offset() const noexcept {
  return impl_->first_offset();
}
std::uint64_t StreamLog::next_offset() const noexcept {
  return impl_->next;
}

std::uint64_t StreamLog::offset_at(std::uint64_t time_ms) const noexcept {
  for (const auto& [base, seg] : impl_->segments) {
    if (seg.positions.empty() || seg.last_time < time_ms) continue;
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
    ::close(oldest->second.fd);
    if (::unlink(impl_->path_of(oldest->first).c_str()) != 0)
      throw_errno("cannot delete " + impl_->path_of(oldest->first));
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
