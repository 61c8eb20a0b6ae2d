#!/bin/sh
# Sanitizers: the whole suite built with ASan+UBSan (gcc), then the proxy,
# reliable-client and spool tests built with TSan (clang). Any report fails.
set -eu
cd "$(dirname "$0")/.."
# A build type of its own (no default flags): -O1 -g1 builds much faster than
# RelWithDebInfo (-O2 -g) and still gives reports with file and line.
common="-DMQKIT_BUILD_BENCH=OFF -DMQKIT_INSTALL=OFF -DMQKIT_WERROR=OFF -DCMAKE_BUILD_TYPE=Sanitize"

echo "== ASan+UBSan: every test"
flags="-O1 -g1 -DNDEBUG -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
cmake -S . -B build-asan $common -DCMAKE_CXX_FLAGS="$flags" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" > /dev/null
cmake --build build-asan -j2 > /dev/null
# lsan.supp: libzmq's own leak of messages queued to a peer that dies (not ours).
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  LSAN_OPTIONS=suppressions=$PWD/.ci/lsan.supp ctest --test-dir build-asan -j2 --output-on-failure

echo "== TSan: proxy, stream, reliable clients, spool"
cmake -S . -B build-tsan $common -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DMQKIT_BUILD_EXAMPLES=OFF -DCMAKE_CXX_FLAGS="-O1 -g1 -DNDEBUG -fsanitize=thread -fno-omit-frame-pointer" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=thread" > /dev/null
cmake --build build-tsan -j2 --target unit_tests spool_tests spool_crash_child > /dev/null
# libzmq is not instrumented: its own lock-free queues look like races to TSan.
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/.ci/tsan.supp"
build-tsan/tests/unit_tests "[proxy],[protocol],[retry],[topic_filter],[topology],[stream],[stream_device]"
build-tsan/tests/spool_tests
echo "sanitizers: all passed"
