// Word-wise matching with backtracking over the last `#` seen, as in glob
// matching: linear in practice, never exponential.
#include "mqkit/topic_filter.hpp"

#include "mqkit/error.hpp"

namespace mqkit {
namespace {

std::vector<std::string_view> split_words(std::string_view text) {
  std::vector<std::string_view> words;
  if (text.empty()) return words;
  for (std::size_t start = 0;;) {
    const std::size_t dot = text.find('.', start);
    words.push_back(text.substr(start, dot == std::string_view::npos ? dot : dot - start));
    if (dot == std::string_view::npos) return words;
    start = dot + 1;
  }
}

}  // namespace

TopicFilter::TopicFilter(std::string pattern) : pattern_(std::move(pattern)) {
  for (const auto word : split_words(pattern_)) {
    if (word.empty())
      throw Error(
          errc::bad_argument,
          "topic filter '" + pattern_ + "' has an empty word: use words separated by single dots");
    if (word != "*" && word != "#" && word.find_first_of("*#") != std::string_view::npos)
      throw Error(
          errc::bad_argument,
          "topic filter '" + pattern_ + "': * and # must be whole words, e.g. order.* or order.#");
    words_.emplace_back(word);
  }
}

bool TopicFilter::matches(std::string_view topic) const noexcept {
  const auto words = split_words(topic);
  std::size_t p = 0, t = 0;
  std::size_t star_p = std::string::npos, star_t = 0;  // last '#' and where it resumed
  while (t < words.size()) {
    if (p < words_.size() && words_[p] == "#") {
      star_p = p++;
      star_t = t;
    } else if (p < words_.size() && (words_[p] == "*" || words_[p] == words[t])) {
      ++p;
      ++t;
    } else if (star_p != std::string::npos) {
      p = star_p + 1;  // let the last '#' swallow one more word
      t = ++star_t;
    } else {
      return false;
    }
  }
  while (p < words_.size() && words_[p] == "#") ++p;
  return p == words_.size();
}

}  // namespace mqkit
