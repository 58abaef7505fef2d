#!/usr/bin/env bash
# The benchmark matrix of issue 5, in one command.
#
#   bench/run.sh                 full run (3 repetitions, all servers, callgrind):
#                                writes docs/performance.md and docs/performance.png
#   bench/run.sh --smoke         CI smoke run: ~1 s per row, one repetition, servers
#                                epoll + host threads=1 + host threads=2, no callgrind;
#                                report goes to build-bench-kit/smoke/ (docs/ untouched);
#                                exits 1 if any row had an error or a server failed
#   bench/run.sh --forward       forwarding rows (issue 10, bench/forward.sh): HAProxy
#                                `mode tcp`, nginx `stream` and the host with `plugin =
#                                portforward`, each in front of the same epoll echo upstream;
#                                50x64B depth 1 and 16, 10x16KiB, churn; msgs/s, msgs per proxy
#                                CPU-second and the ratios to HAProxy; report in the work dir
#                                (forwarding.md); installs haproxy/nginx when run as root.
#                                --servers here: "haproxy nginx hostfwd" (default), haproxysplice
#   bench/run.sh --tls           TLS rows (issue 11, bench/tls.sh): the host's echo on an ssl:
#                                listener against bench/tls_echo (a minimal OpenSSL epoll echo
#                                with the host's TLS settings: the TLS limit), 50x64B, 10x16KiB,
#                                handshakes/s with ECDSA P-256 and with RSA 2048 (loadgen --tls
#                                --mode churn); report in the work dir (tls.md). --smoke runs
#                                these rows too, once, 0.2 s each, about 5 s in all (report:
#                                tls.md beside the smoke report)
#
# Options: --reps N, --duration S (per row), --servers "epoll host1 host2 asio twisted",
#          --out DIR (where performance.md/.png go), --no-build, --no-callgrind,
#          --callgrind (also in --smoke), --host-build DIR (use an existing build of
#          the host: DIR/bin/host and DIR/plugins/, e.g. build/ in CI),
#          --report WORKDIR (only regenerate the report from an earlier run's work dir).
# Servers: epoll (the limit), hostN (the host with threads = N: host1, host2, host4, ...),
#          asio, twisted. The fibonacci row (durable, line mode) and the weblog row (push,
#          push_interval_ms = 0, 1,000 subscribers, append-to-delivery latency) run when
#          their plugins are built. After the fibonacci row, the epoll limit and host
#          threads=1 echo lines as long as that row's mean answer (row linefib): the
#          like-for-like comparison for the fibonacci target.
# Environment: BENCH_PORT_BASE (default 17100);
#              BENCH_KIT_BUILD (default build-bench-kit: where the kit is built and the
#              work directories go);
#              BENCH_SERVER_CPU / BENCH_LOADGEN_CPU (taskset lists; default 1 / 0 when
#              there are >= 2 cores, no pinning on one core);
#              BENCH_LOADGEN_THREADS (default 1; on a bigger machine give the load
#              generator several cores and threads);
#              BENCH_NICE (e.g. -10: run servers and load generator at that nice level, so
#              that other people's builds on a shared machine disturb the rows less);
#              BENCH_QUIET_WAIT (full run: before each row wait up to this many seconds,
#              default 20, for other processes to use less than 40% of a core; at most
#              BENCH_QUIET_BUDGET=180 s of waiting in all; 0 disables).
#
# Servers run pinned to one core, the load generator to the other. Within one
# repetition every row runs against every server back to back (A B C A B C ...),
# and the server order rotates between repetitions, so background load on a
# shared machine hits all servers alike; ratios are taken within a repetition,
# then the median over repetitions is reported. Every loadgen call is bounded
# in time (and the callgrind ones in message count).
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
PY=/usr/bin/python3
[[ -x $PY ]] || PY=python3

