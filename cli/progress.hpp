// Progress of long CLI work (`send --count N`, `consume --count N`,
// `dlq replay`) as one line on stderr, redrawn in place a few times a second:
//   mqkit send: 41,200 of 100,000 sent, 41,000 confirmed, 20,512/s, 0:02 left
// Only when stderr is a terminal: scripts, pipes and tests see exactly the
// output they saw before. Counters may be bumped from any thread; the line
// is drawn by the thread that calls advance() or confirm().
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace mqkit::cli {

class Progress {
 public:
  // `command` prefixes the line ("send"); `verb` says what done counts
  // ("sent", "consumed", "replayed"); `total` 0 means unknown. Nothing is
  // drawn unless `wanted` and stderr is a terminal.
  Progress(std::string command, std::string verb, std::uint64_t total, bool counts_confirms = false,
           bool wanted = true);
  ~Progress();  // finish()
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  bool enabled() const noexcept { return enabled_; }
  void advance(std::uint64_t n = 1);
  void confirm(std::uint64_t n = 1);
  // Draws the last figures and ends the line (the next output starts clean).
  void finish();

  // The line as drawn, for the figures given (exposed for unit tests).
  static std::string format(const std::string& command, const std::string& verb, std::uint64_t done,
                            std::uint64_t total, bool counts_confirms, std::uint64_t confirmed,
                            double seconds);

 private:
  void maybe_draw(bool force);

  const std::string command_, verb_;
  const std::uint64_t total_;
  const bool counts_confirms_;
  const bool enabled_;
  const std::chrono::steady_clock::time_point start_;
  std::atomic<std::uint64_t> done_{0}, confirmed_{0};
  std::mutex draw_mutex_;
  std::chrono::steady_clock::time_point last_draw_{};
  bool drawn_ = false, finished_ = false;
};

}  // namespace mqkit::cli
