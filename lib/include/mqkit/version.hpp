// Library version and the envelope protocol version it speaks.
#pragma once

#define MQKIT_VERSION_MAJOR 0
#define MQKIT_VERSION_MINOR 1
#define MQKIT_VERSION_PATCH 0

namespace mqkit {
inline constexpr int kVersionMajor = MQKIT_VERSION_MAJOR;
inline constexpr int kVersionMinor = MQKIT_VERSION_MINOR;
inline constexpr int kVersionPatch = MQKIT_VERSION_PATCH;
}  // namespace mqkit
