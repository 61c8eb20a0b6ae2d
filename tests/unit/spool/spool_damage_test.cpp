// Damage on real files that once lost confirmed records (issue 12): one bad
// header byte in the newest segment, a record forged inside a payload that
// a resync took for real, an unbounded segment size, settled newer segments
// that were never reclaimed, offsets reused after a corrupt stream record,
// and a damaged stream record returned altered or thrown out of read().
// Only the public API, so the same tests run against an older build.
#include <catch2/catch.hpp>

#include <array>
#include <filesystem>
#include <fstream>
#include <string>

#include "helpers.hpp"
#include "mqkit/error.hpp"
#include "mqkit/spool.hpp"
#include "mqkit/stream_log.hpp"

namespace fs = std::filesystem;
using mqkit::MessageId;
using mqkit::Spool;
using mqkit::SpoolOptions;
using mqkit::StreamLog;
using mqkit::StreamLogOptions;

namespace {

std::vector<std::string> files_with(const std::string& dir, const std::string& extension) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == extension) names.push_back(e.path().string());
  std::sort(names.begin(), names.end());
  return names;
}

void patch(const std::string& path, std::uint64_t offset, const std::string& bytes) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void flip(const std::string& path, std::uint64_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.get(c);
  c = static_cast<char>(c ^ 0x5a);
  f.seekp(static_cast<std::streamoff>(offset));
  f.put(c);
}

std::string contents(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// CRC32C, bit by bit: the test builds its forged record without the library.
std::uint32_t crc32c(std::string_view bytes) {
  std::uint32_t crc = 0xFFFFFFFFu;
  for (const char c : bytes) {
    crc ^= static_cast<std::uint8_t>(c);
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
  }
  return ~crc;
}

std::string u32(std::uint32_t v) {
  return std::string(reinterpret_cast<const char*>(&v), 4);
}

// A framed ACK record of (id, group) as format version 1 writes it.
std::string forged_ack(const MessageId& id, const std::string& group) {
  std::string body = "\x92\xc4\x10";
  body.append(reinterpret_cast<const char*>(id.bytes().data()), 16);
  body += static_cast<char>(0xa0 | group.size());
  body += group;
  const std::string typed = "\x02" + body;
  return u32(static_cast<std::uint32_t>(body.size())) + u32(crc32c(typed)) + typed;
}

}  // namespace

TEST_CASE("one bad byte in the newest segment's header loses no stored message",
          "[spool][damage]") {
  mqkit::test::TempDir dir;
  const std::string path = dir.path().string();
  std::vector<MessageId> ids;
  {
    Spool spool(path);
    for (int i = 0; i < 20; ++i) {
      ids.push_back(MessageId::generate());
      REQUIRE(spool.publish_sync(ids.back(), {"g"}, "message-" + std::to_string(i)));
    }
  }
  const std::string segment = files_with(path, ".seg").back();
  SECTION("in the magic") {
    flip(segment, 3);
  }
  SECTION("in the version") {
    flip(segment, 8);
  }
  SECTION("in the salt") {
    flip(segment, 13);
  }
  {
    Spool spool(path);
    CHECK(spool.pending("g") == ids);
    CHECK(spool.recovery().corrupt_records > 0);  // reported: `spool check` exits 1
    CHECK_FALSE(spool.recovery().problems.empty());
    const auto m = spool.read(ids[7]);
    REQUIRE(m);
    CHECK(m->frame == "message-7");
    ids.push_back(MessageId::generate());
    REQUIRE(spool.publish_sync(ids.back(), {"g"}, "after"));
  }
  CHECK(contents(segment).size() > 16 * 20);  // the damaged file was kept whole
  CHECK(mqkit::read_spool(path).report.corrupt_records > 0);
  Spool again(path);
  CHECK(again.pending("g") == ids);
}

