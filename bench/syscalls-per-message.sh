#!/usr/bin/env bash
# System calls and CPU per echoed message, server by server (issue 10: why Boost.Asio is
# ahead of the host at 50 conns x 64 B depth 16). For every repetition and server, in
# rotating order: start the server alone (pinned like bench/run.sh), run the load generator
# against it, and count with `perf stat -p` (tracepoints, no hardware counters needed) the
# server's system calls, EAGAIN results, context switches and CPU time over the whole
# load-generator run; divide by the messages echoed (loadgen's total_msgs). One JSON line per
# run on stdout, a summary table (medians) on stderr.
#
#   bench/syscalls-per-message.sh [--reps N] [--duration S] [--servers "epoll host1 asio"]
#                                 [--loadgen "ARGS"] [--record DIR] [--host-ini-extra 'key = v\n...']
#   --record DIR: also `perf record -e cpu-clock -g` each server once (DIR/SERVER.data).
#
# Needs: the kit built (build-bench-kit/bin), the host (build-bench/bin/host and its echo
# plugin), linux-perf. Servers: epoll, epollet (the same, edge-triggered), asio, hostN
# (threads = N). Ports BENCH_PORT_BASE+60...
set -euo pipefail
BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
KIT="${BENCH_KIT_BUILD:-$ROOT/build-bench-kit}/bin"
HOSTB="${BENCH_HOST_BUILD:-$ROOT/build-bench}"
REPS=3 DURATION=3 SERVERS="epoll host1 asio" RECORD="" EXTRA=""
LGARGS="--mode echo --conns 50 --size 64 --depth 16 --warmup 0.3"
while (($#)); do
  case $1 in
    --reps) REPS=$2; shift ;;
    --duration) DURATION=$2; shift ;;
    --servers) SERVERS=$2; shift ;;
    --loadgen) LGARGS=$2; shift ;;
    --record) RECORD=$2; shift ;;
    --host-ini-extra) EXTRA=$2; shift ;;
    *) echo "usage: see the header of $0" >&2; exit 64 ;;
  esac
  shift
done
command -v perf >/dev/null || { echo "$0: perf not installed (Debian: linux-perf)" >&2; exit 2; }
SCPU=${BENCH_SERVER_CPU:-1} LCPU=${BENCH_LOADGEN_CPU:-0}
PORT=$((${BENCH_PORT_BASE:-17100} + 60))
TMP=$(mktemp -d /tmp/syscalls-per-message.XXXXXX)
[[ -n $RECORD ]] && mkdir -p "$RECORD"
SRV=""
cleanup() { [[ -n $SRV ]] && kill -TERM "$SRV" 2>/dev/null; wait 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT

# calls counted (entries), and the reads that found nothing (EAGAIN, -11)
CALLS=(epoll_wait epoll_pwait epoll_ctl recvfrom recvmsg read sendto sendmsg write writev)
EVENTS="task-clock,context-switches,raw_syscalls:sys_enter"
for c in "${CALLS[@]}"; do EVENTS+=",syscalls:sys_enter_$c"; done
FILTERED=(recvfrom recvmsg read)

start() {  # server port
  local cmd
  case $1 in
    epoll) cmd=("$KIT/epoll_echo" "$2") ;;
    epollet) cmd=("$KIT/epoll_echo" "$2" 127.0.0.1 et) ;;
    asio) cmd=("$KIT/asio_echo" "$2") ;;
    host[0-9]*)
      printf '[host]\nplugins_dir = %s\nthreads = %s\nlog_level = warning\n\n[listener.echo]\nplugin = echo\nlisten = tcp:%s:interface=127.0.0.1\n%b\n' \
        "$HOSTB/plugins" "${1#host}" "$2" "$EXTRA" >"$TMP/$1.ini"
      cmd=("$HOSTB/bin/host" --config "$TMP/$1.ini") ;;
    *) echo "$0: unknown server $1" >&2; exit 64 ;;
  esac
  taskset -c "$SCPU" "${cmd[@]}" >>"$TMP/$1.log" 2>&1 &
  SRV=$!
  local deadline=$((SECONDS + 10))
  until ss -Hltn "sport = :$2" | grep -q .; do
    ((SECONDS < deadline)) && kill -0 "$SRV" 2>/dev/null || { cat "$TMP/$1.log" >&2; exit 1; }
    sleep 0.05
  done
}
stop() { kill -TERM "$SRV" 2>/dev/null; wait "$SRV" 2>/dev/null || true; SRV=""; }

