#!/usr/bin/env bash
# A whole fibonacci cluster on this machine, for trying store = postgres behind HAProxy:
#  - PostgreSQL 15 (Debian) in a temp dir, with a synchronous standby (scripts/pg-test-server.sh);
#  - two hosts (build/bin/host), store = postgres on both servers (target_session_attrs=read-write,
#    so they follow a promotion), proxy_protocol = required, [admin] for /readyz, drain_delay_ms;
#  - HAProxy 2.6 in mode tcp (etc/haproxy/fibonacci.cfg): leastconn, send-proxy-v2, HTTP checks
#    on each host's /readyz.
# Prints where to connect and how to break things; Ctrl-C stops everything it started.
# Usage: scripts/fibonacci-cluster.sh [PORT]   (where HAProxy listens; default 8889)
# Needs a build (scripts/bootstrap.sh) and haproxy and postgresql-15 (bootstrap installs them).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
port=${1:-8889}
host_bin=$root/build/bin/host
[[ -x $host_bin && -f $root/build/plugins/fibonacci.so ]] || { echo "cluster: build first: scripts/bootstrap.sh" >&2; exit 1; }
command -v haproxy >/dev/null || { echo "cluster: haproxy is not installed (scripts/bootstrap.sh)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/protohost-cluster-XXXXXX")
chmod 755 "$work"
pids=()
stopping=
cleanup() {
  trap - INT TERM EXIT
  stopping=1
  echo "cluster: stopping" >&2
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  for pg in pg2 pg1; do "$root/scripts/pg-test-server.sh" stop "$work/$pg" 2>/dev/null || true; done
  echo "cluster: logs kept in $work" >&2
}
trap cleanup INT TERM EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

mkdir -p "$work/pg1" "$work/pg2"
pg1=$("$root/scripts/pg-test-server.sh" start "$work/pg1")
pg2=$("$root/scripts/pg-test-server.sh" standby "$work/pg2" "$work/pg1")

declare -A fib admin
for h in a b; do
  fib[$h]=$(free_port)
  admin[$h]=$(free_port)
  mkdir -p "$work/host-$h"
  cat >"$work/host-$h/host.ini" <<INI
[host]
plugins_dir = $root/build/plugins
threads = 2
; longer than HAProxy's inter 1s x fall 2: the balancer stops sending before the listener closes
drain_delay_ms = 3000

[listener.fibonacci]
plugin = fibonacci
listen = tcp:${fib[$h]}:interface=127.0.0.1
proxy_protocol = required
state_file = $work/host-$h/fibonacci.state
store = postgres
postgres = host=127.0.0.1,127.0.0.1 port=$pg1,$pg2 dbname=postgres user=protohost target_session_attrs=read-write
postgres_password_file = $work/pg1/password
postgres_timeout_ms = 1000

[admin]
listen = tcp:${admin[$h]}:interface=127.0.0.1
INI
  "$host_bin" --config "$work/host-$h/host.ini" 2>"$work/host-$h/host.log" &
  pids+=($!)
done

export FIB_BIND=127.0.0.1:$port HOST_A=127.0.0.1:${fib[a]} HOST_B=127.0.0.1:${fib[b]}
export HOST_A_ADMIN_PORT=${admin[a]} HOST_B_ADMIN_PORT=${admin[b]}
haproxy -c -q -f "$root/etc/haproxy/fibonacci.cfg"
haproxy -db -f "$root/etc/haproxy/fibonacci.cfg" 2>"$work/haproxy.log" &
pids+=($!)

for h in a b; do
  for _ in $(seq 100); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${admin[$h]}/readyz") == 200 ]] && break
    sleep 0.1
  done
done

cat <<TXT
fibonacci cluster (logs in $work):
  clients:     printf 'NEXT\\nNEXT\\n' | nc -q 1 127.0.0.1 $port
  hosts:       a on 127.0.0.1:${fib[a]} (admin ${admin[a]}), b on 127.0.0.1:${fib[b]} (admin ${admin[b]});
               curl http://127.0.0.1:${admin[a]}/readyz; their logs show the clients' addresses (PROXY v2)
  PostgreSQL:  primary 127.0.0.1:$pg1, synchronous standby 127.0.0.1:$pg2 (user protohost, password in $work/pg1/password)
  try:         $root/scripts/pg-test-server.sh kill $work/pg1 && $root/scripts/pg-test-server.sh promote $work/pg2
               $root/scripts/pg-test-server.sh stop $work/pg1   (then start it again)
Ctrl-C stops everything.
TXT
wait -n "${pids[@]}" || true
[[ -n $stopping ]] || echo "cluster: a process ended; see $work" >&2