TEST_CASE("a record forged inside a payload is never taken for real by the resync",
          "[spool][damage]") {
  mqkit::test::TempDir dir;
  const std::string path = dir.path().string();
  const auto victim = MessageId::generate();
  const auto carrier = MessageId::generate();
  const auto after = MessageId::generate();
  {
    Spool spool(path);
    REQUIRE(spool.publish_sync(victim, {"g"}, "the victim"));
    REQUIRE(spool.publish_sync(carrier, {"g"}, "xx" + forged_ack(victim, "g") + "yy"));
    REQUIRE(spool.publish_sync(after, {"g"}, "after"));
  }
  // Damage the carrier's length field: recovery resynchronises through its
  // payload, where the forged ACK waits.
  const auto records = mqkit::read_spool(path).records;
  REQUIRE(records.size() == 3);
  const std::string segment = files_with(path, ".seg").back();
  patch(segment, records[1].offset, "\x01\x00\x00\x7f");
  Spool spool(path);
  const auto pending = spool.pending("g");
  CHECK(std::find(pending.begin(), pending.end(), victim) != pending.end());
  CHECK(std::find(pending.begin(), pending.end(), after) != pending.end());
  CHECK(spool.recovery().corrupt_records > 0);
}

TEST_CASE("a segment size that record positions cannot address is refused", "[spool][damage]") {
  mqkit::test::TempDir dir;
  SpoolOptions options;
  options.segment_size = 5ull * 1024 * 1024 * 1024;
  CHECK_THROWS_WITH(Spool(dir.file("spool"), options), Catch::Contains("4 GiB"));
  StreamLogOptions stream;
  stream.segment_size = 5ull * 1024 * 1024 * 1024;
  CHECK_THROWS_WITH(StreamLog(dir.file("stream"), stream), Catch::Contains("4 GiB"));
}

TEST_CASE("settled newer segments are reclaimed while the oldest stays mostly live",
          "[spool][damage]") {
  mqkit::test::TempDir dir;
  SpoolOptions options;
  options.durability = mqkit::Durability::never;
  options.segment_size = 16 * 1024;
  Spool spool(dir.path().string(), options);
  // The oldest segment: live messages that nobody acks.
  for (int i = 0; i < 30; ++i)
    REQUIRE(spool.publish_sync(MessageId::generate(), {"slow"}, std::string(400, 's')));
  // Then many segments whose messages are all acked.
  for (int i = 0; i < 400; ++i) {
    const auto id = MessageId::generate();
    REQUIRE(spool.publish_sync(id, {"fast"}, std::string(400, 'f')));
    REQUIRE(spool.ack_sync(id, "fast"));
  }
  spool.flush();
  CHECK(spool.pending("slow").size() == 30);
  CHECK(spool.stats().segments <= 3);  // the live oldest, maybe one more, the active one
  CHECK(spool.bytes() < 4 * 16 * 1024);
}

TEST_CASE("a corrupt stream record is skipped and its offset is never given again",
          "[stream][damage]") {
  mqkit::test::TempDir dir;
  const std::string path = dir.path().string();
  {
    StreamLog log(path);
    for (int i = 0; i < 10; ++i) log.append("record-" + std::to_string(i));
  }
  const std::string segment = files_with(path, ".log").back();
  const std::string data = contents(segment);
  const auto at = data.find("record-5");
  REQUIRE(at != std::string::npos);
  patch(segment, at, "RECORD");
  StreamLog log(path);
  CHECK(log.next_offset() == 10);  // 5 is lost, not given to a new record
  const auto head = log.read(0, 100);
  REQUIRE(head.size() == 5);
  CHECK(head.back().frame == "record-4");
  const auto tail = log.read(6, 100);
  REQUIRE(tail.size() == 4);
  CHECK(tail.front().offset == 6);
  CHECK(tail.front().frame == "record-6");
  CHECK(log.append("new") == 10);
}

