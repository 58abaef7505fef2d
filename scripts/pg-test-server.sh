#!/usr/bin/env bash
# A throwaway PostgreSQL 15 (Debian's postgresql-15) in a directory, on a free
# loopback port, for tests and for trying store = postgres by hand.
#
#   scripts/pg-test-server.sh start DIR [PORT]  initdb (first time) and start; prints the port
#   scripts/pg-test-server.sh stop DIR          fast shutdown (pg_ctl -m fast), waits for it
#   scripts/pg-test-server.sh kill DIR          SIGKILL to the postmaster and its children (a crash)
#   scripts/pg-test-server.sh conninfo DIR      prints a libpq URI for it (user protohost, no password)
#   scripts/pg-test-server.sh standby DIR PRIMARY_DIR [PORT]
#                                               a streaming standby of PRIMARY_DIR's server (pg_basebackup),
#                                               started and made the primary's synchronous standby; prints the port
#   scripts/pg-test-server.sh promote DIR        promotes the standby in DIR to primary (pg_ctl promote, waited for)
#
# The cluster: superuser "protohost" whose password is in DIR/password (mode 0600),
# scram-sha-256 over TCP, trust only on the Unix socket in DIR. It listens on
# 127.0.0.1 only. DIR/port keeps the port, so a later start (after stop or kill)
# uses the same one. PostgreSQL refuses to run as root: as root, the server runs
# as the user $PG_TEST_USER (default nobody), who then owns DIR.
set -euo pipefail

usage="usage: pg-test-server.sh start|stop|kill|conninfo|promote DIR [PORT] | standby DIR PRIMARY_DIR [PORT]"
cmd=${1:?$usage}
dir=${2:?$usage}
bin=${PG_BIN:-/usr/lib/postgresql/15/bin}
dir=$(cd "$dir" && pwd)
data=$dir/data

as_server() {
  if [[ $(id -u) -eq 0 ]]; then
    local user=${PG_TEST_USER:-nobody}
    setpriv --reuid="$user" --regid="$(id -g "$user")" --clear-groups -- "$@"
  else
    "$@"
  fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_server() {  # port
  echo "$1" >"$dir/port"
  as_server "$bin/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -c port=$1 -c unix_socket_directories=$dir -c fsync=on" start \
      >>"$dir/pg_ctl.log" 2>&1 ||
      { tail -5 "$dir/pg_ctl.log" "$dir/server.log" >&2; exit 1; }
}

case $cmd in
  start)
    [[ -x $bin/initdb ]] || { echo "pg-test-server: $bin/initdb not found (apt-get install postgresql-15)" >&2; exit 2; }
    if [[ ! -f $data/PG_VERSION ]]; then
      [[ -f $dir/password ]] || (umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$dir/password")
      chmod 600 "$dir/password"
      mkdir -p "$data"
      if [[ $(id -u) -eq 0 ]]; then
        # The server's user must own DIR (its socket and log) and read the password file during initdb.
        chown "${PG_TEST_USER:-nobody}" "$dir" "$data"
        cp "$dir/password" "$dir/.initdb-password" && chown "${PG_TEST_USER:-nobody}" "$dir/.initdb-password"
      else
        cp "$dir/password" "$dir/.initdb-password"
      fi
      as_server "$bin/initdb" -D "$data" -U protohost --pwfile="$dir/.initdb-password" --auth-local=trust \
        --auth-host=scram-sha-256 -E UTF8 --no-instructions >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; exit 1; }
      rm -f "$dir/.initdb-password"
    fi
    port=${3:-$(cat "$dir/port" 2>/dev/null || free_port)}
    start_server "$port"
    echo "$port"
    ;;
  standby)
    primary=$(cd "${3:?$usage}" && pwd)
    if [[ ! -f $data/PG_VERSION ]]; then
      cp "$primary/password" "$dir/password" && chmod 600 "$dir/password"
      mkdir -p "$data"
      [[ $(id -u) -eq 0 ]] && chown "${PG_TEST_USER:-nobody}" "$dir" "$data"
      chmod 700 "$data"
      name=standby_$(basename "$dir" | tr -c 'a-zA-Z0-9_\n' _)
      # -R writes primary_conninfo (with this application_name) and standby.signal; -X stream: WAL during the copy.
      as_server env PGPASSWORD="$(cat "$dir/password")" "$bin/pg_basebackup" -D "$data" -R -X stream -c fast \
        -d "host=127.0.0.1 port=$(cat "$primary/port") user=protohost application_name=$name" \
        >"$dir/basebackup.log" 2>&1 || { cat "$dir/basebackup.log" >&2; exit 1; }
      echo "$name" >"$dir/name"
    fi
    port=${4:-$(cat "$dir/port" 2>/dev/null || free_port)}
    start_server "$port"
    # The primary waits for this standby's flush before it acknowledges a commit.
    psql -XAtq -h "$primary" -p "$(cat "$primary/port")" -U protohost -d postgres \
      -c "ALTER SYSTEM SET synchronous_standby_names = 'FIRST 1 ($(cat "$dir/name"))'" -c "SELECT pg_reload_conf()" \
      >/dev/null
    echo "$port"
    ;;
  promote)
    as_server "$bin/pg_ctl" -D "$data" -w -t 60 promote >/dev/null
    ;;
  stop)
    as_server "$bin/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null
    ;;
  kill)
    pid=$(head -1 "$data/postmaster.pid")
    # The postmaster and every backend: a crash of the whole server, as after kill -9 by the OOM killer.
    pkill -KILL -P "$pid" || true
    kill -KILL "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    ;;
  conninfo)
    echo "postgresql://protohost@127.0.0.1:$(cat "$dir/port")/postgres?connect_timeout=5"
    ;;
  *)
    echo "pg-test-server: unknown command $cmd" >&2
    exit 2
    ;;
esac
