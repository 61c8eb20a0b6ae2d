// StreamLog, one partition of a stream: ordered offsets that survive a
// reopen and a torn tail, reads from any offset or time, and retention that
// deletes whole old segments but never the active one.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "helpers.hpp"
#include "mqkit/error.hpp"
#include "mqkit/stream_log.hpp"

using mqkit::StreamLog;
using mqkit::StreamLogOptions;

namespace {

std::string frame_of(std::uint64_t n) {
  return "record-" + std::to_string(n) + std::string(90, '.');
}

}  // namespace

TEST_CASE("100,000 appended records come back after a reopen, in order and intact", "[stream]") {
  mqkit::test::TempDir dir;
  StreamLogOptions options;
  options.durability = mqkit::Durability::never;
  options.segment_size = 1024 * 1024;
  {
    StreamLog log(dir.path().string(), options);
    std::vector<std::string> frames;
    for (std::uint64_t batch = 0; batch < 100; ++batch) {
      frames.clear();
      for (std::uint64_t i = 0; i < 1000; ++i) frames.push_back(frame_of(batch * 1000 + i));
      const std::vector<std::string_view> views(frames.begin(), frames.end());
      CHECK(log.append_batch(views) == batch * 1000);
    }
    CHECK(log.next_offset() == 100000);
    CHECK(log.segments() > 5);
  }
  StreamLog log(dir.path().string(), options);
  CHECK(log.first_offset() == 0);
  CHECK(log.next_offset() == 100000);
  std::uint64_t expected = 0;
  for (int turn = 0; turn < 1000 && expected < 100000; ++turn) {
    for (const auto& r : log.read(expected, 4096)) {
      REQUIRE(r.offset == expected);
      REQUIRE(r.frame == frame_of(expected));
      ++expected;
    }
  }
  CHECK(expected == 100000);
  CHECK(log.read(100000, 10).empty());
  CHECK_THROWS_WITH(log.read(100001, 10), Catch::Contains("past the end"));
  CHECK(log.append("one more") == 100000);
}

TEST_CASE("a torn tail is cut on reopen and appends continue after the last whole record",
          "[stream]") {
  mqkit::test::TempDir dir;
  std::string last;
  {
    StreamLog log(dir.path().string());
    for (int i = 0; i < 10; ++i) log.append(frame_of(static_cast<std::uint64_t>(i)));
  }
  for (const auto& entry : std::filesystem::directory_iterator(dir.path()))
    if (entry.path().extension() == ".log") last = entry.path().string();
  std::filesystem::resize_file(last, std::filesystem::file_size(last) - 5);
  StreamLog log(dir.path().string());
  CHECK(log.next_offset() == 9);
  CHECK(log.read(0, 100).size() == 9);
  CHECK(log.append("after the crash") == 9);
  CHECK(log.read(9, 1).at(0).frame == "after the crash");
}

TEST_CASE("reads start from an offset or a time", "[stream]") {
  mqkit::test::TempDir dir;
  StreamLogOptions options;
  options.segment_size = 4096;
  StreamLog log(dir.path().string(), options);
  for (std::uint64_t i = 0; i < 300; ++i) log.append(frame_of(i), 1000000 + i * 10);
  CHECK(log.offset_at(0) == 0);
  CHECK(log.offset_at(1000000 + 1500) == 150);
  CHECK(log.offset_at(1000000 + 1505) == 151);
  CHECK(log.offset_at(99999999) == 300);
  CHECK(log.read(150, 1).at(0).time_ms == 1000000 + 1500);
}

TEST_CASE("retention deletes whole old segments by size and by age, never the active one",
          "[stream]") {
  mqkit::test::TempDir dir;
  StreamLogOptions options;
  options.durability = mqkit::Durability::never;
  options.segment_size = 8 * 1024;
  options.retain_bytes = 32 * 1024;
  {
    StreamLog log(dir.path().string(), options);
    for (std::uint64_t i = 0; i < 2000; ++i) log.append(frame_of(i), 5000);
    CHECK(log.bytes() > 100 * 1024);
    const auto removed = log.enforce_retention(6000);
    CHECK(removed > 0);
    CHECK(log.bytes() <= 32 * 1024);
    CHECK(log.first_offset() == removed);  // whole segments, oldest first
    CHECK_THROWS_WITH(log.read(0, 1), Catch::Contains("no longer retained"));
    CHECK(log.read(log.first_offset(), 1).at(0).frame == frame_of(removed));
  }
  options.retain_bytes = 0;
  options.retain_age = std::chrono::milliseconds(1000);
  StreamLog log(dir.path().string(), options);
  const auto next = log.next_offset();
  (void)log.enforce_retention(5000 + 500);  // young enough: nothing goes
  CHECK(log.segments() > 1);
  (void)log.enforce_retention(5000 + 2000);  // everything is old: all but the active one go
  CHECK(log.segments() == 1);
  CHECK(log.next_offset() == next);
  CHECK(log.append("still writing") == next);
}

TEST_CASE("a read of a few large records reads only those from the file, not the whole segment",
          "[stream]") {
  mqkit::test::TempDir dir;
  StreamLogOptions options;
  options.durability = mqkit::Durability::never;
  constexpr std::size_t kRecordSize = 1024 * 1024;
  {
    StreamLog log(dir.path().string(), options);
    const std::string big(kRecordSize, 'x');
    const std::vector<std::string_view> frames(40, big);  // one segment of 40 MiB
    log.append_batch(frames);
  }
  // In a child whose address space may grow by 24 MiB at most: one MiB asked
  // for must not become a 40 MiB read.
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    int status = 2;
    try {
      StreamLog log(dir.path().string(), options);
      std::ifstream self("/proc/self/status");
      std::string line;
      rlim_t size = 0;
      while (std::getline(self, line))
        if (line.starts_with("VmSize:")) size = std::stoull(line.substr(7)) * 1024;
      const rlimit limit{size + 24 * 1024 * 1024, RLIM_INFINITY};
      ::setrlimit(RLIMIT_AS, &limit);
      status = log.read(0, 40, kRecordSize).size() == 1 ? 0 : 3;
    } catch (...) {
      status = 1;  // out of memory
    }
    ::_exit(status);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}
