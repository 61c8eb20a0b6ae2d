// The progress line: drawn with "\r" and erase-to-end-of-line, at most five
// times a second, only on a terminal.
#include "progress.hpp"

#include <unistd.h>

#include <cstdio>

namespace mqkit::cli {

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kRedraw = std::chrono::milliseconds(200);

// 1234567 -> "1,234,567"
std::string grouped(std::uint64_t n) {
  std::string digits = std::to_string(n), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// 125 -> "2:05", 3725 -> "1:02:05"
std::string clock_time(std::uint64_t seconds) {
  char text[32];
  if (seconds >= 3600)
    std::snprintf(text, sizeof text, "%llu:%02llu:%02llu",
                  static_cast<unsigned long long>(seconds / 3600),
                  static_cast<unsigned long long>(seconds / 60 % 60),
                  static_cast<unsigned long long>(seconds % 60));
  else
    std::snprintf(text, sizeof text, "%llu:%02llu", static_cast<unsigned long long>(seconds / 60),
                  static_cast<unsigned long long>(seconds % 60));
  return text;
}

}  // namespace

Progress::Progress(std::string command, std::string verb, std::uint64_t total, bool counts_confirms,
                   bool wanted)
    : command_(std::move(command)),
      verb_(std::move(verb)),
      total_(total),
      counts_confirms_(counts_confirms),
      enabled_(wanted && ::isatty(STDERR_FILENO) == 1),
      start_(Clock::now()) {}

Progress::~Progress() {
  finish();
}

void Progress::advance(std::uint64_t n) {
  done_ += n;
  if (enabled_) maybe_draw(false);
}

void Progress::confirm(std::uint64_t n) {
  confirmed_ += n;
  if (enabled_) maybe_draw(false);
}

void Progress::finish() {
  if (!enabled_) return;
  std::lock_guard lock(draw_mutex_);
  if (finished_) return;
  finished_ = true;
  if (!drawn_) return;  // quick work: no line was ever drawn, none to end
  const double seconds = std::chrono::duration<double>(Clock::now() - start_).count();
  const auto line = format(command_, verb_, done_, total_, counts_confirms_, confirmed_, seconds);
  std::fprintf(stderr, "\r%s\x1b[K\n", line.c_str());
  std::fflush(stderr);
}

void Progress::maybe_draw(bool force) {
  std::unique_lock lock(draw_mutex_, std::try_to_lock);
  if (!lock || finished_) return;  // another thread is drawing: skip this one
  const auto now = Clock::now();
  // The first line only after a moment: short commands print nothing extra.
  if (!force && (now - (drawn_ ? last_draw_ : start_)) < kRedraw) return;
  last_draw_ = now;
  drawn_ = true;
  const double seconds = std::chrono::duration<double>(now - start_).count();
  const auto line = format(command_, verb_, done_, total_, counts_confirms_, confirmed_, seconds);
  std::fprintf(stderr, "\r%s\x1b[K", line.c_str());
  std::fflush(stderr);
}

std::string Progress::format(const std::string& command, const std::string& verb,
                             std::uint64_t done, std::uint64_t total, bool counts_confirms,
                             std::uint64_t confirmed, double seconds) {
  std::string line = "mqkit " + command + ": " + grouped(done);
  if (total > 0) line += " of " + grouped(total);
  line += " " + verb;
  // With confirms (send to a proxy or stream), the work is done when confirmed.
  const std::uint64_t finished = counts_confirms ? confirmed : done;
  if (counts_confirms) line += ", " + grouped(confirmed) + " confirmed";
  if (seconds > 0.05) {
    const double rate = static_cast<double>(finished) / seconds;
    line += ", " + grouped(static_cast<std::uint64_t>(rate)) + "/s";
    if (total > 0 && rate > 0 && finished < total)
      line += ", " +
              clock_time(
                  static_cast<std::uint64_t>(static_cast<double>(total - finished) / rate + 0.5)) +
              " left";
  }
  return line;
}

}  // namespace mqkit::cli
