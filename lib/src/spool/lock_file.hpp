// Moved to lib/src/log/ (shared by the spool and the stream log); this
// header keeps the old include path and namespace working.
#pragma once

#include "log/lock_file.hpp"

namespace mqkit::detail::spool {
using namespace mqkit::detail::log;
}  // namespace mqkit::detail::spool
