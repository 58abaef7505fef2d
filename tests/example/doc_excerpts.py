#!/usr/bin/env python3
"""Keeps the code in docs/*.md in sync with the compiled code it quotes.

A fenced block preceded by the line
    <!-- excerpt: PATH -->
(PATH relative to the source tree) must be a quote of PATH: its lines, split
at lines that are only "// ..." (any indentation), are runs of consecutive
lines of PATH, in that order. Usage: doc_excerpts.py SOURCE_DIR DOC..."""
import re
import sys
from pathlib import Path

MARK = re.compile(r"^<!-- excerpt: (\S+) -->\s*$")
GAP = re.compile(r"^\s*// \.\.\.\s*$")


def find_run(lines, run, start):
    for i in range(start, len(lines) - len(run) + 1):
        if lines[i:i + len(run)] == run:
            return i + len(run)
    return -1


def check(source, doc):
    errors, count = [], 0
    text = doc.read_text().splitlines()
    i = 0
    while i < len(text):
        m = MARK.match(text[i])
        if not m:
            i += 1
            continue
        if i + 1 >= len(text) or not text[i + 1].startswith("```"):
            errors.append(f"{doc}:{i + 1}: an excerpt mark must be followed by a code fence")
            i += 1
            continue
        end = i + 2
        while end < len(text) and not text[end].startswith("```"):
            end += 1
        path = source / m.group(1)
        if not path.is_file():
            errors.append(f"{doc}:{i + 1}: {m.group(1)} does not exist")
            i = end + 1
            continue
        lines = [l.rstrip() for l in path.read_text().splitlines()]
        runs, run = [], []
        for l in text[i + 2:end]:
            if GAP.match(l):
                runs.append(run)
                run = []
            else:
                run.append(l.rstrip())
        runs.append(run)
        at = 0
        for r in (r for r in runs if r):
            nxt = find_run(lines, r, at)
            if nxt < 0:
                errors.append(f"{doc}:{i + 1}: this excerpt of {m.group(1)} is not in the file (from: {r[0].strip()!r})")
                break
            at = nxt
        count += 1
        i = end + 1
    return errors, count


def main():
    source = Path(sys.argv[1])
    errors, total = [], 0
    for d in sys.argv[2:]:
        e, n = check(source, Path(d))
        errors += e
        total += n
    for e in errors:
        print(e, file=sys.stderr)
    if total == 0:
        print("no excerpts found", file=sys.stderr)
        return 1
    print(f"{total} excerpts checked")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
