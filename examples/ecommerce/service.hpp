// What the four consumer services share: find the proxy through the
// topology file, join the service's group, handle orders until SIGTERM, and
// say how many were handled.
//
// Each service keeps DATA_DIR/applied.log (AppliedLog): one line per order
// it applied, shared by the group's workers. An order already in it is acked
// without doing the work again (a redelivery), and acks go out only after
// the log is synced (once per batch), so what the log says survives a crash
// of the service or of the proxy: it is the service's own total.
//
// usage: SERVICE TOPOLOGY_FILE DATA_DIR
#pragma once

#include <functional>
#include <string>

#include "applied_log.hpp"
#include "mqkit/reliable_consumer.hpp"
#include "order.hpp"

namespace ecommerce {

struct ServiceLogic {
  // Does the order's work and returns what its applied.log line should add
  // (may be empty). Throw mqkit::Reject to dead-letter the order, anything
  // else to have it retried.
  std::function<std::string(const Order&, const mqkit::Message&)> apply;
  // Folds one line of the log (this worker's or another's) into the
  // service's state; empty when the log is all the state there is.
  AppliedLog::OnLine on_applied;
};

int run_service(int argc, char** argv, const std::string& group, const ServiceLogic& logic);

// Writes `text` to `path` atomically (a reader never sees half a file).
void write_file_atomically(const std::string& path, const std::string& text);

}  // namespace ecommerce
