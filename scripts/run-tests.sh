#!/usr/bin/env bash
# Sets up (packages, configure, build) and runs the whole test suite with ctest.
# Usage: scripts/run-tests.sh [--sanitize | --tsan]
#   --sanitize: ASan+UBSan build in build-asan/
#   --tsan:     ThreadSanitizer build in build-tsan/ (a data race fails the test)
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=build
cmake_args=()
ctest_args=()
case "${1:-}" in
  --sanitize)
    build_dir=build-asan
    cmake_args=(-DPROTOHOST_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug)
    # A small quarantine: the memory-bound tests measure the host's RSS, which
    # ASan's default 256 MiB of held-back freed memory would dominate.
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:quarantine_size_mb=8
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    ;;
  --tsan)
    build_dir=build-tsan
    # Optimised (with line info for the reports): TSan's 5-15x slowdown on top
    # of -O0 would stretch the timing-bound tests.
    cmake_args=(-DPROTOHOST_TSAN=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo)
    # halt_on_error: the first race ends the process (exit 66), so the test
    # that provoked it fails. The suppressions are for uninstrumented system
    # libraries only; tests/tsan.supp says why for each.
    export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/tests/tsan.supp"
    ;;
  "") ;;
  *) echo "usage: $0 [--sanitize | --tsan]" >&2; exit 2 ;;
esac
scripts/bootstrap.sh "$build_dir" "${cmake_args[@]}"
cd "$build_dir"
# A test that skips (GTEST_SKIP: not root, a missing tool) is reported by ctest
# as "Skipped", never as passed. In CI, where everything is installed and the
# suite runs as root, a skip means a missing set-up step: it fails the run.
set +e
ctest --output-on-failure --timeout 600 -j2 "${ctest_args[@]}" 2>&1 | tee ctest-output.log
status=${PIPESTATUS[0]}
set -e
if [[ ${CI:-} == true ]] && grep -q '(Skipped)$' ctest-output.log; then
  echo "run-tests: tests were skipped in CI (see 'did not run' above): a missing package or privilege" >&2
  exit 1
fi
exit "$status"
