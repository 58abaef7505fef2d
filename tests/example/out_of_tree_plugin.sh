#!/usr/bin/env bash
# The SDK proven by an outsider: install the SDK from this build, build
# examples/out-of-tree-plugin against the installed package only, run its unit
# test, load it into the real host (which must not warn that it cannot unload
# it) and check the daytime answer end to end.
# examples/lookup is built and unit-tested against the same package.
# Usage: out_of_tree_plugin.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1 build=$2
work=$(mktemp -d)
host_pid=
cleanup() { [[ -n "$host_pid" ]] && kill "$host_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

cmake --install "$build" --prefix "$work/prefix" >/dev/null
# Only the installed package: the example's build cannot see the source tree.
cmake -S "$src/examples/out-of-tree-plugin" -B "$work/example" -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DCMAKE_CXX_FLAGS="${PROTOHOST_EXAMPLE_CXXFLAGS:-}" -DCMAKE_MODULE_LINKER_FLAGS="${PROTOHOST_EXAMPLE_LDFLAGS:-}" \
  -DCMAKE_EXE_LINKER_FLAGS="${PROTOHOST_EXAMPLE_LDFLAGS:-}" >/dev/null
cmake --build "$work/example" -j2 >/dev/null
if [[ -x "$work/example/daytime_test" ]]; then "$work/example/daytime_test" >/dev/null; fi
# The worked client example (docs/writing-a-plugin.md section 8) builds the same way.
cmake -S "$src/examples/lookup" -B "$work/lookup" -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DCMAKE_CXX_FLAGS="${PROTOHOST_EXAMPLE_CXXFLAGS:-}" -DCMAKE_MODULE_LINKER_FLAGS="${PROTOHOST_EXAMPLE_LDFLAGS:-}" \
  -DCMAKE_EXE_LINKER_FLAGS="${PROTOHOST_EXAMPLE_LDFLAGS:-}" >/dev/null
cmake --build "$work/lookup" -j2 >/dev/null
[[ -f "$work/lookup/lookup.so" ]] || { echo "examples/lookup did not build lookup.so" >&2; exit 1; }
if [[ -x "$work/lookup/lookup_test" ]]; then "$work/lookup/lookup_test" >/dev/null; fi

mkdir "$work/plugins"
cp "$work/example/daytime.so" "$work/plugins/"
cat > "$work/host.ini" <<INI
[host]
plugins_dir = plugins

[listener.daytime]
plugin = daytime
listen = tcp:0:interface=127.0.0.1
fixed_time = 1795731000
INI
"$build/bin/host" --config "$work/host.ini" 2>"$work/host.log" &
host_pid=$!
port=
for _ in $(seq 1 100); do
  port=$(grep -oP 'listening on 127\.0\.0\.1:\K[0-9]+' "$work/host.log" || true)
  [[ -n "$port" ]] && break
  kill -0 "$host_pid" 2>/dev/null || { cat "$work/host.log" >&2; exit 1; }
  sleep 0.1
done
[[ -n "$port" ]] || { echo "host did not start" >&2; cat "$work/host.log" >&2; exit 1; }
# protohost_add_plugin builds without GNU unique symbols, so the host can unload the plugin.
if grep -q "GNU unique symbols" "$work/host.log"; then
  echo "the installed protohost_add_plugin built a plugin that can never be unloaded:" >&2
  cat "$work/host.log" >&2
  exit 1
fi
answer=$(python3 - "$port" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
data = b""
while True:
    chunk = s.recv(1024)
    if not chunk:
        break
    data += chunk
sys.stdout.write(data.decode())
PY
)
expected=$'Thursday, November 26, 2026 22:10:00-UTC\r'
if [[ "$answer" != "$expected" ]]; then
  echo "unexpected answer: $(printf %q "$answer")" >&2
  exit 1
fi
kill -TERM "$host_pid"
wait "$host_pid"
host_pid=
echo "out-of-tree daytime plugin: built against the installed SDK, loaded and answered"
