// The ids a stream stored last, read back from its partitions' tails when it
// opens: a restarted stream still answers `duplicate` to re-sends of records
// it stored just before it stopped.
#pragma once

#include <cstddef>
#include <vector>

#include "mqkit/envelope.hpp"
#include "mqkit/message_id.hpp"
#include "stream/partitions.hpp"

namespace mqkit::devices::detail {

// Up to `window` ids of the newest records of all partitions together,
// newest first by append time (however the keys spread them).
std::vector<MessageId> newest_ids(const Partitions& partitions, std::size_t window,
                                  const Limits& limits);

}  // namespace mqkit::devices::detail
