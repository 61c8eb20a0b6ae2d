// The reliable proxy's command frames: every command round-trips; bad
// frames are typed errors, never crashes.
#include <catch2/catch.hpp>

#include <random>

#include "protocol/commands.hpp"

using namespace mqkit::detail::protocol;
using mqkit::errc;
using mqkit::MessageId;

namespace {
CommandFrame round_trip(const CommandFrame& in) {
  CommandFrame out;
  const auto result = decode_command(encode_command(in), out);
  INFO(result.detail);
  REQUIRE(result);
  CHECK(out.command == in.command);
  return out;
}
}  // namespace

TEST_CASE("every proxy command survives encode and decode", "[protocol]") {
  const auto a = MessageId::generate(), b = MessageId::generate();
  SECTION("publish with and without a target group") {
    CommandFrame c{.command = Command::publish, .target_group = "billing"};
    CHECK(round_trip(c).target_group == "billing");
    c.target_group.reset();
    CHECK_FALSE(round_trip(c).target_group);
  }
  SECTION("a batch of confirmations") {
    CommandFrame c{.command = Command::confirm};
    c.confirmations = {{a, ConfirmStatus::stored, ""}, {b, ConfirmStatus::rejected, "too large"}};
    const auto out = round_trip(c);
    REQUIRE(out.confirmations.size() == 2);
    CHECK(out.confirmations[1].id == b);
    CHECK(out.confirmations[1].status == ConfirmStatus::rejected);
    CHECK(out.confirmations[1].reason == "too large");
  }
  SECTION("attach and attached") {
    CommandFrame c{
        .command = Command::attach, .group = "email", .filters = {"order.#"}, .credit = 100};
    const auto out = round_trip(c);
    CHECK(out.group == "email");
    CHECK(out.filters == std::vector<std::string>{"order.#"});
    CHECK(out.credit == 100);
    c.command = Command::attached;
    c.ack_timeout_ms = 30000;
    c.heartbeat_ms = 1000;
    const auto attached = round_trip(c);
    CHECK(attached.filters == std::vector<std::string>{"order.#"});
    CHECK(attached.ack_timeout_ms == 30000);
    CHECK(attached.heartbeat_ms == 1000);
  }
  SECTION("acks and in-progress in batches") {
    CommandFrame c{.command = Command::ack};
    for (int i = 0; i < 10000; ++i) c.ids.push_back(MessageId::generate());
    CHECK(round_trip(c).ids == c.ids);
    c.command = Command::in_progress;
    CHECK(round_trip(c).ids == c.ids);
  }
  SECTION("nack retry and dead") {
    CommandFrame c{.command = Command::nack,
                   .ids = {a},
                   .action = NackAction::dead,
                   .reason = "card declined"};
    const auto out = round_trip(c);
    CHECK(out.ids == std::vector<MessageId>{a});
    CHECK(out.action == NackAction::dead);
    CHECK(out.reason == "card declined");
  }
  SECTION("deliver carries each message's attempt (1.3), and a 1.2 deliver has none") {
    const auto out = round_trip({.command = Command::deliver, .group = "g", .attempts = {1, 3}});
    CHECK(out.group == "g");
    CHECK(out.attempts == std::vector<std::uint32_t>{1, 3});
    CHECK(out.minor == mqkit::detail::protocol::kProtocolMinor);
    CHECK(round_trip({.command = Command::deliver, .group = "g"}).attempts.empty());
  }
  SECTION("the argument-less and small ones") {
    CHECK(round_trip({.command = Command::credit, .credit = 7}).credit == 7);
    CHECK(round_trip({.command = Command::deliver, .group = "g"}).group == "g");
    CHECK(round_trip({.command = Command::error, .reason = "no such group"}).reason ==
          "no such group");
    round_trip({.command = Command::heartbeat});
    round_trip({.command = Command::detach});
  }
  SECTION("the stream reader's commands") {
    const auto sub = round_trip(
        {.command = Command::subscribe, .group = "audit", .credit = 500, .from = "1:42"});
    CHECK(sub.group == "audit");
    CHECK(sub.from == "1:42");
    CHECK(sub.credit == 500);
    const std::vector<Position> positions{{0, 7}, {3, 1ull << 40}};
    const auto assigned = round_trip({.command = Command::assigned,
                                      .group = "audit",
                                      .heartbeat_ms = 1000,
                                      .positions = positions});
    CHECK(assigned.positions == positions);
    CHECK(assigned.heartbeat_ms == 1000);
    CHECK(round_trip({.command = Command::commit, .positions = positions}).positions == positions);
    const auto records =
        round_trip({.command = Command::records, .partition = 2, .offset = 99, .times = {5, 6, 7}});
    CHECK(records.partition == 2);
    CHECK(records.offset == 99);
    CHECK(records.times == std::vector<std::uint64_t>{5, 6, 7});
    const auto notice =
        round_trip({.command = Command::notice, .reason = "gone", .partition = 1, .offset = 120});
    CHECK(notice.offset == 120);
    CHECK(notice.reason == "gone");
  }
}

TEST_CASE("bad command frames are typed errors", "[protocol]") {
  CommandFrame out;
  auto encoded = encode_command({.command = Command::credit, .credit = 5});
  SECTION("an unknown major version") {
    encoded[5] = 2;  // after 0x95 and "MQK" (A3 4D 51 4B)
    CHECK(decode_command(encoded, out).code == errc::unsupported_version);
  }
  SECTION("no magic") {
    encoded[2] = 'X';
    CHECK(decode_command(encoded, out).code == errc::malformed);
  }
  SECTION("cut short") {
    CHECK(decode_command(std::string_view(encoded).substr(0, encoded.size() - 1), out).code ==
          errc::truncated);
  }
  SECTION("an unknown command") {
    const auto bogus = encode_command({.command = Command::heartbeat});
    std::string renamed = bogus;
    renamed.replace(renamed.find("heartbeat"), 9, "heartbeet");
    CHECK(decode_command(renamed, out).code == errc::malformed);
  }
  SECTION("arguments of the wrong type") {
    auto attach = encode_command({.command = Command::attach, .group = "g", .credit = 1});
    attach.back() = '\xc0';  // credit: nil instead of a number
    CHECK(decode_command(attach, out).code == errc::wrong_type);
  }
}

TEST_CASE("random bytes never crash the command decoder", "[protocol]") {
  std::mt19937 rng(99);
  const auto valid = encode_command(
      {.command = Command::attach, .group = "email", .filters = {"order.*"}, .credit = 10});
  CommandFrame out;
  for (int i = 0; i < 20000; ++i) {
    std::string frame = valid;
    if (i % 2 == 0) {
      frame.resize(rng() % 64);
      for (auto& c : frame) c = static_cast<char>(rng());
    } else {
      for (int k = 0; k < 2; ++k) frame[rng() % frame.size()] = static_cast<char>(rng());
    }
    (void)decode_command(frame, out);
  }
  SUCCEED("decoded or refused 20000 frames");
}
