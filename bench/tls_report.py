#!/usr/bin/python3
"""The TLS rows' table (bench/run.sh --tls, bench/tls.sh) as Markdown.

Per row: the TLS limit's (bench/tls_echo) and the host's msgs/s (handshakes/s on the
handshake rows), host/limit taken within each repetition (the two ran back to back) and the
median over repetitions, each server's CPU (% of one core), the same ratio per server
CPU-second (msgs/s / CPU share: where the load generator, not the server, is the bottleneck,
this is the comparison that means something), the load generator's CPU, p99 latency and
errors. Standard library only.
"""
import argparse
import json

from forward_report import fmt, med  # bench/forward_report.py, beside this file

ROWS = [
    ("tls64", "50 conns x 64 B, depth 1", "msgs/s", "tlslimit", "hosttls"),
    ("tls16k", "10 conns x 16 KiB, depth 1", "msgs/s", "tlslimit", "hosttls"),
    ("tlshs-ecdsa", "handshakes, ECDSA P-256 (10 at a time)", "handshakes/s", "tlslimit", "hosttls"),
    ("tlshs-rsa", "handshakes, RSA 2048 (10 at a time)", "handshakes/s", "tlslimit-rsa", "hosttls-rsa"),
]


def ratio(v):
    return "–" if v is None else f"{v:.3f}x"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--machine", default="")
    ap.add_argument("--versions", default="")
    a = ap.parse_args()

    res = {}  # res[row][server][rep] = loadgen result
    rcs = {}
    for line in open(a.results):
        if line.strip():
            r = json.loads(line)
            res.setdefault(r["row"], {}).setdefault(r["server"], {})[r["rep"]] = r.get("result") or {}
            rcs.setdefault((r["row"], r["server"]), []).append(r["rc"])

    def eff(d):
        cpu = d.get("server_cpu_pct")
        return d["msgs_per_s"] / (cpu / 100.0) if d.get("msgs_per_s") and cpu else None

    out = []
    w = out.append
    w("| row | server | msgs/s | host/limit | server CPU % | per server CPU-s | host/limit (CPU) "
      "| loadgen CPU % | p99 µs | errors | host/limit by rep |")
    w("|---|---|---|---|---|---|---|---|---|---|---|")
    bad = 0
    for row, title, unit, limit, host in ROWS:
        if row not in res:
            continue
        lim, hst = res[row].get(limit, {}), res[row].get(host, {})
        reps = sorted(set(lim) & set(hst))
        rates = [hst[r]["msgs_per_s"] / lim[r]["msgs_per_s"] for r in reps
                 if hst[r].get("msgs_per_s") and lim[r].get("msgs_per_s")]
        effs = [eff(hst[r]) / eff(lim[r]) for r in reps if eff(hst[r]) and eff(lim[r])]
        for name, runs, is_host in (("limit (`tls_echo`)", lim, False), ("host", hst, True)):
            vals = list(runs.values())
            errors = sum((d.get("errors") or 0) for d in vals)
            bad += errors + sum(1 for rc in rcs.get((row, host if is_host else limit), []) if rc != 0)
            w("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
                f"{title} ({unit})" if not is_host else "", name,
                fmt(med([d.get("msgs_per_s") for d in vals])),
                ratio(med(rates)) if is_host else "1",
                fmt(med([d.get("server_cpu_pct") for d in vals])),
                fmt(med([eff(d) for d in vals])),
                ratio(med(effs)) if is_host else "1",
                fmt(med([d.get("loadgen_cpu_pct") for d in vals])),
                fmt(med([d.get("p99_us") for d in vals])),
                errors,
                ", ".join(f"{x:.3f}" for x in rates) if is_host else ""))
    ciphers = sorted({f"{d.get('tls_version')} {d.get('tls_cipher')}" for row in res.values()
                      for runs in row.values() for d in runs.values() if d.get("tls_cipher")})
    w("")
    w(f"Negotiated: {', '.join(ciphers) or '–'}. Medians over {len({r for row in res.values() for s in row.values() for r in s})} "
      "repetition(s); ratios taken within each repetition.")
    if a.machine:
        w(f"Machine: {a.machine}.")
    if a.versions:
        w(f"Versions: {a.versions}.")
    if bad:
        w(f"**{bad} errors or failed runs** (see results.jsonl and logs/).")
    open(a.out, "w").write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
