#!/usr/bin/env bash
# fibonacci on ONE reactor: durable answers/s with reserve_block = 1 and 1024,
# and the latency an echo client on the same reactor sees meanwhile (issue 10,
# "Use it where it pays": group commit on the worker pool).
#
#   bench/fibonacci-group-commit.sh --before DIR --after DIR [--reps N] [--duration S]
#
# DIR is a build of the host (DIR/bin/host, DIR/plugins/{fibonacci,echo}.so);
# "before" is e.g. main at 155d415 (its own reserver thread: the reactor waits
# for every fsync with reserve_block = 1), "after" this branch (group commit on
# the host's worker pool). Each row starts a fresh host (threads = 1: one
# reactor; default worker_threads = 2) with an echo and a fibonacci listener
# and a fresh state file (max_index = 10,000,000), then runs, at the same time
# for --duration seconds:
#   - 8 connections asking fibonacci for the next number as fast as they can
#     (loadgen line mode, depth 1, every answer checked to be a number that
#     grows on its connection);
#   - 1 echo connection, 64-byte messages, ping-pong: p50/p99 on the reactor
#     fibonacci shares.
# Within a repetition every row runs for before and after back to back, and the
# order alternates between repetitions, so the ratios compare runs of the same
# moment on a noisy machine. The host is pinned to one core (BENCH_SERVER_CPU,
# default 1), the load generators to the other (BENCH_LOADGEN_CPU, default 0).
# After each run, a state file in format v2 (two slots, a generation per
# commit) gives the number of commits: the highest gen - 2 (the fresh file and
# the clean stop's record are not commits), and so answers per commit ("-" for
# a v1 file, which has no generation).
# Prints one JSON line per run and a Markdown table of medians and ratios;
# both go to --out DIR (default build-bench-kit/fibgc-DATE).
# Needs the kit's load generator: cmake -S bench -B build-bench-kit && cmake --build build-bench-kit --target loadgen
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
BEFORE="" AFTER="" REPS=3 DURATION=4 OUT=""
LOADGEN="${LOADGEN:-$ROOT/build-bench-kit/bin/loadgen}"
BLOCKS="1 1024"
while (($#)); do
  case "$1" in
    --before) BEFORE="$2"; shift ;;
    --after) AFTER="$2"; shift ;;
    --reps) REPS="$2"; shift ;;
    --duration) DURATION="$2"; shift ;;
    --blocks) BLOCKS="$2"; shift ;;
    --out) OUT="$2"; shift ;;
    -h | --help) sed -n '2,27p' "$0"; exit 0 ;;
    *) echo "fibonacci-group-commit.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
[[ -n $BEFORE && -n $AFTER ]] || { echo "usage: $0 --before DIR --after DIR [--reps N] [--duration S]" >&2; exit 2; }
BEFORE="$(cd "$BEFORE" && pwd)" AFTER="$(cd "$AFTER" && pwd)"
for d in "$BEFORE" "$AFTER"; do
  [[ -x $d/bin/host && -e $d/plugins/fibonacci.so && -e $d/plugins/echo.so ]] ||
    { echo "fibonacci-group-commit.sh: $d has no bin/host and plugins/{fibonacci,echo}.so" >&2; exit 2; }
done
[[ -x $LOADGEN ]] || { echo "fibonacci-group-commit.sh: no load generator at $LOADGEN (see --help)" >&2; exit 2; }
OUT="${OUT:-$ROOT/build-bench-kit/fibgc-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"
: >"$RESULTS"
# shellcheck source=bench/host-process.sh
source "$BENCH/host-process.sh"
PORT_BASE=${BENCH_PORT_BASE:-17300}
ECHO_PORT=$((PORT_BASE + 1)) FIB_PORT=$((PORT_BASE + 2))
trap stop_host EXIT

