// Waiting for input the way every mqkit loop does: on one socket, woken
// early by the loop's own stop event or the process-wide stop.
#pragma once

#include <zmq.hpp>

#include <chrono>

#include "wire/stop_event.hpp"

namespace mqkit::detail {

enum class Wait { readable, timeout, stopped };

// `timeout` -1 waits until input or a stop; EINTR counts as a timeout.
Wait wait_readable(zmq::socket_t& socket, const StopEvent& stop, std::chrono::milliseconds timeout);

}  // namespace mqkit::detail
