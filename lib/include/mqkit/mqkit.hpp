// The whole public API of mqkit in one include.
#pragma once

#include "mqkit/duration.hpp"
#include "mqkit/envelope.hpp"
#include "mqkit/error.hpp"
#include "mqkit/message_id.hpp"
#include "mqkit/producer.hpp"
#include "mqkit/publisher.hpp"
#include "mqkit/reliable_consumer.hpp"
#include "mqkit/reliable_producer.hpp"
#include "mqkit/retry_policy.hpp"
#include "mqkit/socket_options.hpp"
#include "mqkit/spool.hpp"
#include "mqkit/stop.hpp"
#include "mqkit/subscriber.hpp"
#include "mqkit/topic_filter.hpp"
#include "mqkit/version.hpp"
#include "mqkit/worker.hpp"
