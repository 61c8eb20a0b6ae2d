// SegmentReader: reads one segment file and walks its records, checking each
// one's length and CRC. A bad record followed by good ones is corruption: it
// is skipped, counted and reported, and reading resumes at the next valid
// record (a version-2 segment salts every CRC, so a record-shaped run of
// bytes inside a payload never passes). A bad record with nothing valid
// after it is a torn tail (a write cut short by a crash, or one still in
// progress): reading stops there. Never allocates more than the file's size,
// and the search for the next valid record hashes at most a few times the
// file's size: past that the rest of the file is reported as corrupt.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "log/env.hpp"
#include "log/format.hpp"

namespace mqkit::detail::log {

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

// How a segment's header reads.
enum class HeaderState {
  ok,
  incomplete,  // shorter than a header: a crash right after the file was created
  damaged,     // a whole header with a bad byte: reported, records still read
};

class SegmentReader {
 public:
  // Reads the whole file through `env`. Throws Error when it cannot be read
  // or was written by a newer format version; a bad header is reported, not
  // thrown (its records are still read where they check out).
  SegmentReader(std::string path, std::uint64_t max_record_size, Env& env = Env::posix());

  // Calls `visit` for every valid record in file order.
  ScanReport scan(const std::function<void(const RecordView&)>& visit) const;

  // How many records the bytes from `from` (a torn tail) may have held when
  // they are damage rather than a write cut short: 0 when the first record
  // there does not fit in the file (a crash mid-write); otherwise the whole
  // records its length fields walk through, plus, past the first length
  // that does not, at most one per `min_record_size` bytes left. An upper
  // bound, so that a log numbering its records never gives one's number again.
  std::uint64_t records_in_damaged_tail(std::uint64_t from,
                                        std::uint64_t min_record_size) const noexcept;

  // Whether every byte from `from` on is zero (blocks a crash left
  // allocated but unwritten, or a cut-back that had to zero them).
  bool zeros_from(std::uint64_t from) const noexcept;

  const std::string& path() const noexcept { return path_; }
  HeaderState header_state() const noexcept { return header_state_; }
  bool header_ok() const noexcept { return header_state_ == HeaderState::ok; }
  const std::string& header_problem() const noexcept { return header_problem_; }
  std::uint64_t file_size() const noexcept { return data_.size(); }
  // Where this segment's record CRCs start (for appending more records).
  std::uint32_t crc_seed() const noexcept { return crc_seed_; }

 private:
  // The record at `offset` if it is complete and its CRC matches.
  bool valid_record_at(std::uint64_t offset, RecordView& out) const noexcept;
  // Finds the salt from the first two records (when the header's is
  // damaged) and uses it; false, changing nothing, when they do not agree.
  bool use_solved_salt() noexcept;

  std::string path_;
  std::string data_;
  std::uint64_t max_record_size_;
  HeaderState header_state_ = HeaderState::ok;
  std::string header_problem_;
  std::uint32_t crc_seed_ = 0;  // CRC of the salt (version 2), 0 (version 1)
};

// A fresh segment header for `salt` (kSegmentHeaderSize bytes into `out`).
void write_segment_header(char* out, std::uint32_t salt) noexcept;
// A random non-zero salt for a new segment.
std::uint32_t new_salt();
// Where a segment's CRCs start: crc32c of the salt's 4 bytes (0 for none).
std::uint32_t crc_seed(std::uint32_t salt) noexcept;
// Appends one framed record to `out`, its CRC started from `seed`.
void append_record(std::string& out, std::uint32_t seed, RecordType type, std::string_view body);
// Whether the framed record in `record` (header and body) checks out.
bool record_checks_out(std::string_view record, std::uint32_t seed) noexcept;

}  // namespace mqkit::detail::log
