// Progress lines of long CLI work (cli/progress.hpp): drawn on a terminal
// only. Without one (pipes, files: scripts and tests) stderr is exactly
// what it was; under a pseudo-terminal the line appears and is redrawn.
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <thread>

#include "cli_support.hpp"
#include "progress.hpp"

using namespace std::chrono_literals;
using mqkit::test::TempDir;

namespace {

// A command whose stderr (and stdin) is a pseudo-terminal; stdout goes to
// /dev/null. Killed and reaped by the destructor if it still runs.
class TerminalChild {
 public:
  explicit TerminalChild(const std::vector<std::string>& argv) {
    pid_ = ::forkpty(&master_, nullptr, nullptr, nullptr);
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      const int null = ::open("/dev/null", O_WRONLY);
      ::dup2(null, STDOUT_FILENO);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
  }
  ~TerminalChild() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (master_ >= 0) ::close(master_);
  }
  TerminalChild(const TerminalChild&) = delete;
  TerminalChild& operator=(const TerminalChild&) = delete;

  // Everything the terminal showed until the command ended; its exit code
  // (-1 when it did not end within `timeout`).
  std::pair<int, std::string> finish(std::chrono::milliseconds timeout) {
    std::string shown;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{master_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char buffer[4096];
      const auto n = ::read(master_, buffer, sizeof buffer);
      if (n <= 0) break;  // EIO: the command ended and closed the terminal
      shown.append(buffer, static_cast<std::size_t>(n));
    }
    // The terminal closes as the command exits: its exit status follows soon.
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) != pid_) {
      if (std::chrono::steady_clock::now() >= deadline) return {-1, shown};
      std::this_thread::sleep_for(10ms);
    }
    pid_ = -1;
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, shown};
  }

 private:
  pid_t pid_ = -1;
  int master_ = -1;
};

}  // namespace

TEST_CASE("the progress line says done of total, confirms, rate and time left",
          "[integration][progress]") {
  using mqkit::cli::Progress;
  CHECK(Progress::format("send", "sent", 41200, 100000, true, 41000, 2.0) ==
        "mqkit send: 41,200 of 100,000 sent, 41,000 confirmed, 20,500/s, 0:03 left");
  CHECK(Progress::format("consume", "consumed", 5, 0, false, 0, 1.0) ==
        "mqkit consume: 5 consumed, 5/s");
  CHECK(Progress::format("dlq replay", "replayed", 10, 10, true, 10, 1.0) ==
        "mqkit dlq replay: 10 of 10 replayed, 10 confirmed, 10/s");
}

TEST_CASE(
    "send --count and consume --count print progress on a terminal and nothing extra "
    "without one",
    "[integration][progress]") {
  TempDir dir;
  auto proxy = mqkit::test::start_proxy(dir, {"--group", "jobs=#"});
  const std::string front = proxy.endpoints.in, back = proxy.endpoints.out;
  // Slow enough (--rate) that a progress line would be drawn (after 200 ms).
  const std::vector<std::string> send{"send", "--proxy", front, "--topic", "job", "--count",
                                      "1500", "--size",  "16",  "--rate",  "2000"};

  // Without a terminal: the one summary line of today, no progress.
  const auto [code, err] = mqkit::test::run_mqkit(send);
  INFO(err);
  CHECK(code == 0);
  CHECK(err.find('\r') == std::string::npos);
  CHECK(err.find(" left") == std::string::npos);
  CHECK(std::count(err.begin(), err.end(), '\n') == 1);
  const auto [consume_code, consume_err] =
      mqkit::test::run_mqkit({"consume", "--proxy", back, "--group", "jobs", "--count", "1500"},
                             mqkit::test::Stdio{false, "", dir.file("consumed.txt")});
  CHECK(consume_code == 0);
  CHECK(consume_err.empty());
  CHECK(mqkit::test::count_newlines(dir.file("consumed.txt")) == 1500);

  // Under a pseudo-terminal: the progress line, redrawn in place.
  std::vector<std::string> on_terminal{mqkit::test::mqkit_binary()};
  on_terminal.insert(on_terminal.end(), send.begin(), send.end());
  TerminalChild sender(on_terminal);
  const auto [sent_code, shown] = sender.finish(60s);
  INFO(shown);
  CHECK(sent_code == 0);
  CHECK_THAT(shown, Catch::Contains("\rmqkit send: ") && Catch::Contains(" of 1,500 sent, ") &&
                        Catch::Contains(" confirmed, ") && Catch::Contains("/s"));
  CHECK_THAT(shown, Catch::Contains("1,500 of 1,500 sent, 1,500 confirmed"));

  // consume --count on a terminal (its payloads go elsewhere), while a slow send feeds it.
  // Feed it only once it is attached: a consumer that attaches late (a loaded
  // machine) takes the whole backlog within the 200 ms before a first line.
  const auto workers = [&] { return mqkit::test::stat_json(proxy.endpoints.stats).at("workers"); };
  REQUIRE(mqkit::test::wait_for([&] { return workers() == 0; }, 20s));
  TerminalChild consumer({mqkit::test::mqkit_binary(), "consume", "--proxy", back, "--group",
                          "jobs", "--count", "3000"});
  REQUIRE(mqkit::test::wait_for([&] { return workers() == 1; }, 20s));
  const auto [fed_code, fed_err] = mqkit::test::run_mqkit(send);
  CHECK(fed_code == 0);
  const auto [consumed_code, consumed_shown] = consumer.finish(60s);
  INFO(consumed_shown);
  CHECK(consumed_code == 0);
  CHECK_THAT(consumed_shown,
             Catch::Contains("\rmqkit consume: ") && Catch::Contains("3,000 of 3,000 consumed"));
}
