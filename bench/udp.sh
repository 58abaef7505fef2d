#!/usr/bin/env bash
# UDP echo datagrams/s (issue 11): the limit (bench/udp_echo.cpp, recvmmsg +
# sendmmsg, nothing else) and the host's UDP echo (plugins/echo, threads = 1,
# rate limit off), back to back within each repetition, servers pinned to one
# core and the load generator to the other; the ratio host/limit is taken per
# repetition and its median reported.
#
#   bench/udp.sh [--reps N] [--duration S] [--sockets N] [--depth N] [--bytes N]
#                [--host-build DIR]   (default build: DIR/bin/host, DIR/plugins/echo.so)
# Environment: BENCH_KIT_BUILD (default build-bench-kit), BENCH_PORT_BASE (default 17300).
set -euo pipefail
BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
REPS=3 DURATION=3 SOCKETS=8 DEPTH=16 BYTES=64
HOST_BUILD="$ROOT/build"
KIT="${BENCH_KIT_BUILD:-$ROOT/build-bench-kit}"
PORT_BASE="${BENCH_PORT_BASE:-17300}"
while (($#)); do
  case "$1" in
    --reps) REPS="$2"; shift ;;
    --duration) DURATION="$2"; shift ;;
    --sockets) SOCKETS="$2"; shift ;;
    --depth) DEPTH="$2"; shift ;;
    --bytes) BYTES="$2"; shift ;;
    --host-build) HOST_BUILD="$2"; shift ;;
    *) echo "udp.sh: unknown option $1" >&2; exit 64 ;;
  esac
  shift
done
cmake -S "$BENCH" -B "$KIT" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$KIT" --target udp_echo udp_loadgen -j2 >/dev/null
[[ -x $HOST_BUILD/bin/host && -f $HOST_BUILD/plugins/echo.so ]] || { echo "udp.sh: no host in $HOST_BUILD" >&2; exit 1; }
HOST_BUILD="$(cd "$HOST_BUILD" && pwd)"  # plugins_dir below resolves against the config's directory

SERVER_CPU=1 LOADGEN_CPU=0
(( $(nproc) >= 2 )) || { SERVER_CPU=0; LOADGEN_CPU=0; }
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
limit_port=$PORT_BASE host_port=$((PORT_BASE + 1))
cat >"$work/host.ini" <<INI
[host]
plugins_dir = $HOST_BUILD/plugins
threads = 1
log_level = warning
[listener.echo_udp]
plugin = echo
listen = udp:$host_port:interface=127.0.0.1
max_datagrams_per_s_per_ip = 0
INI

# run SERVER_CMD...: starts it pinned, waits until it answers, prints the loadgen line, stops it.
run_row() {
  local port=$1; shift
  taskset -c "$SERVER_CPU" "$@" >"$work/server.log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do  # until it answers one datagram (bounded: 100 x 0.1 s)
    if python3 -c "import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.1); s.sendto(b'p', ('127.0.0.1', $port)); s.recv(9)" 2>/dev/null; then break; fi
  done
  taskset -c "$LOADGEN_CPU" "$KIT/bin/udp_loadgen" "$port" "$DURATION" "$SOCKETS" "$DEPTH" "$BYTES"
  if ! kill -TERM "$pid" 2>/dev/null; then echo "udp.sh: the server had exited:" >&2; cat "$work/server.log" >&2; fi
  wait "$pid" || true
}

echo "| rep | limit (udp_echo) datagrams/s | host echo datagrams/s | host / limit |"
echo "|---|---|---|---|"
ratios=()
for rep in $(seq "$REPS"); do
  limit=$(run_row "$limit_port" "$KIT/bin/udp_echo" "$limit_port" | awk '{print $2}')
  host=$(run_row "$host_port" "$HOST_BUILD/bin/host" --config "$work/host.ini" | awk '{print $2}')
  ratio=$(awk -v h="$host" -v l="$limit" 'BEGIN { printf "%.3f", (l > 0 ? h / l : 0) }')
  ratios+=("$ratio")
  echo "| $rep | $limit | $host | $ratio |"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo
echo "median host/limit: $median ($SOCKETS sockets x depth $DEPTH x $BYTES B, ${DURATION} s per row, $REPS reps)"
