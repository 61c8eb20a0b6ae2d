// Reading and framing of segment records.
#include "log/segment_reader.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>

#include "log/crc32c.hpp"
#include "mqkit/error.hpp"

namespace mqkit::detail::log {
namespace {

std::uint32_t load_u32(const char* p) noexcept {
  std::uint32_t v;
  std::memcpy(&v, p, sizeof v);  // little-endian on every platform mqkit targets
  return v;
}

void store_u32(char* p, std::uint32_t v) noexcept {
  std::memcpy(p, &v, sizeof v);
}

// How many times the file's size the resync may hash in all before it gives
// up on the rest of a file: keeps a damaged file linear to read even when
// its payloads are full of record-shaped bytes.
constexpr std::uint64_t kResyncBudgetFactor = 4;

}  // namespace

const char* record_type_name(RecordType type) noexcept {
  switch (type) {
    case RecordType::publish:
      return "PUBLISH";
    case RecordType::ack:
      return "ACK";
    case RecordType::dead:
      return "DEAD";
    case RecordType::dead_letter:
      return "DEAD_LETTER";
    case RecordType::tombstone:
      return "TOMBSTONE";
    case RecordType::attempt:
      return "ATTEMPT";
    case RecordType::stream:
      return "STREAM";
  }
  return "UNKNOWN";
}

bool is_known_record_type(std::uint8_t type) noexcept {
  return type >= 1 && type <= 7;
}

std::uint32_t crc_seed(std::uint32_t salt) noexcept {
  if (salt == 0) return 0;
  char bytes[4];
  store_u32(bytes, salt);
  return crc32c(std::string_view(bytes, 4));
}

std::uint32_t new_salt() {
  static thread_local std::mt19937 random{std::random_device{}()};
  std::uint32_t salt = 0;
  while (salt == 0) salt = static_cast<std::uint32_t>(random());
  return salt;
}

void write_segment_header(char* out, std::uint32_t salt) noexcept {
  std::memcpy(out, kSegmentMagic, sizeof kSegmentMagic);
  store_u32(out + 8, salt == 0 ? kUnsaltedVersion : kFormatVersion);
  store_u32(out + 12, salt);
}

void append_record(std::string& out, std::uint32_t seed, RecordType type, std::string_view body) {
  char header[kRecordHeaderSize];
  const char type_byte = static_cast<char>(type);
  store_u32(header, static_cast<std::uint32_t>(body.size()));
  store_u32(header + 4, crc32c_extend(crc32c_extend(seed, std::string_view(&type_byte, 1)), body));
  header[8] = type_byte;
  out.append(header, kRecordHeaderSize);
  out.append(body);
}

bool record_checks_out(std::string_view record, std::uint32_t seed) noexcept {
  if (record.size() < kRecordHeaderSize) return false;
  const std::uint64_t length = load_u32(record.data());
  if (record.size() - kRecordHeaderSize != length) return false;
  return crc32c_extend(seed, record.substr(8)) == load_u32(record.data() + 4);
}

SegmentReader::SegmentReader(std::string path, std::uint64_t max_record_size, Env& env)
    : path_(std::move(path)), max_record_size_(max_record_size) {
  if (const int err = read_whole(env, path_, data_); err != 0)
    throw Error(std::error_code(err, std::system_category()),
                "cannot read segment " + path_ + ": " + std::strerror(err));
  if (data_.size() < kSegmentHeaderSize) {
    header_state_ = HeaderState::incomplete;
    header_problem_ =
        path_ + ": segment header is incomplete (" + std::to_string(data_.size()) + " bytes)";
    return;
  }
  const bool magic_ok = std::memcmp(data_.data(), kSegmentMagic, sizeof kSegmentMagic) == 0;
  const std::uint32_t version = load_u32(data_.data() + 8);
  const std::uint32_t salt = load_u32(data_.data() + 12);
  if (magic_ok && version == kUnsaltedVersion && salt == 0) return;
  RecordView first{};
  if (magic_ok && version == kFormatVersion && salt != 0) {
    crc_seed_ = log::crc_seed(salt);
    if (valid_record_at(kSegmentHeaderSize, first) || !use_solved_salt()) return;
    header_state_ = HeaderState::damaged;  // the salt bytes were: found again from the records
    header_problem_ =
        path_ + ": segment header is damaged (bad salt); its records are read where they check out";
    return;
  }
  // A bad byte in the header: read the records by whichever of our rules
  // the first one checks out with (the header's salt, none, or the salt the
  // records give). A good magic with a version we do not know and records
  // we cannot read is a newer format.
  crc_seed_ = log::crc_seed(salt);
  bool readable = salt != 0 && valid_record_at(kSegmentHeaderSize, first);
  if (!readable) {
    crc_seed_ = 0;
    readable = valid_record_at(kSegmentHeaderSize, first) || use_solved_salt();
    if (!readable) crc_seed_ = log::crc_seed(salt);
  }
  if (magic_ok && version > kFormatVersion && !readable)
    throw Error(errc::unsupported_version,
                path_ + ": segment format version " + std::to_string(version) +
                    " is newer than this mqkit reads (" + std::to_string(kFormatVersion) + ")");
  header_state_ = HeaderState::damaged;
  header_problem_ =
      path_ + ": segment header is damaged (" +
      (magic_ok ? "bad version " + std::to_string(version) : std::string("bad magic")) +
      "); its records are read where they check out";
}

// The CRC of a record is affine in the salt's 32 bits (CRC is linear over
// GF(2)), so the salt is what solves crc(salt) == stored for the first
// record; the second record must then check out with it too.
bool SegmentReader::use_solved_salt() noexcept {
  const std::uint64_t at = kSegmentHeaderSize;
  if (data_.size() - at < kRecordHeaderSize) return false;
  const std::uint64_t length = load_u32(data_.data() + at);
  if (length > max_record_size_ || data_.size() - at - kRecordHeaderSize < length) return false;
  const std::string_view typed_body(data_.data() + at + 8, 1 + length);
  auto crc_with = [&](std::uint32_t salt) {
    char bytes[4];
    store_u32(bytes, salt);
    return crc32c_extend(crc32c(std::string_view(bytes, 4)), typed_body);
  };
  const std::uint32_t base = crc_with(0);
  std::uint32_t basis[32] = {}, combo[32] = {};  // by pivot bit
  for (int i = 0; i < 32; ++i) {
    std::uint32_t v = crc_with(std::uint32_t{1} << i) ^ base;
    std::uint32_t c = std::uint32_t{1} << i;
    for (int bit = 31; bit >= 0 && v != 0; --bit) {
      if (!((v >> bit) & 1u)) continue;
      if (basis[bit] == 0) {
        basis[bit] = v;
        combo[bit] = c;
        break;
      }
      v ^= basis[bit];
      c ^= combo[bit];
    }
  }
  std::uint32_t target = load_u32(data_.data() + at + 4) ^ base, salt = 0;
  for (int bit = 31; bit >= 0; --bit) {
    if (!((target >> bit) & 1u)) continue;
    if (basis[bit] == 0) return false;
    target ^= basis[bit];
    salt ^= combo[bit];
  }
  if (salt == 0) return false;
  const std::uint32_t before = crc_seed_;
  crc_seed_ = log::crc_seed(salt);
  RecordView first{}, second{};
  if (valid_record_at(at, first) && valid_record_at(at + first.size, second)) return true;
  crc_seed_ = before;
  return false;
}

std::uint64_t SegmentReader::records_in_damaged_tail(std::uint64_t from,
                                                     std::uint64_t min_record_size) const noexcept {
  auto whole_at = [&](std::uint64_t at) {
    if (data_.size() - at < kRecordHeaderSize) return std::uint64_t{0};
    const std::uint64_t length = load_u32(data_.data() + at);
    if (length > max_record_size_ || data_.size() - at - kRecordHeaderSize < length)
      return std::uint64_t{0};
    return kRecordHeaderSize + length;
  };
  if (from >= data_.size() || whole_at(from) == 0) return 0;
  std::uint64_t count = 0;
  for (std::uint64_t at = from; at < data_.size();) {
    const std::uint64_t size = whole_at(at);
    if (size == 0) {
      const std::uint64_t step = std::max<std::uint64_t>(min_record_size, 1);
      return count + (data_.size() - at + step - 1) / step;
    }
    ++count;
    at += size;
  }
  return count;
}

bool SegmentReader::zeros_from(std::uint64_t from) const noexcept {
  return from >= data_.size() ||
         data_.find_first_not_of('\0', static_cast<std::size_t>(from)) == std::string::npos;
}

bool SegmentReader::valid_record_at(std::uint64_t offset, RecordView& out) const noexcept {
  if (data_.size() - offset < kRecordHeaderSize) return false;
  const char* p = data_.data() + offset;
  const std::uint64_t length = load_u32(p);
  if (length > max_record_size_ || data_.size() - offset - kRecordHeaderSize < length) return false;
  const auto type = static_cast<std::uint8_t>(p[8]);
  if (!is_known_record_type(type)) return false;
  const std::string_view typed_body(p + 8, 1 + length);
  if (crc32c_extend(crc_seed_, typed_body) != load_u32(p + 4)) return false;
  out = {static_cast<RecordType>(type), typed_body.substr(1), offset,
         static_cast<std::uint32_t>(kRecordHeaderSize + length)};
  return true;
}

ScanReport SegmentReader::scan(const std::function<void(const RecordView&)>& visit) const {
  ScanReport report;
  if (header_state_ == HeaderState::incomplete) {
    report.problems.push_back(header_problem_);
    report.torn_tail_bytes = data_.size();
    return report;
  }
  if (header_state_ == HeaderState::damaged) report.problems.push_back(header_problem_);
  std::uint64_t offset = kSegmentHeaderSize;
  report.valid_end = offset;
  std::uint64_t budget = kResyncBudgetFactor * data_.size();
  RecordView record{};
  while (offset < data_.size()) {
    if (valid_record_at(offset, record)) {
      visit(record);
      ++report.records;
      offset += record.size;
      report.valid_end = offset;
      continue;
    }
    // Look for the next valid record; without one, this is the tail.
    std::uint64_t next = offset + 1;
    bool gave_up = false;
    for (; next < data_.size(); ++next) {
      const std::uint64_t claimed = data_.size() - next >= kRecordHeaderSize
                                        ? std::uint64_t{load_u32(data_.data() + next)}
                                        : 0;
      if (claimed <= max_record_size_ && claimed <= data_.size() - next) {
        if (claimed > budget) {
          gave_up = true;
          break;
        }
        budget -= claimed;
      }
      if (valid_record_at(next, record)) break;
    }
    if (gave_up) {
      ++report.corrupt_records;
      report.corrupt_bytes += data_.size() - offset;
      report.problems.push_back(path_ + ": " + std::to_string(data_.size() - offset) +
                                " bytes from offset " + std::to_string(offset) +
                                " could not be resynchronised; ignored");
      report.valid_end = data_.size();  // not a torn tail: never cut
      return report;
    }
    if (next >= data_.size()) break;
    ++report.corrupt_records;
    report.corrupt_bytes += next - offset;
    report.problems.push_back(path_ + ": skipped " + std::to_string(next - offset) +
                              " corrupt bytes at offset " + std::to_string(offset));
    offset = next;
  }
  report.torn_tail_bytes = data_.size() - report.valid_end;
  return report;
}

}  // namespace mqkit::detail::log
