# Sourced by the benchmark scripts that start the host themselves
# (fibonacci-group-commit.sh, fibonacci-postgres.sh): CPU pinning, one host
# process started and stopped, port checks.
#   SCPU, LCPU   the host's and the load generator's cores (BENCH_SERVER_CPU,
#                BENCH_LOADGEN_CPU; default 1 and 0; none on a 1-core machine)
#   pin CPU CMD...                 runs CMD pinned to CPU (unpinned when CPU is empty)
#   listening PORT                 true when something listens on 127.0.0.1:PORT
#   start_host BIN INI LOG PORT... starts BIN --config INI pinned to SCPU, output to LOG,
#                                  and waits (15 s at most) until every PORT listens; exits 1 if not
#   stop_host                      TERM (KILL after 15 s) to the host and waits for it
# HOST_PID is the running host's PID ("" when none).

SCPU=${BENCH_SERVER_CPU:-1} LCPU=${BENCH_LOADGEN_CPU:-0}
(($(nproc) >= 2)) || SCPU="" LCPU=""
HOST_PID=""

pin() { local c=$1; shift; if [[ -n $c ]]; then taskset -c "$c" "$@"; else "$@"; fi; }

listening() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }

start_host() {  # bin ini log port...
  local bin=$1 ini=$2 log=$3 p
  shift 3
  for p in "$@"; do
    if listening "$p"; then echo "$(basename "$0"): port $p is in use" >&2; exit 1; fi
  done
  # Not through pin(): $! must be the host itself, not a subshell around it.
  if [[ -n $SCPU ]]; then
    taskset -c "$SCPU" "$bin" --config "$ini" >"$log" 2>&1 &
  else
    "$bin" --config "$ini" >"$log" 2>&1 &
  fi
  HOST_PID=$!
  local deadline=$((SECONDS + 15))
  for p in "$@"; do
    until listening "$p"; do
      kill -0 "$HOST_PID" 2>/dev/null && ((SECONDS <= deadline)) ||
        { echo "the host did not start, see $log" >&2; cat "$log" >&2; exit 1; }
      sleep 0.05
    done
  done
}

stop_host() {
  [[ -n $HOST_PID ]] || return 0
  kill -TERM "$HOST_PID" 2>/dev/null || true
  local deadline=$((SECONDS + 15))
  while kill -0 "$HOST_PID" 2>/dev/null; do
    if ((SECONDS > deadline)); then kill -KILL "$HOST_PID" 2>/dev/null || true; fi
    sleep 0.05
  done
  wait "$HOST_PID" 2>/dev/null || true
  HOST_PID=""
}
