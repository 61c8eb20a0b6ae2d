#!/bin/sh
# Fuzzing: builds the libFuzzer targets with clang, ASan and UBSan, and runs
# each for FUZZ_SECONDS (default 40: six targets, about 5 minutes with the
# build) or FUZZ_RUNS executions (default
# 1,000,000), whichever comes first, starting from tests/fuzz/corpus/TARGET.
# New inputs go to a scratch corpus; a crash leaves its input in
# build-fuzz/crashes/ and fails the job (keep it in the corpus as a
# regression input once fixed: the normal suite replays the corpus).
# FUZZ_TARGETS="envelope topology" runs only those.
set -eu
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-40}
runs=${FUZZ_RUNS:-1000000}
flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1"
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMQKIT_FUZZ=ON -DMQKIT_BUILD_TESTS=OFF \
  -DMQKIT_BUILD_EXAMPLES=OFF -DMQKIT_BUILD_BENCH=OFF -DMQKIT_INSTALL=OFF -DMQKIT_WERROR=OFF \
  -DCMAKE_CXX_FLAGS="$flags -fsanitize=fuzzer-no-link" -DCMAKE_C_FLAGS="$flags" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" > /dev/null
cmake --build build-fuzz -j2 --target mqkit_fuzz_envelope mqkit_fuzz_proxy_command \
  mqkit_fuzz_spool_segment mqkit_fuzz_topology mqkit_fuzz_proxy_state mqkit_fuzz_stream_state > /dev/null
mkdir -p build-fuzz/crashes
status=0
for target in ${FUZZ_TARGETS:-envelope proxy_command spool_segment topology proxy_state stream_state}; do
  scratch=build-fuzz/corpus/$target
  mkdir -p "$scratch"
  if ! build-fuzz/tests/fuzz/mqkit_fuzz_$target "$scratch" tests/fuzz/corpus/$target \
      -max_total_time="$seconds" -runs="$runs" -rss_limit_mb=2048 -timeout=10 \
      -artifact_prefix=build-fuzz/crashes/$target- -print_final_stats=1 \
      > build-fuzz/$target.log 2>&1; then
    echo "fuzz $target: FAILED (input in build-fuzz/crashes/)"
    tail -40 build-fuzz/$target.log
    status=1
  fi
  echo "fuzz $target: $(grep -o 'stat::number_of_executed_units: *[0-9]*' build-fuzz/$target.log | grep -o '[0-9]*$') executions in at most ${seconds}s, corpus $(ls "$scratch" | wc -l) new inputs"
done
exit $status
