// MessageId: UUIDv7 layout, text form, ordering and uniqueness.
#include <catch2/catch.hpp>

#include <chrono>
#include <mutex>
#include <set>
#include <thread>

#include "mqkit/message_id.hpp"

TEST_CASE("a message id is a UUIDv7 with the current time", "[message_id]") {
  using namespace std::chrono;
  const auto now = duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
  const auto id = mqkit::MessageId::generate();
  CHECK((id.bytes()[6] >> 4) == 7);
  CHECK((id.bytes()[8] >> 6) == 2);
  CHECK(static_cast<std::int64_t>(id.unix_ms()) >= now);
  CHECK(static_cast<std::int64_t>(id.unix_ms()) < now + 1000);
}

TEST_CASE("the text form round-trips and rejects anything else", "[message_id]") {
  const auto id = mqkit::MessageId::generate();
  const auto text = id.to_string();
  CHECK(text.size() == 36);
  CHECK(text[8] == '-');
  CHECK(mqkit::MessageId::parse(text) == id);
  std::string upper = text;
  for (auto& c : upper) c = static_cast<char>(std::toupper(c));
  CHECK(mqkit::MessageId::parse(upper) == id);
  CHECK_FALSE(mqkit::MessageId::parse(text.substr(1)));
  CHECK_FALSE(mqkit::MessageId::parse("zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz"));
  CHECK_FALSE(mqkit::MessageId::parse("0123456789abcdef0123456789abcdef0123"));
}

TEST_CASE("ids from one thread are strictly increasing, also past 4096 per ms", "[message_id]") {
  auto previous = mqkit::MessageId::generate();
  for (int i = 0; i < 100000; ++i) {
    const auto next = mqkit::MessageId::generate();
    REQUIRE(previous < next);
    previous = next;
  }
}

TEST_CASE("ids from many threads never collide", "[message_id]") {
  std::set<mqkit::MessageId> all;
  std::mutex mutex;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      std::vector<mqkit::MessageId> mine;
      for (int i = 0; i < 20000; ++i) mine.push_back(mqkit::MessageId::generate());
      std::lock_guard lock(mutex);
      all.insert(mine.begin(), mine.end());
    });
  for (auto& t : threads) t.join();
  CHECK(all.size() == 80000);
}
