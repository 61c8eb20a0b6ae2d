// SegmentReader: reads one segment file and walks its records, checking each
// one's length and CRC. A bad record followed by good ones is corruption: it
// is skipped, counted and reported, and reading resumes at the next valid
// record. A bad record with nothing valid after it is a torn tail (a write
// cut short by a crash, or one still in progress): reading stops there.
// Never allocates more than the file's size.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "spool/format.hpp"

namespace mqkit::detail::spool {

struct RecordView {
  RecordType type;
  std::string_view body;
  std::uint64_t offset;  // of the record header in the file
  std::uint32_t size;    // header plus body
};

struct ScanReport {
  std::uint64_t records = 0;          // valid records visited
  std::uint64_t corrupt_records = 0;  // bad stretches skipped in the middle
  std::uint64_t corrupt_bytes = 0;    // bytes in those stretches
  std::uint64_t valid_end = 0;        // offset just after the last valid record
  std::uint64_t torn_tail_bytes = 0;  // bytes after valid_end
  std::vector<std::string> problems;  // one line per finding, naming file and offset
};

class SegmentReader {
 public:
  // Reads the whole file. Throws Error when it cannot be read or was written
  // by a newer format version; a bad header is reported, not thrown.
  SegmentReader(std::string path, std::uint64_t max_record_size);

  // Calls `visit` for every valid record in file order.
  ScanReport scan(const std::function<void(const RecordView&)>& visit) const;

  const std::string& path() const noexcept { return path_; }
  // False when the 16-byte header is missing or wrong (e.g. a crash right
  // after the file was created).
  bool header_ok() const noexcept { return header_ok_; }
  std::uint64_t file_size() const noexcept { return data_.size(); }

 private:
  // The record at `offset` if it is complete and its CRC matches.
  bool valid_record_at(std::uint64_t offset, RecordView& out) const noexcept;

  std::string path_;
  std::string data_;
  std::uint64_t max_record_size_;
  bool header_ok_ = false;
  std::string header_problem_;
};

// Writes a segment header into `out` (kSegmentHeaderSize bytes).
void write_segment_header(char* out) noexcept;
// Appends one framed record to `out`.
void append_record(std::string& out, RecordType type, std::string_view body);

}  // namespace mqkit::detail::spool