TEST_CASE("a stream record damaged after it was written is never returned altered",
          "[stream][damage]") {
  mqkit::test::TempDir dir;
  const std::string path = dir.path().string();
  StreamLog log(path);
  for (int i = 0; i < 10; ++i) log.append("record-" + std::to_string(i));
  const std::string segment = files_with(path, ".log").back();
  const auto at = contents(segment).find("record-3");
  REQUIRE(at != std::string::npos);
  patch(segment, at, "RECORD");
  std::vector<mqkit::StreamRecord> records;
  REQUIRE_NOTHROW(records = log.read(0, 100));
  for (const auto& r : records) CHECK(r.frame == "record-" + std::to_string(r.offset));
  CHECK(records.size() == 3);  // contiguous up to the damaged one
}

TEST_CASE("one bad byte in the newest stream segment's header loses no record",
          "[stream][damage]") {
  mqkit::test::TempDir dir;
  const std::string path = dir.path().string();
  {
    StreamLog log(path);
    for (int i = 0; i < 10; ++i) log.append("record-" + std::to_string(i));
  }
  patch(files_with(path, ".log").back(), 2, "X");
  {
    StreamLog log(path);
    CHECK(log.next_offset() == 10);
    const auto records = log.read(0, 100);
    REQUIRE(records.size() == 10);
    CHECK(records[9].frame == "record-9");
    CHECK(log.append("after") == 10);
  }
  StreamLog log(path);
  CHECK(log.read(0, 100).size() == 11);
}

TEST_CASE("segments numbered past 99,999,999 are found by recovery", "[spool][damage]") {
  mqkit::test::TempDir dir;
  const std::string path = dir.path().string();
  std::vector<MessageId> ids;
  {
    Spool spool(path);
    for (int i = 0; i < 5; ++i) {
      ids.push_back(MessageId::generate());
      REQUIRE(spool.publish_sync(ids.back(), {"g"}, "message-" + std::to_string(i)));
    }
  }
  fs::rename(files_with(path, ".seg").back(), path + "/100000000.seg");
  {
    Spool spool(path);
    CHECK(spool.pending("g") == ids);
    ids.push_back(MessageId::generate());
    REQUIRE(spool.publish_sync(ids.back(), {"g"}, "after"));
  }
  CHECK(mqkit::read_spool(path).records.size() == 6);
  Spool spool(path);
  CHECK(spool.pending("g") == ids);
}

TEST_CASE("compaction keeps a segment whose live message cannot be read back", "[spool][damage]") {
  mqkit::test::TempDir dir;
  const std::string path = dir.path().string();
  SpoolOptions options;
  options.segment_size = 4 * 1024;
  Spool spool(path, options);
  std::vector<MessageId> ids;
  for (int i = 0; i < 40; ++i) {
    ids.push_back(MessageId::generate());
    REQUIRE(spool.publish_sync(ids.back(), {"g"},
                               "payload-" + std::to_string(100 + i) + std::string(250, 'p')));
  }
  const std::string first = files_with(path, ".seg").front();
  const auto at = contents(first).find("payload-102");
  REQUIRE(at != std::string::npos);
  patch(first, at, "PAYLOAD");      // message 2 is damaged on disk after it was stored
  CHECK_FALSE(spool.read(ids[2]));  // never returned altered
  for (std::size_t i = 0; i < ids.size(); ++i)
    if (i != 2 && i != 3) REQUIRE(spool.ack_sync(ids[i], "g"));
  spool.flush();
  CHECK(fs::exists(first));  // not deleted: message 2 is still stored there
  CHECK(spool.stats().unreadable == 1);
  const auto m = spool.read(ids[3]);
  REQUIRE(m);
  CHECK(m->frame.starts_with("payload-103"));
}

TEST_CASE(
    "a corrupt last stream record is not taken for a torn tail: its offset is never given again",
    "[stream][damage]") {
  mqkit::test::TempDir dir;
  const std::string path = dir.path().string();
  {
    StreamLog log(path);
    for (int i = 0; i < 10; ++i) log.append("record-" + std::to_string(i));
  }
  const std::string segment = files_with(path, ".log").back();
  const auto at = contents(segment).find("record-9");
  REQUIRE(at != std::string::npos);
  patch(segment, at, "RECORD");  // a whole record with a bad CRC: damage, not a write cut short
  StreamLog log(path);
  CHECK(log.next_offset() == 10);
  CHECK(log.read(0, 100).size() == 9);
  CHECK(log.damaged_from(9) == 1);
  CHECK(log.append("new") == 10);
}

