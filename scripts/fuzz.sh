#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan+UBSan) and runs each for
# SECONDS (default 60) on a copy of its seed corpus. Exits non-zero when a
# target finds a crash, leak or sanitizer report (the input is kept in
# build-fuzz/artifacts/). Usage: scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
packages=(clang libclang-rt-14-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
scripts/bootstrap.sh build >/dev/null  # the other build-time packages
cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DPROTOHOST_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzzers
targets=$(cd build-fuzz/bin && ls *_fuzzer)
mkdir -p build-fuzz/artifacts
status=0
for t in $targets; do
  name=${t%_fuzzer}
  work=build-fuzz/corpus-work/$name
  rm -rf "$work" && mkdir -p "$work"
  cp fuzz/corpus/"$name"/* "$work"/ 2>/dev/null || true
  echo "fuzz: $name for ${seconds}s"
  if ! build-fuzz/bin/"$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix=build-fuzz/artifacts/"$name"- "$work" > build-fuzz/"$name".log 2>&1; then
    echo "fuzz: $name FAILED"; tail -40 build-fuzz/"$name".log; status=1
  else
    grep -E "^Done|#[0-9]+.*DONE" build-fuzz/"$name".log | tail -1
  fi
done
exit $status
