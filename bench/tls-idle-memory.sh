#!/usr/bin/env bash
# Host memory per idle connection, TLS against plain TCP (issue 11's target:
# at most 16 KiB of host RSS per idle TLS connection at 10,000 connections).
# For each of tcp: and ssl: a fresh host serves echo; a Python client opens N
# connections (TLS: full handshake, ECDSA P-256 certificate from
# tests/tls/make-test-certs.sh), makes one echo round trip on each (so TLS
# buffers were used) and holds them; the host's VmRSS before and after gives
# KiB per connection. Prints one line per kind and a ratio.
#
# Usage: bench/tls-idle-memory.sh [N] [BUILD_DIR]   (default 10000, build)
# Needs N + 100 open files in both processes (ulimit -n).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
build=${2:-build}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
tests/tls/make-test-certs.sh "$work/tls" >/dev/null

measure() {  # KIND LISTEN
  local kind=$1 listen=$2
  cat >"$work/$kind.ini" <<INI
[host]
plugins_dir = $PWD/$build/plugins
threads = 1
[listener.echo]
plugin = echo
listen = $listen
INI
  "$build/bin/host" --config "$work/$kind.ini" 2>"$work/$kind.log" &
  local pid=$!
  local port=""
  for _ in $(seq 100); do
    port=$(sed -n 's/.*listening on [a-z:]*127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$work/$kind.log" | head -1)
    [[ -n $port ]] && break
    sleep 0.1
  done
  [[ -n $port ]] || { cat "$work/$kind.log" >&2; exit 1; }
  python3 - "$kind" "$port" "$n" "$pid" "$work/tls/ca.pem" <<'PY'
import resource, socket, ssl, sys, time
kind, port, n, pid, ca = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
def rss_kib():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"): return int(line.split()[1])
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = True
before = rss_kib()
conns = []
t0 = time.time()
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    if kind == "ssl":
        s = ctx.wrap_socket(s, server_hostname="localhost")
    s.sendall(b"x")
    assert s.recv(1) == b"x"
    conns.append(s)
opened = time.time() - t0
time.sleep(1.0)  # let the host settle (released buffers, freed scratch)
after = rss_kib()
print(f"{kind}: {n} idle connections: host RSS {before} -> {after} KiB, "
      f"{(after - before) / n:.2f} KiB per connection (opened in {opened:.1f} s)")
for s in conns: s.close()
PY
  kill "$pid"; wait "$pid" 2>/dev/null || true
}
measure tcp "tcp:0:interface=127.0.0.1"
measure ssl "ssl:0:interface=127.0.0.1:certKey=$work/tls/localhost.pem:privateKey=$work/tls/localhost.key"