MODE=full
REPS=3
DURATION=2
WARMUP=0.3
SERVERS="epoll host1 host2 asio twisted"
OUT="$ROOT/docs"
BUILD=1
CALLGRIND=1
HOST_BUILD="$ROOT/build-bench"
KIT_BUILD="${BENCH_KIT_BUILD:-$ROOT/build-bench-kit}"
IDLE_CONNS=10000
IDLE_HOLD=3
CG_SMALL=2000
CG_BIG=22000
FIB_MAX_MSGS=90000   # stays under the fibonacci plugin's default max_index (100000)
FIB_LINE_BYTES=9050  # linefib's line length when the fibonacci row gave no mean answer size
WEBLOG_SUBS=1000
WEBLOG_LINES=100     # one every 20 ms
servers_given=0 reps_given=0 dur_given=0 out_given=0 cg_given=0
REPORT_ONLY=""

while (($#)); do
  case "$1" in
    --smoke) MODE=smoke ;;
    --forward) MODE=forward ;;
    --tls) MODE=tls ;;
    --reps) REPS="$2"; reps_given=1; shift ;;
    --duration) DURATION="$2"; dur_given=1; shift ;;
    --servers) SERVERS="$2"; servers_given=1; shift ;;
    --out) OUT="$2"; out_given=1; shift ;;
    --no-build) BUILD=0 ;;
    --no-callgrind) CALLGRIND=0; cg_given=1 ;;
    --callgrind) CALLGRIND=1; cg_given=1 ;;
    --host-build) HOST_BUILD="$(cd "$2" && pwd)"; shift ;;
    --report) REPORT_ONLY="$(cd "$2" && pwd)"; shift ;;
    -h|--help) sed -n '2,54p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 64 ;;
  esac
  shift
done

if [[ $MODE == smoke ]]; then
  ((reps_given)) || REPS=1
  ((dur_given)) || DURATION=1
  WARMUP=0.2
  ((servers_given)) || SERVERS="epoll host1 host2"
  ((out_given)) || OUT="$KIT_BUILD/smoke"
  ((cg_given)) || CALLGRIND=0
  IDLE_CONNS=1000
  IDLE_HOLD=0.5
  WEBLOG_SUBS=100
  WEBLOG_LINES=20
  CG_SMALL=500
  CG_BIG=2500
  FIB_MAX_MSGS=20000
fi

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

report() {  # WORK
  local args=(--results "$1/results.jsonl" --meta "$1/meta.json" --work "$1" --out "$OUT/performance.md"
              --png "$OUT/performance.png" --notes "$BENCH/performance-notes.md")
  local s
  for s in epoll host1 host2 asio twisted; do
    [[ -s $1/callgrind.$s.json ]] && args+=(--callgrind "$s=$1/callgrind.$s.json")
  done
  "$PY" "$BENCH/report.py" "${args[@]}"
}
if [[ -n $REPORT_ONLY ]]; then
  mkdir -p "$OUT"
  report "$REPORT_ONLY"
  exit $?
fi

