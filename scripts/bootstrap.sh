#!/usr/bin/env bash
# Installs what the build needs (only when missing), configures and builds.
# Usage: scripts/bootstrap.sh [BUILD_DIR] [extra cmake args...]
# Run as root on a fresh Debian 12 machine, or as a user with the packages installed.
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir=${1:-build}
shift || true

# Build: g++ cmake make and the -dev packages. Tests: python3 (the out-of-tree example's client),
# procps, systemd (systemd-socket-activate, for the socket-activation tests; they skip without it).
# README: netcat-openbsd (the nc examples; a fresh Debian has no nc). haproxy: the portforward
# e2e test runs it in front of the host (send-proxy-v2); its own service is not started (policy-rc.d).
# strace: reliability row T28 (SIGKILL injected at the fibonacci state write's write/fsync/rename).
# socat: a UDP client of the udp: echo e2e tests (tests/e2e/e2e_udp_test.cpp), IPv4 and IPv6.
# libssl-dev: ssl: listeners (OpenSSL 3); openssl: the command that makes the TLS test certificates
# (tests/tls/make-test-certs.sh) and the s_client the TLS e2e tests drive. python3-twisted,
# python3-openssl, python3-service-identity: Twisted's TLS client of the weblog-over-TLS e2e test
# (run with Debian's /usr/bin/python3).
# libpq-dev: fibonacci's store = postgres links libpq; postgresql: its e2e tests start a real PostgreSQL 15
# (scripts/pg-test-server.sh; the package's own cluster service is not started, policy-rc.d).
packages=(g++ cmake make libpoco-dev libboost-dev libgtest-dev libexpat1-dev python3 procps systemd netcat-openbsd
  haproxy strace socat libssl-dev openssl python3-twisted python3-openssl python3-service-identity libpq-dev
  postgresql)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "bootstrap: missing packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "bootstrap: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # policy-rc.d 101: packages' own services (haproxy on its default config) are not started
  prc=/usr/sbin/policy-rc.d made_prc=0
  [[ -e $prc ]] || { printf '#!/bin/sh\nexit 101\n' >"$prc"; chmod +x "$prc"; made_prc=1; }
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if ((made_prc)); then rm -f "$prc"; fi
fi

# "localhost" must resolve (the connect tests resolve it on the worker pool). Debian's installer
# and cloud images write these /etc/hosts lines; a bare root file system (debootstrap, some
# containers) has no /etc/hosts at all. Added only when the name does not resolve.
if ! getent hosts localhost >/dev/null 2>&1; then
  if [[ $(id -u) -eq 0 ]]; then
    echo "bootstrap: localhost does not resolve; adding Debian's localhost lines to /etc/hosts" >&2
    printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >> /etc/hosts
  else
    echo "bootstrap: warning: localhost does not resolve (add '127.0.0.1 localhost' to /etc/hosts)" >&2
  fi
fi

# promtool (for the metrics test) comes from Debian's prometheus package; only
# the one binary is unpacked into .tools/ (the package would also install a server).
if [[ ! -x .tools/bin/promtool ]] && ! command -v promtool >/dev/null && [[ $(id -u) -eq 0 ]]; then
  tmp=$(mktemp -d)
  if (cd "$tmp" && apt-get download -qq prometheus >/dev/null 2>&1) ||
     { apt-get update -qq && (cd "$tmp" && apt-get download -qq prometheus >/dev/null 2>&1); }; then
    dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/x" && mkdir -p .tools/bin && cp "$tmp/x/usr/bin/promtool" .tools/bin/
  else
    echo "bootstrap: could not fetch promtool; the metrics test checks the format in C++ only" >&2
  fi
  rm -rf "$tmp"
fi

werror=OFF
[[ "${CI:-}" == "true" ]] && werror=ON
cmake -S . -B "$build_dir" -DPROTOHOST_WERROR="$werror" "$@" >/dev/null
cmake --build "$build_dir" -j"$(nproc)"
