// `mqkit spool dump` and `mqkit spool check` on real spool directories,
// including one that a live writer owns.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "child_process.hpp"
#include "helpers.hpp"
#include "mqkit/envelope.hpp"
#include "mqkit/spool.hpp"

using namespace std::chrono_literals;
using mqkit::test::ChildProcess;

namespace {

struct Output {
  int code;
  std::vector<std::string> lines;
  std::string err;
};

Output run(const std::vector<std::string>& args) {
  std::vector<std::string> argv{mqkit::test::mqkit_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  ChildProcess p(argv);
  Output out{};
  while (auto line = p.read_line(10s)) out.lines.push_back(*line);
  const auto code = p.wait(10s);
  REQUIRE(code);
  out.code = *code;
  out.err = p.stderr_text();
  return out;
}

}  // namespace

TEST_CASE("spool dump shows every record and a summary, also while the spool is in use",
          "[integration][spool]") {
  mqkit::test::TempDir dir;
  mqkit::Spool spool(dir.path().string());  // stays open: dump must not need the lock
  const auto first = mqkit::Envelope::make("order.created");
  REQUIRE(spool.publish_sync(first.id, {"email", "billing"}, mqkit::encode(first, "order 1")));
  const auto second = mqkit::Envelope::make("order.created");
  REQUIRE(spool.publish_sync(second.id, {"email"}, mqkit::encode(second, "line\nbreak")));
  REQUIRE(spool.ack_sync(first.id, "email"));

  const auto out = run({"spool", "dump", dir.path().string()});
  INFO(out.err);
  REQUIRE(out.code == 0);
  REQUIRE(out.lines.size() >= 4);
  CHECK_THAT(out.lines[0], Catch::StartsWith("PUBLISH " + first.id.to_string()) &&
                               Catch::Contains("group=email,billing") &&
                               Catch::Contains("topic=order.created") &&
                               Catch::Contains("payload=order 1"));
  CHECK_THAT(out.lines[1], Catch::Contains("payload=line\\nbreak"));
  CHECK_THAT(out.lines[2], Catch::StartsWith("ACK " + first.id.to_string()));
  CHECK_THAT(out.lines[3], Catch::Contains("3 records"));
  CHECK(std::find(out.lines.begin(), out.lines.end(), "-- pending for email: 1") !=
        out.lines.end());
  CHECK(std::find(out.lines.begin(), out.lines.end(), "-- pending for billing: 1") !=
        out.lines.end());

  const auto json = run({"spool", "dump", "--json", dir.path().string()});
  REQUIRE(json.code == 0);
  CHECK_THAT(json.lines[0], Catch::Contains("\"type\":\"PUBLISH\"") &&
                                Catch::Contains("\"groups\":[\"email\",\"billing\"]"));
  CHECK_THAT(json.lines.back(), Catch::Contains("\"pending\":{"));
}

TEST_CASE("spool check exits 1 on corruption and dump still reads every intact record",
          "[integration][spool]") {
  mqkit::test::TempDir dir;
  std::vector<mqkit::MessageId> ids;
  {
    mqkit::Spool spool(dir.path().string());
    for (int i = 0; i < 5; ++i) {
      ids.push_back(mqkit::MessageId::generate());
      REQUIRE(spool.publish_sync(ids.back(), {"g"}, "frame " + std::to_string(i)));
    }
  }
  CHECK(run({"spool", "check", dir.path().string()}).code == 0);
  const auto records = mqkit::read_spool(dir.path().string()).records;
  {
    std::fstream f(dir.path() / "00000001.seg", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(records[2].offset + 11));
    f.put('\x7f');
  }
  const auto check = run({"spool", "check", dir.path().string()});
  CHECK(check.code == 1);
  CHECK_THAT(check.err, Catch::Contains("corrupt"));
  const auto dump = run({"spool", "dump", dir.path().string()});
  CHECK(dump.code == 0);
  CHECK(std::count_if(dump.lines.begin(), dump.lines.end(),
                      [](const auto& l) { return l.starts_with("PUBLISH"); }) == 4);
}