run_one() {  # rep label builddir block
  local rep=$1 label=$2 dir=$3 block=$4 work="$OUT/$2-b$4-r$1"
  rm -rf "$work"; mkdir -p "$work/state"
  cat >"$work/host.ini" <<EOF
[host]
plugins_dir = $dir/plugins
threads = 1
log_level = warning

[listener.echo]
plugin = echo
listen = tcp:$ECHO_PORT:interface=127.0.0.1

[listener.fibonacci]
plugin = fibonacci
listen = tcp:$FIB_PORT:interface=127.0.0.1
state_file = $work/state/fibonacci.state
reserve_block = $block
max_index = 10000000
EOF
  start_host "$dir/bin/host" "$work/host.ini" "$work/host.log" "$ECHO_PORT" "$FIB_PORT"
  pin "$LCPU" "$LOADGEN" --port $FIB_PORT --mode line --conns 8 --depth 1 --line NEXT --expect number \
    --duration "$DURATION" --warmup 0.5 --label fib >"$work/fib.json" 2>"$work/fib.err" &
  local fibpid=$!
  pin "$LCPU" "$LOADGEN" --port $ECHO_PORT --mode echo --conns 1 --depth 1 --size 64 \
    --duration "$DURATION" --warmup 0.5 --label echo >"$work/echo.json" 2>"$work/echo.err" || true
  wait "$fibpid" || true
  stop_host
  /usr/bin/python3 - "$rep" "$label" "$block" "$work" >>"$RESULTS" <<'PY'
import json, re, sys
rep, label, block, work = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
def commits():
    try:
        data = open(f"{work}/state/fibonacci.state", "rb").read()
    except OSError:
        return None
    gens = [int(m.group(1)) for i in range(0, len(data), 4096) if len(data) == 8192
            for m in [re.match(rb"protohost-fibonacci v2 slot=\d gen=(\d+) ", data[i:i + 4096])] if m]
    return max(max(gens) - 2, 0) if gens else None
def load(name):
    try:
        return json.loads(open(f"{work}/{name}.json").read().strip().splitlines()[-1])
    except Exception as e:
        return {"error": str(e)}
fib, echo = load("fib"), load("echo")
n = commits()
answers = fib.get("total_msgs")
print(json.dumps({"rep": int(rep), "build": label, "reserve_block": block,
                  "fib_answers_per_s": fib.get("msgs_per_s"), "fib_errors": fib.get("errors"),
                  "fib_p50_us": fib.get("p50_us"), "fib_p99_us": fib.get("p99_us"),
                  "echo_msgs_per_s": echo.get("msgs_per_s"), "echo_p50_us": echo.get("p50_us"),
                  "echo_p99_us": echo.get("p99_us"), "echo_errors": echo.get("errors"), "commits": n,
                  "answers_per_commit": round(answers / n, 2) if n and answers else None}))
PY
  tail -n 1 "$RESULTS"
}

for ((rep = 1; rep <= REPS; rep++)); do
  for block in $BLOCKS; do
    if ((rep % 2)); then order="before after"; else order="after before"; fi
    for label in $order; do
      if [[ $label == before ]]; then run_one "$rep" before "$BEFORE" "$block"; else run_one "$rep" after "$AFTER" "$block"; fi
    done
  done
done

/usr/bin/python3 - "$RESULTS" >"$OUT/table.md" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def med(xs):
    xs = [x for x in xs if isinstance(x, (int, float))]
    return statistics.median(xs) if xs else None
def fmt(x, d=0):
    return "-" if x is None else f"{x:,.{d}f}"
print("| reserve_block | build | answers/s | answers per commit | fib p50 / p99 (ms) | echo p50 / p99 on the same reactor (ms) |")
print("|---|---|---|---|---|---|")
for block in sorted({r["reserve_block"] for r in rows}):
    for build in ("before", "after"):
        rs = [r for r in rows if r["reserve_block"] == block and r["build"] == build]
        if not rs: continue
        ms = lambda k: (None if med([r[k] for r in rs]) is None else med([r[k] for r in rs]) / 1e3)
        print(f"| {block} | {build} | {fmt(med([r['fib_answers_per_s'] for r in rs]))} | "
              f"{fmt(med([r.get('answers_per_commit') for r in rs]), 2)} | "
              f"{fmt(ms('fib_p50_us'), 2)} / {fmt(ms('fib_p99_us'), 2)} | {fmt(ms('echo_p50_us'), 3)} / {fmt(ms('echo_p99_us'), 3)} |")
print()
print("Ratios after/before within each repetition (median over repetitions):")
print()
for block in sorted({r["reserve_block"] for r in rows}):
    ratios, p99 = [], []
    for rep in sorted({r["rep"] for r in rows}):
        b = [r for r in rows if r["rep"] == rep and r["reserve_block"] == block and r["build"] == "before"]
        a = [r for r in rows if r["rep"] == rep and r["reserve_block"] == block and r["build"] == "after"]
        if a and b and a[0]["fib_answers_per_s"] and b[0]["fib_answers_per_s"]:
            ratios.append(a[0]["fib_answers_per_s"] / b[0]["fib_answers_per_s"])
            if a[0]["echo_p99_us"] and b[0]["echo_p99_us"]:
                p99.append(b[0]["echo_p99_us"] / a[0]["echo_p99_us"])
    print(f"- reserve_block {block}: answers/s x{fmt(med(ratios), 2)} (per repetition: "
          f"{', '.join(fmt(x, 2) for x in ratios)}); echo p99 {fmt(med(p99), 1)}x lower")
errors = [r for r in rows if r.get("fib_errors") or r.get("echo_errors")]
print()
print(f"Runs with loadgen errors: {len(errors)} of {len(rows)}")
PY
cat "$OUT/table.md"
echo "results: $RESULTS"
