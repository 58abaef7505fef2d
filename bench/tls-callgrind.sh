#!/usr/bin/env bash
# User-space instructions per TLS message and per TLS handshake, the host against the TLS
# limit (bench/tls_echo), counted by callgrind: unlike msgs/s, not moved by other work on a
# shared machine. Each server runs twice under valgrind --tool=callgrind, for SMALL and for
# BIG messages (or handshakes) with everything else the same; bench/cgdiff.py takes
# (Ir(BIG) - Ir(SMALL)) / (BIG - SMALL), so start-up and set-up cancel out. Includes
# OpenSSL's instructions (libssl, libcrypto) and the kernel's none.
#
#   echo64    1 connection, 64 B messages, depth 1 (loadgen --tls --max-msgs)
#   echo16k   1 connection, 16 KiB messages, depth 1
#   hs-ecdsa  handshakes (loadgen --tls --mode churn, 1 slot), ECDSA P-256
#   hs-rsa    the same, RSA 2048
#
# Usage: bench/tls-callgrind.sh [HOST_BUILD=build] [KIT_BUILD=build-bench-kit]
# (build both first: scripts/bootstrap.sh, and bench/run.sh or cmake -S bench -B build-bench-kit).
# Prints one Markdown table on stdout; work files in a temporary directory. About 4 minutes
# on the shared 2-core machine (16 server runs under valgrind; 20 and 80 handshakes a pair).
set -euo pipefail
cd "$(dirname "$0")/.."
host_build=${1:-build}
kit=${2:-build-bench-kit}
port=${BENCH_PORT_BASE:-17100}
port=$((port + 60))
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
# shellcheck source=tls.sh
source <(sed -n '/^tls_make_certs() {/,/^}/p' bench/tls.sh)
tls_make_certs "$work/tls"

# run NAME CERT N LOADGEN-ARGS...: the server NAME (limit|host) under callgrind for N messages
run() {
  local name=$1 cert=$2 n=$3 out="$work/$1.$2.$3.$4.out" kind=$4
  shift 4
  if [[ $name == limit ]]; then
    set -- "$kit/bin/tls_echo" "$port" "$work/tls/$cert.pem" "$work/tls/$cert.key" -- "$@"
  else
    cat >"$work/host.ini" <<EOF
[host]
plugins_dir = $PWD/$host_build/plugins
threads = 1
log_level = warning
[listener.echo]
plugin = echo
listen = ssl:$port:interface=127.0.0.1:certKey=$work/tls/$cert.pem:privateKey=$work/tls/$cert.key
EOF
    set -- "$host_build/bin/host" --config "$work/host.ini" -- "$@"
  fi
  local server=()
  while [[ $1 != -- ]]; do server+=("$1"); shift; done
  shift
  valgrind --tool=callgrind --callgrind-out-file="$out" "${server[@]}" >"$work/server.log" 2>&1 &
  local pid=$! i
  for ((i = 0; i < 600; i++)); do ss -Hltn "sport = :$port" | grep -q . && break; sleep 0.1; done
  "$kit/bin/loadgen" --port "$port" --tls --warmup 0 --duration 600 --max-msgs "$n" --drain-timeout 60 "$@" \
    >"$work/loadgen.json" || { cat "$work/loadgen.json" "$work/server.log" >&2; exit 1; }
  # TERM until it is gone: under valgrind a TERM sometimes goes unnoticed by tls_echo's epoll_wait
  for ((i = 0; i < 30; i++)); do
    kill -TERM "$pid" 2>/dev/null || break
    sleep 1
    kill -0 "$pid" 2>/dev/null || break
  done
  wait "$pid" || true
  echo "$out"
}

per() {  # name cert kind small big loadgen-args...: instructions per message
  local name=$1 cert=$2 kind=$3 small=$4 big=$5 a b
  shift 5
  a=$(run "$name" "$cert" "$small" "$kind" "$@")
  b=$(run "$name" "$cert" "$big" "$kind" "$@")
  python3 bench/cgdiff.py "$a" "$b" $((big - small)) | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["ir_per_msg"]))'
}

echo "| row | limit (tls_echo) instructions | host instructions | host / limit | limit / host (as msgs/s would be) |"
echo "|---|---|---|---|---|"
row() {  # title cert kind small big loadgen-args...
  local title=$1 cert=$2 kind=$3 small=$4 big=$5 l h
  shift 5
  l=$(per limit "$cert" "$kind" "$small" "$big" "$@")
  h=$(per host "$cert" "$kind" "$small" "$big" "$@")
  python3 -c 'import sys; t, l, h = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]); print(f"| {t} | {l:,} | {h:,} | {h / l:.3f} | {l / h:.3f} |")' "$title" "$l" "$h"
}
row "echo, 64 B, per message" localhost echo64 2000 12000 --mode echo --conns 1 --size 64
row "echo, 16 KiB, per message" localhost echo16k 1000 4000 --mode echo --conns 1 --size 16384
row "handshake, ECDSA P-256 (+ one 64 B echo, close_notify)" localhost hs 20 80 --mode churn --conns 1 --size 64
row "handshake, RSA 2048 (+ one 64 B echo, close_notify)" rsa hs 20 80 --mode churn --conns 1 --size 64
