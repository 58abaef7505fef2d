#!/usr/bin/env bash
# fibonacci with store = postgres against store = file, same host build, same
# moment (issue 12, benchmark rows): answers/s at 50 connections and PostgreSQL
# round trips per 1,000 answers.
#
#   bench/fibonacci-postgres.sh [--build DIR] [--reps N] [--duration S] [--block N]
#
# DIR is a build of the host (default build/: DIR/bin/host, DIR/plugins/fibonacci.so).
# A PostgreSQL 15 is started once in a temp dir by scripts/pg-test-server.sh.
# Each run starts a fresh host (threads = 1, default worker_threads = 2) with a
# fresh state file and, for postgres, a fresh sequence row (postgres_sequence =
# bench-rN), then loadgen: 50 connections, line mode, depth 1, NEXT, every answer
# checked to be a number that grows on its connection, for --duration seconds
# or 90,000 answers (the same index range for both stores). Within a repetition
# file and postgres run back to back, the order alternating between repetitions;
# the ratio postgres / file is taken per repetition, then the median.
# Round trips: the row's updates (pg_stat_user_tables.n_tup_upd of
# protohost_sequences, read after the host stopped) per 1,000 answers served;
# one of them is the clean stop's give-back.
# The host is pinned to one core (BENCH_SERVER_CPU, default 1), loadgen to the
# other (BENCH_LOADGEN_CPU, default 0); PostgreSQL is not pinned.
# Prints one JSON line per run and a Markdown table; both go to --out DIR
# (default build-bench-kit/fibpg-DATE).
# Needs the kit's load generator: cmake -S bench -B build-bench-kit && cmake --build build-bench-kit --target loadgen
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
BUILD="$ROOT/build" REPS=3 DURATION=3 BLOCK=1024 OUT=""
LOADGEN="${LOADGEN:-$ROOT/build-bench-kit/bin/loadgen}"
while (($#)); do
  case "$1" in
    --build) BUILD="$2"; shift ;;
    --reps) REPS="$2"; shift ;;
    --duration) DURATION="$2"; shift ;;
    --block) BLOCK="$2"; shift ;;
    --out) OUT="$2"; shift ;;
    -h | --help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "fibonacci-postgres.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
BUILD="$(cd "$BUILD" && pwd)"
[[ -x $BUILD/bin/host && -e $BUILD/plugins/fibonacci.so ]] || { echo "fibonacci-postgres.sh: no host build in $BUILD" >&2; exit 2; }
[[ -x $LOADGEN ]] || { echo "fibonacci-postgres.sh: no load generator at $LOADGEN (see --help)" >&2; exit 2; }
OUT="${OUT:-$ROOT/build-bench-kit/fibpg-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"
: >"$RESULTS"
# shellcheck source=bench/host-process.sh
source "$BENCH/host-process.sh"
FIB_PORT=$((${BENCH_PORT_BASE:-17400} + 1))

PG="$OUT/pg"
mkdir -p "$PG"
cleanup() { stop_host; "$ROOT/scripts/pg-test-server.sh" stop "$PG" 2>/dev/null || true; }
trap cleanup EXIT
PG_PORT=$("$ROOT/scripts/pg-test-server.sh" start "$PG")
psql_() { psql -XAtq -h "$PG" -p "$PG_PORT" -U protohost -d postgres -c "$1"; }

