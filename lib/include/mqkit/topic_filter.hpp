// TopicFilter: the consumer-group filters of the reliable proxy, in the
// AMQP topic-exchange syntax: dot-separated words, `*` matches exactly one
// word, `#` matches zero or more words. "order.*" matches "order.created";
// "order.#" matches "order", "order.created" and "order.created.eu".
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace mqkit {

class TopicFilter {
 public:
  // Throws Error(bad_argument) when a `*` or `#` is part of a word ("ord*")
  // or a word is empty ("order..created").
  explicit TopicFilter(std::string pattern);

  bool matches(std::string_view topic) const noexcept;
  const std::string& pattern() const noexcept { return pattern_; }

  friend bool operator==(const TopicFilter& a, const TopicFilter& b) {
    return a.pattern_ == b.pattern_;
  }

 private:
  std::string pattern_;
  std::vector<std::string> words_;
};

}  // namespace mqkit
