#!/usr/bin/python3
"""The forwarding rows' table (bench/run.sh --forward, bench/forward.sh) as Markdown.

Per row and proxy: msgs/s, the proxy's CPU (% of one core, all its processes), messages per
proxy CPU-second (msgs/s / CPU share), and both as ratios to HAProxy taken within each
repetition (the proxies ran back to back), median over repetitions. A proxy in --servers with
no result (the host before the portforward plugin exists) gets a "pending" line, no number.
Standard library only.
"""
import argparse
import json
import statistics

ROWS = [
    ("c50d1", "50 conns x 64 B, depth 1", "msgs/s"),
    ("c50d16", "50 conns x 64 B, depth 16", "msgs/s"),
    ("c10x16k", "10 conns x 16 KiB, depth 1", "msgs/s"),
    ("churn", "connect churn, 10 at a time, 64 B", "conns/s"),
]
NAMES = {"haproxy": "HAProxy `mode tcp`", "nginx": "nginx `stream`", "hostfwd": "host `portforward`",
         "haproxysplice": "HAProxy `splice-auto`"}
BASE = "haproxy"


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(v, digits=0):
    return "–" if v is None else f"{v:,.{digits}f}"


def ratio(v):
    return "–" if v is None else f"{v:.2f}x"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", required=True)
    ap.add_argument("--servers", required=True, help="the proxies asked for, in table order")
    ap.add_argument("--out", required=True)
    ap.add_argument("--machine", default="")
    ap.add_argument("--versions", default="")
    ap.add_argument("--pending", action="append", default=[], help="NAME=why it did not run")
    a = ap.parse_args()

    # res[row][server][rep] = loadgen result
    res = {}
    for line in open(a.results):
        if line.strip():
            r = json.loads(line)
            res.setdefault(r["row"], {}).setdefault(r["server"], {})[r["rep"]] = r.get("result") or {}

    def rate(d):
        return d.get("msgs_per_s")

    def eff(d):
        cpu = d.get("server_cpu_pct")
        return d["msgs_per_s"] / (cpu / 100.0) if d.get("msgs_per_s") and cpu else None

    pending = dict(p.split("=", 1) for p in a.pending)
    servers = a.servers.split()
    reps = sorted({rep for row in res.values() for per in row.values() for rep in per})
    out = []
    w = out.append
    w(f"Measured {a.machine}; {a.versions}. {len(reps)} repetition(s).")
    w("")
    w("| row | proxy | msgs/s | x HAProxy | p99 µs | proxy CPU % | msgs per proxy CPU-s | x HAProxy | others' CPU % | errors |")
    w("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for key, title, unit in ROWS:
        per = res.get(key, {})
        first = True
        for s in servers:
            label = f"{title} ({unit})" if first else ""
            first = False
            runs = per.get(s, {})
            if not runs:
                why = pending.get(s, "not run (see the log)")
                w(f"| {label} | {NAMES.get(s, s)} | {why} | | | | | | | |")
                continue
            base = per.get(BASE, {})
            rr = [rate(runs[r]) / rate(base[r]) if r in base and rate(runs.get(r, {})) and rate(base[r]) else None
                  for r in reps]
            er = [eff(runs[r]) / eff(base[r]) if r in base and r in runs and eff(runs[r]) and eff(base[r]) else None
                  for r in reps]
            ds = list(runs.values())
            errs = sum(int(d.get("errors", 0) or 0) for d in ds) if all(ds) else "run failed"
            w(f"| {label} | {NAMES.get(s, s)} | {fmt(med(rate(d) for d in ds))} | "
              f"{'1' if s == BASE else ratio(med(rr))} | {fmt(med(d.get('p99_us') for d in ds), 1)} | "
              f"{fmt(med(d.get('server_cpu_pct') for d in ds))} | {fmt(med(eff(d) for d in ds))} | "
              f"{'1' if s == BASE else ratio(med(er))} | {fmt(med(d.get('foreign_cpu_pct') for d in ds))} | {errs} |")
    w("")
    w("<details><summary>Per repetition: msgs/s, msgs per proxy CPU-second (ratio of the latter to HAProxy)</summary>")
    w("")
    w("| row | proxy | " + " | ".join(f"rep {r}" for r in reps) + " |")
    w("|---|---|" + "---:|" * len(reps))
    for key, _, _ in ROWS:
        per = res.get(key, {})
        for s in servers:
            if s not in per:
                continue
            cells = []
            for r in reps:
                d, b = per[s].get(r) or {}, per.get(BASE, {}).get(r) or {}
                e, eb = eff(d) if d else None, eff(b) if b else None
                cells.append(f"{fmt(rate(d))}; {fmt(e)}" + (f" ({e / eb:.2f})" if e and eb and s != BASE else ""))
            w(f"| {key} | {NAMES.get(s, s)} | " + " | ".join(cells) + " |")
    w("")
    w("</details>")
    open(a.out, "w").write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
