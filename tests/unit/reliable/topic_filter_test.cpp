// Consumer-group topic filters in the AMQP topic-exchange syntax.
#include <catch2/catch.hpp>

#include "mqkit/error.hpp"
#include "mqkit/topic_filter.hpp"

using mqkit::TopicFilter;

TEST_CASE("a star matches exactly one word", "[topic_filter]") {
  const TopicFilter f("order.*");
  CHECK(f.matches("order.created"));
  CHECK_FALSE(f.matches("order"));
  CHECK_FALSE(f.matches("order.created.eu"));
  CHECK_FALSE(f.matches("orders.created"));
  CHECK(TopicFilter("*.created").matches("order.created"));
  CHECK(TopicFilter("*.*").matches("a.b"));
}

TEST_CASE("a hash matches zero or more words", "[topic_filter]") {
  const TopicFilter f("order.#");
  CHECK(f.matches("order"));
  CHECK(f.matches("order.created"));
  CHECK(f.matches("order.created.eu.west"));
  CHECK_FALSE(f.matches("invoice.created"));
  CHECK(TopicFilter("#").matches("anything.at.all"));
  CHECK(TopicFilter("#").matches(""));
  CHECK(TopicFilter("#.created").matches("order.created"));
  CHECK(TopicFilter("#.created").matches("created"));
  CHECK(TopicFilter("a.#.z").matches("a.z"));
  CHECK(TopicFilter("a.#.z").matches("a.b.c.z"));
  CHECK_FALSE(TopicFilter("a.#.z").matches("a.b.c"));
  CHECK(TopicFilter("#.b.#").matches("a.b.c"));
  CHECK(TopicFilter("a.*.#").matches("a.b"));
  CHECK_FALSE(TopicFilter("a.*.#").matches("a"));
}

TEST_CASE("plain words match only themselves", "[topic_filter]") {
  CHECK(TopicFilter("order.created").matches("order.created"));
  CHECK_FALSE(TopicFilter("order.created").matches("order.created.eu"));
  CHECK_FALSE(TopicFilter("order.created").matches("order"));
}

TEST_CASE("malformed filters are refused with what to write instead", "[topic_filter]") {
  CHECK_THROWS_WITH(TopicFilter("ord*"), Catch::Contains("whole words"));
  CHECK_THROWS_WITH(TopicFilter("order..created"), Catch::Contains("empty word"));
  CHECK_THROWS_AS(TopicFilter("a.#b"), mqkit::Error);
}
