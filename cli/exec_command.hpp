// Runs a user's shell command once per message (`consume --exec`): the
// payload on its stdin, message fields in its environment.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mqkit::cli {

using Environment = std::vector<std::pair<std::string, std::string>>;

// Runs `/bin/sh -c command`, writes `input` to its stdin and waits for it.
// Returns the exit status (128+N when killed by signal N). Throws
// mqkit::Error when the process cannot be started.
int run_command(const std::string& command, std::string_view input, const Environment& extra_env);

}  // namespace mqkit::cli
