// A libFuzzer entry point for the target named by MQKIT_FUZZ_TARGET.
#include "harnesses.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  mqkit::fuzz::MQKIT_FUZZ_TARGET(data, size);
  return 0;
}