# ---------------------------------------------------------------- tools
# The kit's own needs beyond the build's (scripts/bootstrap.sh): the peers and
# the measuring tools of a full run. Installed when run as root (CI, a fresh
# machine); otherwise the rows that need them are skipped with a message.
if [[ $MODE == full && $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
  missing=()
  for p in python3-twisted valgrind gnuplot-nox libboost-dev; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

# ---------------------------------------------------------------- build
if ((BUILD)); then
  log "building the kit in $KIT_BUILD"
  cmake -S "$BENCH" -B "$KIT_BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$KIT_BUILD" -j"$(nproc)" >/dev/null
  if [[ $HOST_BUILD == "$ROOT/build-bench" ]]; then
    log "building host + plugins (Release) in $HOST_BUILD"
    cmake -S "$ROOT" -B "$HOST_BUILD" -DCMAKE_BUILD_TYPE=Release -DPROTOHOST_BUILD_TESTS=OFF >/dev/null
    targets=(host echo)
    [[ -f $ROOT/plugins/fibonacci/CMakeLists.txt ]] && targets+=(fibonacci)
    [[ -f $ROOT/plugins/weblog/CMakeLists.txt ]] && targets+=(weblog)
    [[ -f $ROOT/plugins/portforward/CMakeLists.txt ]] && targets+=(portforward)
    cmake --build "$HOST_BUILD" -j"$(nproc)" --target "${targets[@]}" >/dev/null
  fi
fi
LOADGEN="$KIT_BUILD/bin/loadgen"
HOST_BIN="$HOST_BUILD/bin/host"
PLUGINS="$HOST_BUILD/plugins"
for f in "$LOADGEN" "$KIT_BUILD/bin/epoll_echo" "$HOST_BIN" "$PLUGINS/echo.so"; do
  [[ -e $f ]] || { echo "run.sh: missing $f (build first, or drop --no-build)" >&2; exit 2; }
done
HAVE_FIB=0
[[ -e $PLUGINS/fibonacci.so ]] && HAVE_FIB=1
HAVE_WEBLOG=0
[[ -e $PLUGINS/weblog.so ]] && HAVE_WEBLOG=1

FWD_SERVERS="haproxy nginx hostfwd"
if [[ $MODE == forward ]]; then
  ((servers_given)) && FWD_SERVERS=$SERVERS
  SERVERS=epoll  # the echo servers are not run in this mode
fi
[[ $MODE == tls ]] && SERVERS=epoll  # likewise: bench/tls.sh has its own servers

# keep only servers that can run here
want=()
for s in $SERVERS; do
  case $s in
    twisted) if $PY -c 'import twisted' 2>/dev/null; then want+=(twisted); else log "python3-twisted missing: skipping twisted"; fi ;;
    asio) [[ -x $KIT_BUILD/bin/asio_echo ]] && want+=(asio) ;;
    epoll|host[1-9]|host[1-9][0-9]) want+=("$s") ;;
    *) echo "run.sh: unknown server $s" >&2; exit 64 ;;
  esac
done
[[ " ${want[*]} " == *" epoll "* ]] || want=(epoll "${want[@]}")  # every ratio needs the limit
SERVERS_LIST=("${want[@]}")

# ---------------------------------------------------------------- set-up
NICE=${BENCH_NICE:-0}
NICE_CMD=()
((NICE != 0)) && NICE_CMD=(nice -n "$NICE")
if (($(nproc) >= 2)); then
  SCPU=${BENCH_SERVER_CPU:-1}
  LCPU=${BENCH_LOADGEN_CPU:-0}
  spin() { local c=$1; shift; exec "${NICE_CMD[@]}" taskset -c "$c" "$@"; }  # exec: $! is the server itself
else
  SCPU=- LCPU=-
  spin() { shift; exec "${NICE_CMD[@]}" "$@"; }
fi
PORT_BASE=${BENCH_PORT_BASE:-17100}
declare -A PORT=([epoll]=$((PORT_BASE + 1)) [host1]=$((PORT_BASE + 2)) [host2]=$((PORT_BASE + 3))
                 [asio]=$((PORT_BASE + 4)) [twisted]=$((PORT_BASE + 5)) [hostfib]=$((PORT_BASE + 6))
                 [hostweblog]=$((PORT_BASE + 7)))
