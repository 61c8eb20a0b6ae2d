// The fuzz targets' bodies, shared by the libFuzzer binaries (fuzz_main.cpp,
// built with -DMQKIT_FUZZ=ON and clang) and by the regression test that
// replays every corpus file in the normal suite (corpus_test.cpp). Each
// must accept any bytes without crashing, hanging or leaking.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mqkit::fuzz {

void envelope(const std::uint8_t* data, std::size_t size);       // the envelope decoder
void proxy_command(const std::uint8_t* data, std::size_t size);  // the proxy's command decoder
void spool_segment(const std::uint8_t* data, std::size_t size);  // record reader and recovery
void topology(const std::uint8_t* data, std::size_t size);       // the topology YAML loader
// The proxy in process, driven by a program of well-formed commands from
// producers and workers (publish, attach, ack, nack, in_progress, credit,
// detach, group rm, dlq rm): it must never crash, and must still confirm
// a fresh message at the end.
void proxy_state(const std::uint8_t* data, std::size_t size);
// The same for the stream device: publish, subscribe, commit, heartbeat, detach.
void stream_state(const std::uint8_t* data, std::size_t size);

}  // namespace mqkit::fuzz
