// What the four consumer services share: find the proxy through the
// topology file, join the service's group, handle orders until SIGTERM, and
// say how many were handled. Each handled (acked) delivery is also a line
// "ORDER attempt N" in DATA_DIR/handled.log.
//
// usage: SERVICE TOPOLOGY_FILE DATA_DIR
#pragma once

#include <functional>
#include <string>

#include "mqkit/reliable_consumer.hpp"
#include "order.hpp"

namespace ecommerce {

// Handles one order; returns ack / retry / dead, or throws for a retry.
using OrderHandler = std::function<mqkit::Outcome(const Order&, const mqkit::Message&)>;

int run_service(int argc, char** argv, const std::string& group, const OrderHandler& handler);

// Writes `text` to `path` atomically (a reader never sees half a file).
void write_file_atomically(const std::string& path, const std::string& text);

}  // namespace ecommerce
