// Message ids made in a fork()ed child differ from its parent's.
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <array>

#include "mqkit/message_id.hpp"

TEST_CASE("a forked child does not repeat its parent's message ids", "[message_id]") {
  (void)mqkit::MessageId::generate();  // the parent's thread is seeded before the fork
  int pipe_fds[2];
  REQUIRE(::pipe(pipe_fds) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    const auto id = mqkit::MessageId::generate();
    const bool written = ::write(pipe_fds[1], id.bytes().data(), id.bytes().size()) ==
                         static_cast<ssize_t>(id.bytes().size());
    ::_exit(written ? 0 : 1);
  }
  ::close(pipe_fds[1]);
  const auto parent_id = mqkit::MessageId::generate();
  std::array<std::uint8_t, mqkit::MessageId::kSize> child_bytes{};
  const auto n = ::read(pipe_fds[0], child_bytes.data(), child_bytes.size());
  ::close(pipe_fds[0]);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(n == static_cast<ssize_t>(child_bytes.size()));
  const mqkit::MessageId child_id(child_bytes);
  CHECK(child_id != parent_id);
  // The random half (bytes 8..15) is chosen per thread: a child must choose anew.
  CHECK_FALSE(
      std::equal(child_bytes.begin() + 8, child_bytes.end(), parent_id.bytes().begin() + 8));
}