for ((rep = 1; rep <= REPS; rep++)); do
  read -ra list <<<"$SERVERS"
  n=${#list[@]}
  for ((i = 0; i < n; i++)); do
    s=${list[$(((i + rep - 1) % n))]}
    start "$s" "$PORT"
    # shellcheck disable=SC2086
    lg=(taskset -c "$LCPU" "$KIT/loadgen" --port "$PORT" --server-pid "$SRV" $LGARGS --duration "$DURATION")
    filt=()
    for c in "${FILTERED[@]}"; do filt+=(-e "syscalls:sys_exit_$c" --filter 'ret == -11'); done
    perf stat -x, -o "$TMP/stat" -e "$EVENTS" "${filt[@]}" -p "$SRV" -- "${lg[@]}" >"$TMP/lg.json" 2>>"$TMP/lg.err" || true
    if [[ -n $RECORD && $rep == 1 ]]; then
      perf record -q -e cpu-clock -g -o "$RECORD/$s.data" -p "$SRV" -- "${lg[@]}" >"$RECORD/$s.loadgen.json" 2>/dev/null || true
    fi
    stop
    /usr/bin/python3 - "$rep" "$s" "$TMP/stat" "$TMP/lg.json" <<'EOF'
import json, sys
rep, server, statf, lgf = sys.argv[1:]
lg = json.loads(open(lgf).read().strip().splitlines()[-1])
msgs = lg["total_msgs"]
c = {}
for line in open(statf):
    f = line.strip().split(",")
    if len(f) < 3 or line.startswith("#") or not f[0].replace(".", "").isdigit():
        continue
    ev = f[2]
    key = ev.split(":")[-1] + ("_eagain" if ev.startswith("syscalls:sys_exit_") else "")
    c[key] = c.get(key, 0) + float(f[0])
per = {k: v / msgs for k, v in c.items() if k not in ("task-clock",)}
reads = sum(c.get("sys_enter_" + k, 0) for k in ("recvfrom", "recvmsg", "read"))
eag = sum(c.get("sys_exit_" + k + "_eagain", 0) for k in ("recvfrom", "recvmsg", "read"))
writes = sum(c.get("sys_enter_" + k, 0) for k in ("sendto", "sendmsg", "write", "writev"))
waits = c.get("sys_enter_epoll_wait", 0) + c.get("sys_enter_epoll_pwait", 0)
print(json.dumps({
    "rep": int(rep), "server": server, "msgs": msgs, "msgs_per_s": lg["msgs_per_s"],
    "server_cpu_pct": lg.get("server_cpu_pct"), "foreign_cpu_pct": lg.get("foreign_cpu_pct"),
    "cpu_ns_per_msg": c.get("task-clock", 0) * 1e6 / msgs,  # task-clock is in ms
    "msgs_per_cpu_s": msgs / (c.get("task-clock", 1) / 1e3),
    "syscalls_per_msg": c.get("sys_enter", 0) / msgs,
    "reads_per_msg": reads / msgs, "eagain_reads_per_msg": eag / msgs,
    "bytes_per_useful_read": msgs * 64 / max(reads - eag, 1),
    "writes_per_msg": writes / msgs, "bytes_per_write": msgs * 64 / max(writes, 1),
    "epoll_waits_per_msg": waits / msgs, "msgs_per_epoll_wait": msgs / max(waits, 1),
    "epoll_ctl_per_msg": c.get("sys_enter_epoll_ctl", 0) / msgs,
    "ctx_switches_per_msg": c.get("context-switches", 0) / msgs,
    "errors": lg.get("errors"),
}))
EOF
  done
done | tee "$TMP/all.jsonl"
[[ -n $RECORD ]] && cp "$TMP/all.jsonl" "$RECORD/runs.jsonl"
/usr/bin/python3 - "$TMP/all.jsonl" >&2 <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
keys = ["msgs_per_s", "msgs_per_cpu_s", "cpu_ns_per_msg", "syscalls_per_msg", "reads_per_msg",
        "eagain_reads_per_msg", "bytes_per_useful_read", "writes_per_msg", "bytes_per_write",
        "msgs_per_epoll_wait", "epoll_ctl_per_msg", "ctx_switches_per_msg", "foreign_cpu_pct", "errors"]
servers = list(dict.fromkeys(r["server"] for r in rows))
print("median over repetitions | " + " | ".join(servers))
for k in keys:
    vals = []
    for s in servers:
        xs = [r[k] for r in rows if r["server"] == s and r.get(k) is not None]
        vals.append(f"{statistics.median(xs):,.3f}" if xs else "-")
    print(f"{k} | " + " | ".join(vals))
EOF
