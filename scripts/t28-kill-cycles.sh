#!/usr/bin/env bash
# Reliability row T28 outside the test suite: N cycles (default 200) of the
# fibonacci host on one state file, each ended by SIGKILL -- at a random
# instant, or under strace's syscall injection exactly at a step of the durable
# state write: the pwrite64(2) or the fdatasync(2) of a commit in place, or the
# rename(2) or an fsync(2) (temp file, directory) of the whole-file replacement
# that the first write after a start makes (some rename cycles start from a
# format v1 file: the kill hits its conversion) -- while 8 clients hammer it;
# after each restart: the state parses, no answer repeats, every answer is a
# Fibonacci answer; every kind of injection fired. The suite runs the same test
# with 20 cycles (ctest -L reliability -R T28).
#
#   scripts/t28-kill-cycles.sh [CYCLES] [BUILD_DIR]     (default 200, build)
#
# Prints the per-cycle lines and the summary "[ T28 ] cycles=N repeats=R ...";
# exits non-zero when a cycle failed (a repeat, an unparsable state, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
cycles=${1:-200}
build=${2:-build}
bin="$build/bin/fibonacci_t28_tests"
command -v strace >/dev/null || { echo "t28: strace is missing (scripts/bootstrap.sh installs it)" >&2; exit 2; }
[[ -x $bin ]] || { echo "t28: $bin is missing: cmake --build $build --target fibonacci_t28_tests" >&2; exit 2; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
PROTOHOST_T28_CYCLES=$cycles "$bin" --gtest_brief=0 2>&1 | tee "$log" | grep -E '^\[ cycle|Failure|^\[ T28' || true
grep -q '^\[  PASSED  \] 1 test' "$log" || status=1
summary=$(grep '^\[ T28 \]' "$log" || echo "[ T28 ] no summary: the test stopped early")
echo
echo "$summary"
echo "t28: $( ((status == 0)) && echo PASSED || echo FAILED ) (cycles and repeats above)"
exit $status
