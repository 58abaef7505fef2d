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
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
fi
scripts/bootstrap.sh "$build_dir" "${cmake_args[@]}"
cd "$build_dir"
ctest --output-on-failure --timeout 600 -j2
