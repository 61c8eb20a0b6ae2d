#!/bin/sh
# Configures, builds and runs tests/package against mqkit's build tree
# (find_package(mqkit) with mqkit_DIR=BUILD, nothing installed).
set -eu
build_dir=$1
source_dir=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/mqkit-build-tree-XXXXXX)
trap 'rm -rf "$work"' EXIT
cmake -S "$source_dir" -B "$work/build" -Dmqkit_DIR="$build_dir" > "$work/configure.log"
cmake --build "$work/build" > "$work/build.log"
"$work/build/consumer"
