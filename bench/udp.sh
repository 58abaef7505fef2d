#!/usr/bin/env bash
# UDP echo datagrams/s (issue 11): the limit (bench/udp_echo.cpp, recvmmsg +
# sendmmsg, nothing else), the host's UDP echo (plugins/echo, threads = 1,
# rate limit off) and Twisted's DatagramProtocol echo (bench/twisted_udp_echo.py,
# when python3-twisted is installed), back to back within each repetition,
# servers pinned to one core and the load generator to the other; the ratios
# host/limit and host/twisted are taken per repetition and their medians reported,
# for datagrams/s and for datagrams per server CPU-second (utime + stime of the
# server over the row: steadier than datagrams/s when other work shares the machine).
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
limit_port=$PORT_BASE host_port=$((PORT_BASE + 1)) twisted_port=$((PORT_BASE + 2))
TWISTED=0
/usr/bin/python3 -c "import twisted" 2>/dev/null && TWISTED=1
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

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }  # utime + stime of pid $1 (no spaces in these comm names)

# run SERVER_CMD...: starts it pinned, waits until it answers, prints the loadgen line, stops it.
run_row() {
  local port=$1; shift
  taskset -c "$SERVER_CPU" "$@" >"$work/server.log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do  # until it answers one datagram (bounded: 100 x 0.1 s)
    if python3 -c "import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.1); s.sendto(b'p', ('127.0.0.1', $port)); s.recv(9)" 2>/dev/null; then break; fi
  done
  local t0 t1 line
  t0=$(ticks "$pid")
  line=$(taskset -c "$LOADGEN_CPU" "$KIT/bin/udp_loadgen" "$port" "$DURATION" "$SOCKETS" "$DEPTH" "$BYTES")
  t1=$(ticks "$pid")
  # "datagrams_per_s N answered N ..." -> "N per_cpu_s"
  awk -v line="$line" -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" 'BEGIN {
    split(line, f, " "); printf "%s %.0f\n", f[2], (t > 0 ? f[4] / (t / hz) : 0) }'
  if ! kill -TERM "$pid" 2>/dev/null; then echo "udp.sh: the server had exited:" >&2; cat "$work/server.log" >&2; fi
  wait "$pid" || true
}

echo "| rep | limit (udp_echo) datagrams/s | host echo | twisted | host / limit | host / twisted | per CPU-s: limit | host | twisted | host / limit | host / twisted |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
ratios=() tratios=() cratios=() ctratios=()
div() { awk -v a="$1" -v b="$2" -v p="$3" 'BEGIN { printf "%." p "f", (b > 0 ? a / b : 0) }'; }
for rep in $(seq "$REPS"); do
  read -r limit limitc < <(run_row "$limit_port" "$KIT/bin/udp_echo" "$limit_port")
  read -r host hostc < <(run_row "$host_port" "$HOST_BUILD/bin/host" --config "$work/host.ini")
  twisted=0 twistedc=0
  if ((TWISTED)); then
    read -r twisted twistedc < <(run_row "$twisted_port" /usr/bin/python3 "$BENCH/twisted_udp_echo.py" "$twisted_port")
  fi
  ratios+=("$(div "$host" "$limit" 3)") tratios+=("$(div "$host" "$twisted" 2)")
  cratios+=("$(div "$hostc" "$limitc" 3)") ctratios+=("$(div "$hostc" "$twistedc" 2)")
  echo "| $rep | $limit | $host | $twisted | ${ratios[-1]} | ${tratios[-1]} | $limitc | $hostc | $twistedc | ${cratios[-1]} | ${ctratios[-1]} |"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo
echo "medians: datagrams/s host/limit $(median "${ratios[@]}"), host/twisted $(median "${tratios[@]}");" \
  "per server CPU-second host/limit $(median "${cratios[@]}"), host/twisted $(median "${ctratios[@]}")" \
  "($SOCKETS sockets x depth $DEPTH x $BYTES B, ${DURATION} s per row, $REPS reps)"
