// Waiting for input the way every mqkit loop does: on one socket, woken
// early by the loop's own stop event or the process-wide stop.
#pragma once

#include <zmq.hpp>

#include <chrono>
#include <cstddef>

#include "wire/stop_event.hpp"

namespace mqkit::detail {

enum class Wait { readable, timeout, stopped };

// zmq::poll, with a signal counted as "nothing ready yet": cppzmq throws on
// EINTR, and any handled signal (a CLI's SIGINT handler, libFuzzer's SIGALRM
// watchdog) interrupts a poll. Returns the number of ready items.
int poll_ignoring_signals(zmq::pollitem_t* items, std::size_t count,
                          std::chrono::milliseconds timeout);

// `timeout` -1 waits until input or a stop; EINTR counts as a timeout.
Wait wait_readable(zmq::socket_t& socket, const StopEvent& stop, std::chrono::milliseconds timeout);
// The same, woken early by the process-wide stop only.
Wait wait_readable(zmq::socket_t& socket, std::chrono::milliseconds timeout);

}  // namespace mqkit::detail
