#!/usr/bin/env bash
# Appends one line of etc/sample-access.log to etc/var/access.log every second
# (what the default weblog listener tails), so `nc 127.0.0.1 8888` shows hits.
# Stops after COUNT lines (default 600) or Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p etc/var
count=${1:-600}
for ((i = 0; i < count; i++)); do
  shuf -n1 etc/sample-access.log >> etc/var/access.log
  sleep 1
done
