#!/usr/bin/env bash
# testssl.sh (Debian's package) against an ssl: listener of the host, with the
# test certificates (tests/tls/make-test-certs.sh): fails when any finding is
# rated HIGH or CRITICAL. The summary (every finding of severity LOW and
# above, and the protocol and cipher lines) goes to stdout, for the CI log.
#
# Usage: scripts/testssl-check.sh [BUILD_DIR]   (default build; installs testssl.sh as root when missing)
# Loopback only; bounded: testssl gets 15 minutes, then this fails.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
if ! command -v testssl >/dev/null; then
  if [[ $(id -u) -ne 0 ]]; then echo "testssl-check: testssl.sh is not installed (apt-get install testssl.sh)" >&2; exit 1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends testssl.sh >/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends testssl.sh >/dev/null; }
fi
work=$(mktemp -d)
pid=""
trap '[[ -n $pid ]] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
TLS_TEST_CERT_DAYS=90 tests/tls/make-test-certs.sh "$work/tls" >/dev/null
cat >"$work/host.ini" <<INI
[host]
plugins_dir = $PWD/$build/plugins
threads = 1
[listener.echo-tls]
plugin = echo
listen = ssl:0:interface=127.0.0.1:certKey=$work/tls/localhost.pem:privateKey=$work/tls/localhost.key
INI
"$build/bin/host" --config "$work/host.ini" 2>"$work/host.log" &
pid=$!
port=""
for _ in $(seq 100); do
  port=$(sed -n 's/.*listening on ssl:127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$work/host.log" | head -1)
  [[ -n $port ]] && break
  sleep 0.1
done
[[ -n $port ]] || { cat "$work/host.log" >&2; exit 1; }
echo "testssl-check: testssl $(testssl --version 2>/dev/null | sed -n 's/.*testssl *\([0-9][0-9.]*\) from.*/\1/p' | head -1) against ssl:127.0.0.1:$port"
# --warnings off: no questions asked.
rc=0
# The default run: protocols, cipher categories, forward secrecy, server
# defaults and preferences, vulnerabilities, client simulation.
# --add-ca: the test CA is the trust anchor, as a public one would be.
timeout 900 testssl --quiet --color 0 --warnings off --add-ca "$work/tls/ca.pem" --jsonfile "$work/result.json" \
  "127.0.0.1:$port" >"$work/out.txt" 2>&1 || rc=$?
python3 - "$work/result.json" <<'PY'
import json, sys
findings = json.load(open(sys.argv[1]))
order = {"OK": 0, "INFO": 0, "LOW": 1, "MEDIUM": 2, "HIGH": 3, "CRITICAL": 4}
bad = []
for f in findings:
    sev = f.get("severity", "INFO")
    if order.get(sev, 0) >= 1 or f["id"].startswith(("SSLv", "TLS1", "cipherlist_", "FS")):
        print(f"  {sev:8} {f['id']}: {f['finding']}")
    if order.get(sev, 0) >= 3 and f["id"] not in ("scanProblem",):
        bad.append(f)
print(f"testssl-check: {len(findings)} findings, {len(bad)} rated HIGH or CRITICAL")
for f in bad:
    print(f"  FAIL {f['severity']} {f['id']}: {f['finding']}")
sys.exit(1 if bad else 0)
PY
status=$?
if [[ $rc -ge 240 ]]; then echo "testssl-check: testssl failed to run (exit $rc)"; tail -20 "$work/out.txt"; exit 1; fi
grep -q "TLS handshake failed" "$work/host.log" && echo "testssl-check: the host logged failed handshakes (expected: testssl probes old protocols)"
exit $status
