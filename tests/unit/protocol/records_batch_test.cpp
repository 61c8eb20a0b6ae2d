// The RECORDS batch: what the stream device packs, the reader unpacks, byte
// for byte; a batch that does not hold one whole record per time is refused.
#include <catch2/catch.hpp>

#include "protocol/records_batch.hpp"

using namespace mqkit::detail::protocol;
using mqkit::errc;
using mqkit::StreamRecord;

namespace {

// What the device sends for `records` of partition 3: the command, through
// its encoder and decoder, and the batch frame.
std::pair<CommandFrame, std::string> pack(const std::vector<StreamRecord>& records) {
  CommandFrame c;
  REQUIRE(decode_command(encode_command(records_command(3, records)), c));
  std::string frame(records_frame_size(records), '\0');
  pack_records_frame(records, frame);
  return {c, frame};
}

const std::vector<StreamRecord> kRecords = {
    {.offset = 40, .time_ms = 1000, .frame = "ab"},
    {.offset = 41, .time_ms = 1001, .frame = ""},
    {.offset = 42, .time_ms = 1005, .frame = std::string(300, 'x')}};

}  // namespace

TEST_CASE("a records batch survives packing and unpacking", "[protocol]") {
  const auto [command, frame] = pack(kRecords);
  CHECK(command.command == Command::records);
  CHECK(command.partition == 3);
  CHECK(command.offset == 40);
  CHECK(command.times == std::vector<std::uint64_t>{1000, 1001, 1005});
  // Each record's frame after its length, 4 bytes big-endian.
  CHECK(frame.substr(0, 10) == std::string("\0\0\0\2ab\0\0\0\0", 10));
  CHECK(frame.substr(10, 4) == std::string("\0\0\x01\x2c", 4));
  CHECK(frame.size() == 3 * 4 + 2 + 300);

  std::vector<BatchRecord> out;
  REQUIRE(unpack_records(command, frame, out));
  REQUIRE(out.size() == kRecords.size());
  for (std::size_t i = 0; i < out.size(); ++i) {
    CHECK(out[i].offset == kRecords[i].offset);
    CHECK(out[i].time_ms == kRecords[i].time_ms);
    CHECK(out[i].frame == kRecords[i].frame);
  }
}

TEST_CASE("a records batch that does not hold one whole record per time is refused", "[protocol]") {
  auto [command, frame] = pack(kRecords);
  std::vector<BatchRecord> out;
  SECTION("fewer records than times") {
    command.times.push_back(1006);
    CHECK(unpack_records(command, frame, out).code == errc::malformed);
    CHECK(out.size() == 3);  // the whole ones before the fault
  }
  SECTION("more records than times") {
    command.times.pop_back();
    CHECK(unpack_records(command, frame, out).code == errc::malformed);
    CHECK(out.size() == 2);
  }
  SECTION("a length that runs past the end") {
    frame.pop_back();
    CHECK(unpack_records(command, frame, out).code == errc::truncated);
    CHECK(out.size() == 2);
  }
  SECTION("cut short inside a length") {
    frame.resize(8);
    CHECK(unpack_records(command, frame, out).code == errc::truncated);
    CHECK(out.size() == 1);
  }
  SECTION("after a command that is not RECORDS") {
    command.command = Command::notice;
    CHECK(unpack_records(command, frame, out).code == errc::malformed);
    CHECK(out.empty());
  }
}
