// Process-wide stop: after stop_on_signals(), SIGINT and SIGTERM make every
// run loop (Worker::run, Subscriber::run, devices) return cleanly.
#pragma once

#include <chrono>

namespace mqkit {

// Installs SIGINT/SIGTERM handlers that request a stop. Idempotent.
void stop_on_signals();

// Requests a stop of every run loop. Async-signal-safe.
void request_stop() noexcept;

bool stop_requested() noexcept;

// Blocks until a stop is requested; false if `timeout` passed first (-1: no timeout).
bool wait_for_stop(std::chrono::milliseconds timeout = std::chrono::milliseconds(-1));

}  // namespace mqkit
