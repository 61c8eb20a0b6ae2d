// Reading and framing of spool records.
#include "spool/segment_reader.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "mqkit/error.hpp"
#include "spool/crc32c.hpp"

namespace mqkit::detail::spool {
namespace {

std::uint32_t load_u32(const char* p) noexcept {
  std::uint32_t v;
  std::memcpy(&v, p, sizeof v);  // little-endian on every platform mqkit targets
  return v;
}

void store_u32(char* p, std::uint32_t v) noexcept {
  std::memcpy(p, &v, sizeof v);
}

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

void write_segment_header(char* out) noexcept {
  std::memcpy(out, kSegmentMagic, sizeof kSegmentMagic);
  store_u32(out + 8, kFormatVersion);
  store_u32(out + 12, 0);
}

void append_record(std::string& out, RecordType type, std::string_view body) {
  char header[kRecordHeaderSize];
  const char type_byte = static_cast<char>(type);
  store_u32(header, static_cast<std::uint32_t>(body.size()));
  store_u32(header + 4, crc32c_extend(crc32c(std::string_view(&type_byte, 1)), body));
  header[8] = type_byte;
  out.append(header, kRecordHeaderSize);
  out.append(body);
}

SegmentReader::SegmentReader(std::string path, std::uint64_t max_record_size)
    : path_(std::move(path)), max_record_size_(max_record_size) {
  std::ifstream in(path_, std::ios::binary);
  if (!in)
    throw Error(std::error_code(errno, std::system_category()),
                "cannot read spool segment " + path_ + ": " + std::strerror(errno));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  data_ = std::move(buffer).str();
  if (data_.size() < kSegmentHeaderSize) {
    header_problem_ =
        path_ + ": segment header is incomplete (" + std::to_string(data_.size()) + " bytes)";
    return;
  }
  if (std::memcmp(data_.data(), kSegmentMagic, sizeof kSegmentMagic) != 0) {
    header_problem_ = path_ + ": not a spool segment (bad magic)";
    return;
  }
  const std::uint32_t version = load_u32(data_.data() + 8);
  if (version > kFormatVersion)
    throw Error(errc::unsupported_version,
                path_ + ": spool format version " + std::to_string(version) +
                    " is newer than this mqkit reads (" + std::to_string(kFormatVersion) + ")");
  header_ok_ = true;
}

bool SegmentReader::valid_record_at(std::uint64_t offset, RecordView& out) const noexcept {
  if (data_.size() - offset < kRecordHeaderSize) return false;
  const char* p = data_.data() + offset;
  const std::uint64_t length = load_u32(p);
  if (length > max_record_size_ || data_.size() - offset - kRecordHeaderSize < length) return false;
  const auto type = static_cast<std::uint8_t>(p[8]);
  if (!is_known_record_type(type)) return false;
  const std::string_view typed_body(p + 8, 1 + length);
  if (crc32c(typed_body) != load_u32(p + 4)) return false;
  out = {static_cast<RecordType>(type), typed_body.substr(1), offset,
         static_cast<std::uint32_t>(kRecordHeaderSize + length)};
  return true;
}

ScanReport SegmentReader::scan(const std::function<void(const RecordView&)>& visit) const {
  ScanReport report;
  if (!header_ok_) {
    report.problems.push_back(header_problem_);
    report.torn_tail_bytes = data_.size();
    return report;
  }
  std::uint64_t offset = kSegmentHeaderSize;
  report.valid_end = offset;
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
    while (next < data_.size() && !valid_record_at(next, record)) ++next;
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

}  // namespace mqkit::detail::spool