run_one() {  # rep store
  local rep=$1 store=$2 work="$OUT/$2-r$1"
  rm -rf "$work"; mkdir -p "$work/state"
  {
    printf '[host]\nplugins_dir = %s/plugins\nthreads = 1\nlog_level = warning\n\n' "$BUILD"
    printf '[listener.fibonacci]\nplugin = fibonacci\nlisten = tcp:%s:interface=127.0.0.1\n' "$FIB_PORT"
    printf 'state_file = %s/state/fibonacci.state\nreserve_block = %s\n' "$work" "$BLOCK"
    if [[ $store == postgres ]]; then
      printf 'store = postgres\npostgres = host=127.0.0.1 port=%s dbname=postgres user=protohost\n' "$PG_PORT"
      printf 'postgres_password_file = %s/password\npostgres_sequence = bench-r%s\n' "$PG" "$rep"
    fi
  } >"$work/host.ini"
  start_host "$BUILD/bin/host" "$work/host.ini" "$work/host.log" "$FIB_PORT"
  local before=0
  [[ $store == postgres ]] && before=$(psql_ "SELECT coalesce(sum(n_tup_upd), 0) FROM pg_stat_user_tables WHERE relname = 'protohost_sequences'")
  pin "$LCPU" "$LOADGEN" --port "$FIB_PORT" --mode line --conns 50 --depth 1 --line NEXT --expect number \
    --duration "$DURATION" --warmup 0.3 --max-msgs 90000 --label "fib-$store" >"$work/fib.json" 2>"$work/fib.err" || true
  stop_host
  local updates=""
  if [[ $store == postgres ]]; then
    # Statistics reach the view when the host's session ends (and at most 1 s apart before).
    for _ in $(seq 50); do
      updates=$(psql_ "SELECT coalesce(sum(n_tup_upd), 0) - $before FROM pg_stat_user_tables WHERE relname = 'protohost_sequences'")
      [[ $updates -gt 0 ]] && break
      sleep 0.1
    done
  fi
  /usr/bin/python3 - "$rep" "$store" "$work" "${updates:-}" >>"$RESULTS" <<'PY'
import json, sys
rep, store, work, updates = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
try:
    fib = json.loads(open(f"{work}/fib.json").read().strip().splitlines()[-1])
except Exception as e:
    fib = {"error": str(e)}
answers = fib.get("total_msgs")
trips = int(updates) if updates else None
print(json.dumps({"rep": int(rep), "store": store, "answers_per_s": fib.get("msgs_per_s"),
                  "answers": answers, "errors": fib.get("errors"), "p99_us": fib.get("p99_us"),
                  "round_trips": trips,
                  "round_trips_per_1000": round(trips * 1000 / answers, 2) if trips and answers else None}))
PY
  tail -n 1 "$RESULTS"
}

for ((rep = 1; rep <= REPS; rep++)); do
  if ((rep % 2)); then order="file postgres"; else order="postgres file"; fi
  for store in $order; do run_one "$rep" "$store"; done
done

/usr/bin/python3 - "$RESULTS" "$BLOCK" >"$OUT/table.md" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
block = int(sys.argv[2])
def med(xs):
    xs = [x for x in xs if isinstance(x, (int, float))]
    return statistics.median(xs) if xs else None
def fmt(x, d=0):
    return "-" if x is None else f"{x:,.{d}f}"
print(f"| store | answers/s (median) | p99 (ms) | PostgreSQL round trips per 1,000 answers (1,000 / reserve_block = {1000 / block:.2f}) |")
print("|---|---|---|---|")
for store in ("file", "postgres"):
    rs = [r for r in rows if r["store"] == store]
    p99 = med([r["p99_us"] for r in rs])
    print(f"| {store} | {fmt(med([r['answers_per_s'] for r in rs]))} | {fmt(None if p99 is None else p99 / 1e3, 2)} | "
          f"{fmt(med([r.get('round_trips_per_1000') for r in rs]), 2) if store == 'postgres' else '-'} |")
ratios = []
for rep in sorted({r["rep"] for r in rows}):
    f = [r for r in rows if r["rep"] == rep and r["store"] == "file"]
    p = [r for r in rows if r["rep"] == rep and r["store"] == "postgres"]
    if f and p and f[0]["answers_per_s"] and p[0]["answers_per_s"]:
        ratios.append(p[0]["answers_per_s"] / f[0]["answers_per_s"])
print()
print(f"postgres / file answers/s: x{fmt(med(ratios), 2)} (per repetition: {', '.join(fmt(x, 2) for x in ratios)}); "
      f"the issue's target: at least x0.90")
errors = [r for r in rows if r.get("errors")]
print(f"Runs with loadgen errors: {len(errors)} of {len(rows)}")
PY
cat "$OUT/table.md"
