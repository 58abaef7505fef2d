#!/usr/bin/env bash
# Sets up (packages, configure, build) and runs the whole test suite with ctest.
# Usage: scripts/run-tests.sh [--sanitize]   (--sanitize: ASan+UBSan build in build-asan/)
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=build
cmake_args=()
if [[ "${1:-}" == "--sanitize" ]]; then
  build_dir=build-asan
  cmake_args=(-DPROTOHOST_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug)
  # A small quarantine: the memory-bound tests measure the host's RSS, which
  # ASan's default 256 MiB of held-back freed memory would dominate.
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:quarantine_size_mb=8
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
fi
scripts/bootstrap.sh "$build_dir" "${cmake_args[@]}"
cd "$build_dir"
ctest --output-on-failure --timeout 600 -j2