for s in "${SERVERS_LIST[@]}"; do
  [[ $s == host[0-9]* && -z ${PORT[$s]:-} ]] && PORT[$s]=$((PORT_BASE + 30 + ${s#host}))
done
CG_PORT=$((PORT_BASE + 20))
LG_THREADS=${BENCH_LOADGEN_THREADS:-1}

WORK="$KIT_BUILD/$MODE-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$WORK/logs" "$OUT"
RESULTS="$WORK/results.jsonl"
: >"$RESULTS"
log "work dir $WORK; servers: ${SERVERS_LIST[*]}; reps $REPS; ${DURATION}s per row; server cpu $SCPU, loadgen cpu $LCPU"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

write_host_ini() {  # name threads port [fib | weblog | tls CERT_BASE (CERT_BASE.pem and .key)]
  local ini="$WORK/$1.ini"
  {
    echo "[host]"
    echo "plugins_dir = $PLUGINS"
    echo "threads = $2"
    echo "log_level = warning"
    echo
    if [[ ${4:-} == fib ]]; then
      echo "[listener.fibonacci]"
      echo "plugin = fibonacci"
      echo "listen = tcp:$3:interface=127.0.0.1"
      echo "state_file = $WORK/fib-state/fibonacci.state"
      [[ -n ${BENCH_FIB_EXTRA:-} ]] && printf '%b\n' "$BENCH_FIB_EXTRA"
    elif [[ ${4:-} == weblog ]]; then
      echo "[listener.weblog]"
      echo "plugin = weblog"
      echo "listen = tcp:$3:interface=127.0.0.1"
      echo "access_log = $WORK/weblog/access.log"
      echo "mode = push"
      echo "push_interval_ms = 0"
      [[ -n ${BENCH_WEBLOG_EXTRA:-} ]] && printf '%b\n' "$BENCH_WEBLOG_EXTRA"
    elif [[ ${4:-} == tls ]]; then
      echo "[listener.echo]"
      echo "plugin = echo"
      echo "listen = ssl:$3:interface=127.0.0.1:certKey=$5.pem:privateKey=$5.key"
    else
      echo "[listener.echo]"
      echo "plugin = echo"
      echo "listen = tcp:$3:interface=127.0.0.1"
    fi
  } >"$ini"
  echo "$ini"
}

server_cmd() {  # name port -> command words in CMD
  case $1 in
    epoll) CMD=("$KIT_BUILD/bin/epoll_echo" "$2") ;;
    asio) CMD=("$KIT_BUILD/bin/asio_echo" "$2") ;;
    twisted) CMD=("$PY" "$BENCH/twisted_echo.py" "$2") ;;
    host[0-9]*) CMD=("$HOST_BIN" --config "$(write_host_ini "$1" "${1#host}" "$2")") ;;  # hostN: threads = N
    hostfib) CMD=("$HOST_BIN" --config "$(write_host_ini hostfib 1 "$2" fib)") ;;
    hostweblog) CMD=("$HOST_BIN" --config "$(write_host_ini hostweblog 1 "$2" weblog)") ;;
    tlslimit*|hosttls*) tls_server_cmd "$1" "$2" ;;  # bench/tls.sh
    *) fwd_server_cmd "$1" "$2" ;;  # bench/forward.sh
  esac
}

listening() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }

declare -A PID=()
declare -A SERVER_CPU=()  # name -> taskset list when not $SCPU (the forwarding rows' upstream)
declare -A CPU_PIDS=()    # name -> PID[,PID...] whose CPU is the server's (default: PID[name])
start_server() {  # name [port] [timeout_s] [prefix words...]
  local name=$1 port=${2:-${PORT[$1]}} timeout=${3:-15}
  shift 3 || shift $#
  if listening "$port"; then echo "run.sh: port $port is already in use" >&2; return 1; fi
  server_cmd "$name" "$port"
  spin "${SERVER_CPU[$name]:-$SCPU}" "$@" "${CMD[@]}" >>"$WORK/logs/$name.log" 2>&1 &
  local pid=$!
  local deadline=$((SECONDS + ${timeout%.*}))
  until listening "$port"; do
    if ! kill -0 "$pid" 2>/dev/null || ((SECONDS > deadline)); then
      log "server $name failed to listen on $port (see $WORK/logs/$name.log)"
      kill -KILL "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
      return 1
    fi
    sleep 0.05
  done
  PID[$name]=$pid
}

stop_pid() {  # pid [grace_s]
  local pid=$1 grace=${2:-10}
  kill -TERM "$pid" 2>/dev/null || return 0
  local deadline=$((SECONDS + grace))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS > deadline)); then kill -KILL "$pid" 2>/dev/null || true; break; fi
    sleep 0.05
  done
  wait "$pid" 2>/dev/null || true
}