TEST_CASE("a message stored twice stays acked after restart when newer segments are reclaimed",
          "[spool][damage]") {
  mqkit::test::TempDir dir;
  SpoolOptions options;
  options.durability = mqkit::Durability::never;
  options.segment_size = 16 * 1024;
  const auto twice = MessageId::generate();
  {
    Spool spool(dir.path().string(), options);
    // The oldest segment, mostly live: it stays, with the first copy of `twice`.
    REQUIRE(spool.publish_sync(twice, {"g"}, std::string(400, 't')));
    for (int i = 0; i < 30; ++i)
      REQUIRE(spool.publish_sync(MessageId::generate(), {"slow"}, std::string(400, 's')));
    // Stored again (a sender's retry) in a newer segment, then acked.
    for (int i = 0; i < 40; ++i) {
      const auto id = MessageId::generate();
      REQUIRE(spool.publish_sync(id, {"fast"}, std::string(400, 'f')));
      REQUIRE(spool.ack_sync(id, "fast"));
    }
    REQUIRE(spool.publish_sync(twice, {"g"}, std::string(400, 't')));
    REQUIRE(spool.ack_sync(twice, "g"));
    // Later traffic, all acked: the segments of the second copy and its ack
    // are settled and reclaimed.
    for (int i = 0; i < 400; ++i) {
      const auto id = MessageId::generate();
      REQUIRE(spool.publish_sync(id, {"fast"}, std::string(400, 'f')));
      REQUIRE(spool.ack_sync(id, "fast"));
    }
    spool.flush();
    REQUIRE(spool.pending("g").empty());
  }
  Spool spool(dir.path().string(), options);
  CHECK(spool.pending("slow").size() == 30);
  CHECK(spool.pending("g").empty());  // the ack still settles the first copy
}

TEST_CASE(
    "a newest stream segment whose damaged header leaves its record unreadable is kept "
    "and its offsets are not given again",
    "[stream][damage]") {
  mqkit::test::TempDir dir;
  const std::string path = dir.path().string();
  {
    StreamLog log(path);
    log.append("record-0");  // one record: too few to find a damaged salt again
  }
  const std::string segment = files_with(path, ".log").back();
  const std::string before = contents(segment);
  patch(segment, 12, "SALT");
  StreamLog log(path);
  CHECK(log.next_offset() >= 1);
  CHECK(log.append("new") >= 1);
  const auto after = contents(segment);
  CHECK(after.substr(16) == before.substr(16));  // the damaged file kept for inspection
}

TEST_CASE("a bad byte in the newest spool record is reported as damage, not cut as a torn tail",
          "[spool][damage]") {
  mqkit::test::TempDir dir;
  const std::string path = dir.path().string();
  {
    Spool spool(path);
    for (int i = 0; i < 10; ++i)
      REQUIRE(spool.publish_sync(MessageId::generate(), {"g"}, "message-" + std::to_string(i)));
  }
  const std::string segment = files_with(path, ".seg").back();
  const std::string before = contents(segment);
  const auto at = before.find("message-9");
  REQUIRE(at != std::string::npos);
  patch(segment, at, "MESSAGE");
  {
    Spool spool(path);
    CHECK(spool.recovery().corrupt_records >= 1);  // a confirmed message is gone: say so
    CHECK(spool.recovery().torn_tail_bytes == 0);
    CHECK(spool.pending("g").size() == 9);
    CHECK(contents(segment).size() == before.size());  // kept for inspection
    REQUIRE(spool.publish_sync(MessageId::generate(), {"g"}, "after"));
  }
  Spool spool(path);
  CHECK(spool.pending("g").size() == 10);
}
