#!/usr/bin/python3
"""Per-message user-space instruction counts from two callgrind runs.

usage: cgdiff.py SMALL.out BIG.out MSGS_DELTA

The server ran once for SMALL messages and once for BIG messages (same
connection count, same everything else). Start-up, plugin loading, connection
set-up and shutdown cost the same in both, so (Ir(BIG) - Ir(SMALL)) / delta is
the cost of one echoed message, free of fixed costs. The same difference is
taken per function (self cost, and inclusive cost) from callgrind_annotate.
Prints JSON on stdout.
"""
import json
import re
import subprocess
import sys

LINE = re.compile(r"^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.*?)\s*$")
TOTAL = re.compile(r"^\s*([\d,]+)\s+\(\s*100\.0%\)\s+PROGRAM TOTALS")


def annotate(path, inclusive):
    out = subprocess.run(
        # --auto=no: only the per-function table (source annotation lines carry counts too).
        ["callgrind_annotate", "--auto=no", "--inclusive=" + ("yes" if inclusive else "no"), "--threshold=100", path],
        capture_output=True, text=True, check=True).stdout
    total, funcs = 0, {}
    for line in out.splitlines():
        m = TOTAL.match(line)
        if m:
            total = int(m.group(1).replace(",", ""))
            continue
        m = LINE.match(line)
        if not m or "PROGRAM TOTALS" in line or "=>" in line:
            continue
        key = m.group(2)
        funcs[key] = funcs.get(key, 0) + int(m.group(1).replace(",", ""))
    return total, funcs


def short_name(key):
    """'file:ns::f(args) [lib]' -> ('ns::f', 'lib')."""
    lib = ""
    m = re.search(r"\s\[([^\]]+)\]$", key)
    if m:
        lib = m.group(1).rsplit("/", 1)[-1]
        key = key[: m.start()]
    # drop the 'file:' prefix (file names never contain '(' or '<')
    depth, cut = 0, None
    for i, ch in enumerate(key):
        if ch in "<(":
            depth += 1
        elif ch in ">)":
            depth -= 1
        elif ch == ":" and depth == 0 and key[i + 1: i + 2] != ":" and key[i - 1: i] != ":":
            cut = i
            break
    name = key[cut + 1:] if cut is not None else key
    # drop the argument list and template arguments for readability
    out, depth = [], 0
    for ch in name:
        if ch == "(" and depth == 0:
            break
        if ch == "<":
            depth += 1
            if depth == 1:
                out.append("<>")
            continue
        if ch == ">":
            depth -= 1
            continue
        if depth == 0:
            out.append(ch)
    name = "".join(out).strip()
    name = re.sub(r"@@GLIBC[\w.]*$", "", name)
    return name or key, lib


CATEGORIES = [  # first match wins; on the short function name and library
    ("locks (pthread mutex)", lambda n, l: n.startswith("pthread_mutex") or n.startswith("__pthread_mutex")),
    ("malloc/free", lambda n, l: n in ("malloc", "free", "_int_free", "_int_malloc", "operator new", "operator delete",
                                       "malloc_consolidate", "tcache_get", "cfree") or n.startswith("_int_")),
    ("RTTI (dynamic_cast)", lambda n, l: "dyncast" in n or n == "__dynamic_cast" or "type_info" in n),
    ("Poco reactor and notifications", lambda n, l: l.startswith("libPoco") or n.startswith("Poco::")),
    ("host (protohost::host)", lambda n, l: n.startswith("protohost::host")),
    ("plugin (echo)", lambda n, l: l.endswith(".so") and "echo" in l or "Echo" in n),
    ("Boost.Asio", lambda n, l: n.startswith("boost::")),
    ("libc syscall wrappers and time", lambda n, l: n in ("recv", "send", "__libc_recv", "__libc_send", "epoll_wait",
                                                          "__GI_epoll_wait", "read", "write", "__libc_read", "__libc_write",
                                                          "clock_gettime", "__clock_gettime", "__pthread_enable_asynccancel",
                                                          "__pthread_disable_asynccancel", "__pthread_enable_asynccancel",
                                                          "epoll_ctl", "sendmsg", "recvmsg", "__libc_sendmsg",
                                                          "__libc_recvmsg", "accept4", "__vdso_clock_gettime")
                                                or "asynccancel" in n or "syscall" in n),
    ("dynamic loader (start-up)", lambda n, l: l.startswith("ld-linux")),
]


def main():
    small, big, delta = sys.argv[1], sys.argv[2], int(sys.argv[3])
    ts, fs = annotate(small, False)
    tb, fb = annotate(big, False)
    _, isml = annotate(small, True)
    _, ibig = annotate(big, True)
    funcs = []
    for key in set(fs) | set(fb):
        d = fb.get(key, 0) - fs.get(key, 0)
        di = ibig.get(key, 0) - isml.get(key, 0)
        name, lib = short_name(key)
        funcs.append({"function": name, "lib": lib, "self_per_msg": d / delta, "incl_per_msg": di / delta})
    funcs.sort(key=lambda f: -f["self_per_msg"])
    cats = {}
    for f in funcs:
        cat = "other"
        for cname, pred in CATEGORIES:
            if pred(f["function"], f["lib"]):
                cat = cname
                break
        cats[cat] = cats.get(cat, 0) + f["self_per_msg"]
    incl = sorted(funcs, key=lambda f: -f["incl_per_msg"])
    json.dump({
        "small": {"file": small, "ir": ts}, "big": {"file": big, "ir": tb}, "msgs_delta": delta,
        "ir_per_msg": (tb - ts) / delta,
        "ir_total_per_msg_big": None,
        "top_self": [f for f in funcs if f["self_per_msg"] > 0.5][:25],
        "top_inclusive": [f for f in incl if f["incl_per_msg"] > 0.5][:25],
        "categories": dict(sorted(cats.items(), key=lambda kv: -kv[1])),
    }, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