stop_all() {
  local n
  for n in "${!PID[@]}"; do stop_pid "${PID[$n]}"; unset "PID[$n]" "CPU_PIDS[$n]"; done
}
cleanup() { stop_all 2>/dev/null || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM

QUIET_WAIT=${BENCH_QUIET_WAIT:-20}
QUIET_BUDGET=${BENCH_QUIET_BUDGET:-180}
[[ $MODE == smoke ]] && QUIET_WAIT=0
cpu_busy() {  # prints the machine's busy CPU over 0.5 s, in % of one core
  local c u n s i w q sq st rest a1 t1 a2 t2
  read -r c u n s i w q sq st rest </proc/stat
  a1=$((u + n + s + q + sq + st)); t1=$((a1 + i + w))
  sleep 0.5
  read -r c u n s i w q sq st rest </proc/stat
  a2=$((u + n + s + q + sq + st)); t2=$((a2 + i + w))
  echo $(((a2 - a1) * 100 * $(nproc) / (t2 - t1 > 0 ? t2 - t1 : 1)))
}
quiet_gate() {  # bounded wait for a quiet machine (servers are idle between rows)
  ((QUIET_WAIT > 0 && QUIET_BUDGET > 0)) || return 0
  local start=$SECONDS busy
  while :; do
    busy=$(cpu_busy)
    ((busy < 40)) && break
    if ((SECONDS - start >= QUIET_WAIT || SECONDS - start >= QUIET_BUDGET)); then
      log "  machine still busy (${busy}% of a core used by others): measuring anyway"
      break
    fi
  done
  QUIET_BUDGET=$((QUIET_BUDGET - (SECONDS - start)))
}

fib_reply_bytes() {  # rep -> the fib50 row's mean reply line in bytes (empty when unknown)
  "$PY" - "$RESULTS" "$1" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    d = r.get("result") or {}
    if r["row"] == "fib50" and r["rep"] == int(sys.argv[2]) and d.get("msgs_per_s") and d.get("mb_per_s"):
        print(max(2, round(d["mb_per_s"] * 1e6 / d["msgs_per_s"])))
EOF
}

FAILED=0
record() {  # rep row server json-or-empty rc
  local json=${4:-null}
  [[ -n $json ]] || json=null
  printf '{"rep":%s,"row":"%s","server":"%s","rc":%s,"result":%s}\n' "$1" "$2" "$3" "$5" "$json" >>"$RESULTS"
  if [[ $json == null ]] || (($5 != 0)); then FAILED=1; fi
}

run_row() {  # rep row server loadgen-args...
  local rep=$1 row=$2 s=$3
  shift 3
  local pid=${PID[$s]:-}
  if [[ -z $pid ]] || ! kill -0 "$pid" 2>/dev/null; then
    record "$rep" "$row" "$s" "" 99
    log "  $row/$s: server not running"
    return
  fi
  local out rc=0
  out=$(spin "$LCPU" "$LOADGEN" --port "${PORT[$s]}" --label "$s" --server-pid "${CPU_PIDS[$s]:-$pid}" "$@" 2>>"$WORK/logs/loadgen.log") || rc=$?
  record "$rep" "$row" "$s" "$out" "$rc"
  if [[ -n $out ]]; then
    log "  $row/$s: $("$PY" -c 'import json,sys; d=json.loads(sys.argv[1]); print("%s msgs/s=%s p99=%sus errors=%s%s" % ("", d.get("msgs_per_s", d.get("verified", d.get("deliveries"))), d.get("p99_us"), d.get("errors"), (" kib/conn=%s idle_cpu=%s%%" % (d.get("kib_per_conn"), d.get("server_idle_cpu_pct"))) if d.get("mode")=="idle" else ""))' "$out")"
  else
    log "  $row/$s: loadgen failed (rc $rc)"
  fi
}

run_row_all() {  # rep row servers...: the row's loadgen arguments against each server in turn
  local rep=$1 row=$2 s
  shift 2
  quiet_gate
  for s; do
    # shellcheck disable=SC2086
    run_row "$rep" "$row" "$s" ${ROWARGS[$row]}
  done
}

T="--warmup $WARMUP --duration $DURATION"
ROWS=(c1 c50d1 c50d16 line50 c10x16k churn)
declare -A ROWARGS=(
  [c1]="--mode echo --conns 1 --size 64 --depth 1 $T"
  [c50d1]="--mode echo --conns 50 --size 64 --depth 1 --threads $LG_THREADS $T"
  [c50d16]="--mode echo --conns 50 --size 64 --depth 16 --threads $LG_THREADS $T"
  [line50]="--mode line --conns 50 --line NEXT --expect echo --threads $LG_THREADS $T"
  [c10x16k]="--mode echo --conns 10 --size 16384 --depth 1 --threads $LG_THREADS $T"
  [churn]="--mode churn --conns 10 --size 64 --threads $LG_THREADS $T"
)

if [[ $MODE == forward ]]; then
  # shellcheck source=forward.sh
  source "$BENCH/forward.sh"
  fwd_main  # exits
fi
if [[ $MODE == tls || $MODE == smoke ]]; then
  # shellcheck source=tls.sh
  source "$BENCH/tls.sh"
  [[ $MODE == tls ]] && tls_main  # exits
fi

# ---------------------------------------------------------------- the matrix
for ((rep = 1; rep <= REPS; rep++)); do
  n=${#SERVERS_LIST[@]}
  order=()
  for ((i = 0; i < n; i++)); do order+=("${SERVERS_LIST[$(((i + rep - 1) % n))]}"); done
  log "repetition $rep/$REPS, order: ${order[*]}"
  for s in "${order[@]}"; do start_server "$s" || FAILED=1; done
  sleep 0.3
  for row in "${ROWS[@]}"; do
    run_row_all "$rep" "$row" "${order[@]}"
    if [[ $row == line50 ]]; then
      # the 50-connection rows are done: peak RSS so far
      for s in "${order[@]}"; do
        [[ -n ${PID[$s]:-} ]] || continue
        hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/${PID[$s]}/status" 2>/dev/null || echo 0)
        record "$rep" hwm50 "$s" "{\"server_hwm_kb\":${hwm:-0}}" 0
      done
    fi
  done
  quiet_gate
  for s in "${order[@]}"; do
    run_row "$rep" idle "$s" --mode idle --conns "$IDLE_CONNS" --size 64 --duration "$IDLE_HOLD" --connect-timeout 60 --drain-timeout 20
  done
  stop_all
  if ((HAVE_FIB)); then
    # fibonacci with durability on (state file, fresh each repetition), line mode at 50 conns,
    # beside the echo line row of this repetition
    rm -rf "$WORK/fib-state"; mkdir -p "$WORK/fib-state"
    quiet_gate
    if start_server hostfib "${PORT[hostfib]}" 15; then
      run_row "$rep" fib50 hostfib --mode line --conns 50 --line NEXT --expect number --max-msgs "$FIB_MAX_MSGS" \
        --threads "$LG_THREADS" $T
      stop_all
    else
      record "$rep" fib50 hostfib "" 98
    fi
    # like for like: echo lines as long as this repetition's mean fibonacci answer
    # (its reply line, digits and CRLF, = the echoed line and its LF)
    reply=$(fib_reply_bytes "$rep")
    [[ -n $reply ]] || { reply=$((FIB_LINE_BYTES + 1)); log "  no mean fibonacci answer size: linefib uses $FIB_LINE_BYTES-byte lines"; }
    lf=()
    for s in "${order[@]}"; do [[ $s == epoll || $s == host1 ]] && lf+=("$s"); done
    quiet_gate
    for s in "${lf[@]}"; do start_server "$s" || FAILED=1; done
    sleep 0.3
    for s in "${lf[@]}"; do
      run_row "$rep" linefib "$s" --mode line --conns 50 --line-bytes $((reply - 1)) --expect echo --threads "$LG_THREADS" $T
    done
    stop_all
  fi
  if ((HAVE_WEBLOG)); then
    # weblog push with push_interval_ms = 0: subscribers, lines appended every 20 ms,
    # latency from the append to each subscriber's read of that line's element
    rm -rf "$WORK/weblog"; mkdir -p "$WORK/weblog"; : >"$WORK/weblog/access.log"
    quiet_gate
    if start_server hostweblog "${PORT[hostweblog]}" 15; then
      run_row "$rep" weblog hostweblog --mode subscribe --conns "$WEBLOG_SUBS" --log-file "$WORK/weblog/access.log" \
        --lines "$WEBLOG_LINES" --interval-ms 20 --connect-timeout 30 --drain-timeout 10
      stop_all
    else
      record "$rep" weblog hostweblog "" 98
    fi
  fi
done

if [[ $MODE == smoke ]]; then
  log "TLS rows (bench/tls.sh), 0.2 s each"
  tls_smoke
fi

# ---------------------------------------------------------------- callgrind
CG_SERVERS=()
if ((CALLGRIND)); then
  if command -v valgrind >/dev/null && command -v callgrind_annotate >/dev/null; then
    for s in epoll host1 asio; do
      [[ " ${SERVERS_LIST[*]} " == *" $s "* ]] || continue
      ok=1
      for N in "$CG_SMALL" "$CG_BIG"; do
        log "callgrind: $s, $N echoed 64-byte messages at 1 connection"
        cgout="$WORK/callgrind.$s.$N.out"
        if ! start_server "$s" "$CG_PORT" 120 valgrind --tool=callgrind --callgrind-out-file="$cgout"; then ok=0; break; fi
        out=$(spin "$LCPU" "$LOADGEN" --port "$CG_PORT" --mode echo --conns 1 --size 64 --depth 1 --warmup 0 \
                --duration 300 --max-msgs "$N" --drain-timeout 30 2>>"$WORK/logs/loadgen.log") || ok=0
        echo "{\"server\":\"$s\",\"msgs\":$N,\"result\":${out:-null}}" >>"$WORK/callgrind-runs.jsonl"
        stop_pid "${PID[$s]}" 120
        unset "PID[$s]"
        [[ -s $cgout ]] || ok=0
      done
      if ((ok)); then
        "$PY" "$BENCH/cgdiff.py" "$WORK/callgrind.$s.$CG_SMALL.out" "$WORK/callgrind.$s.$CG_BIG.out" \
          $((CG_BIG - CG_SMALL)) >"$WORK/callgrind.$s.json" && CG_SERVERS+=("$s")
      else
        log "callgrind run for $s failed"
        FAILED=1
      fi
    done
  else
    log "valgrind not installed: no callgrind measurement"
  fi
fi

# ---------------------------------------------------------------- report
"$PY" - "$WORK/meta.json" "$MODE" "$REPS" "$DURATION" "$WARMUP" "$SCPU" "$LCPU" "$IDLE_CONNS" "$IDLE_HOLD" "$CG_SMALL" "$CG_BIG" "$ROOT" "$NICE" <<'EOF'
import json, os, platform, subprocess, sys, time
out, mode, reps, dur, warm, scpu, lcpu, idle, hold, cgs, cgb, root, nice = sys.argv[1:]
def sh(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:
        return ""
model = ""
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        model = line.split(":", 1)[1].strip(); break
commit = sh("git", "-C", root, "rev-parse", "--short", "HEAD")
dirty = sh("git", "-C", root, "status", "--porcelain", "--", "host", "sdk", "plugins")
json.dump({
    "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "mode": mode, "reps": int(reps),
    "duration_s": float(dur), "warmup_s": float(warm), "server_cpu": scpu, "loadgen_cpu": lcpu,
    "idle_conns": int(idle), "idle_hold_s": float(hold), "cg_small": int(cgs), "cg_big": int(cgb),
    "nice": int(nice), "nproc": os.cpu_count(), "cpu_model": model, "kernel": platform.release(),
    "loadavg_end": open("/proc/loadavg").read().split()[:3],
    "compiler": sh("g++", "--version").splitlines()[0] if sh("g++", "--version") else "",
    "poco": sh("dpkg-query", "-W", "-f=${Version}", "libpoco-dev"),
    "boost": sh("dpkg-query", "-W", "-f=${Version}", "libboost-dev"),
    "twisted": sh("/usr/bin/python3", "-c", "import twisted; print(twisted.__version__)"),
    "commit": commit + (" (host/sdk/plugins modified)" if dirty else ""),
}, open(out, "w"))
EOF

report "$WORK" || FAILED=1
log "report: $OUT/performance.md (raw results: $RESULTS)"
if ((FAILED)); then
  log "some rows failed or had errors (see $RESULTS and $WORK/logs)"
  exit 1
fi
