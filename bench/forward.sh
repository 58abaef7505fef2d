# bench/forward.sh: the forwarding rows (issue 10), sourced by `bench/run.sh --forward`
# after its set-up; it uses run.sh's start_server, stop_all, run_row_all, log,
# PORT, PID, CPU_PIDS, SERVER_CPU, WORK, RESULTS, REPS, ROWARGS.
#
# TCP forwarders, each in front of the same upstream, bench/epoll_echo:
#   haproxy        HAProxy (Debian 12: 2.6) `mode tcp`, nbthread 1
#   nginx          nginx (Debian 12: 1.22) `stream { proxy_pass }`, one worker
#   hostfwd        the host, threads = 1, `plugin = portforward`, `upstream = tcp:127.0.0.1:PORT`
#   haproxysplice  HAProxy with `option splice-auto` (not in the default set: does splice(2)
#                  help the 16 KiB row?)
# The proxy is pinned to the server core ($SCPU); the upstream and the load generator share
# the other ($LCPU), so the proxy's core runs nothing else of the benchmark. The proxy's CPU
# is utime+stime from /proc/PID/stat of all its processes (nginx: master and worker), summed
# by the load generator (--server-pid A,B). Configs go to $WORK/fwd, everything listens on
# 127.0.0.1 only and is started and stopped by the kit. The host row needs
# $PLUGINS/portforward.so; without it the row is skipped with a message (never estimated).

FWD_DIR="$WORK/fwd"
mkdir -p "$FWD_DIR"
PORT[upstream]=$((PORT_BASE + 40))
PORT[haproxy]=$((PORT_BASE + 41))
PORT[nginx]=$((PORT_BASE + 42))
PORT[hostfwd]=$((PORT_BASE + 43))
PORT[haproxysplice]=$((PORT_BASE + 44))
SERVER_CPU[upstream]=$LCPU
NGINX_STREAM_MODULE=/usr/lib/nginx/modules/ngx_stream_module.so
FWD_ROWS=(c50d1 c50d16 c10x16k churn)
# two fds per forwarded connection, two more for a splice pipe, under the kit's fd limit
# (HAProxy refuses to start otherwise)
FWD_MAXCONN=$(( $(ulimit -n) / 4 - 100 ))
((FWD_MAXCONN > 20000)) && FWD_MAXCONN=20000

fwd_install_tools() {  # Debian packages of the peers, when run as root
  [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null || return 0
  local p missing=()
  for p in haproxy nginx libnginx-mod-stream; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  log "installing ${missing[*]}"
  # policy-rc.d 101: the packages' own services (port 80) are not started
  local prc=/usr/sbin/policy-rc.d made=0
  [[ -e $prc ]] || { printf '#!/bin/sh\nexit 101\n' >"$prc"; chmod +x "$prc"; made=1; }
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  ((made)) && rm -f "$prc"
  return 0
}

fwd_haproxy_cfg() {  # name port [splice] -> path
  local cfg="$FWD_DIR/$1.cfg"
  cat >"$cfg" <<EOF
global
    nbthread 1
    maxconn $FWD_MAXCONN
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
$([[ ${3:-} == splice ]] && echo "    option splice-auto")
frontend fe
    bind 127.0.0.1:$2
    default_backend be
backend be
    server up 127.0.0.1:${PORT[upstream]}
EOF
  echo "$cfg"
}

fwd_nginx_cfg() {  # port -> path
  local dir="$FWD_DIR/nginx"
  mkdir -p "$dir"
  cat >"$dir/nginx.conf" <<EOF
load_module $NGINX_STREAM_MODULE;
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile $(ulimit -n);
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events {
    worker_connections $((FWD_MAXCONN * 2));
}
stream {
    upstream echo {
        server 127.0.0.1:${PORT[upstream]};
    }
    server {
        listen 127.0.0.1:$1;
        proxy_pass echo;
    }
}
EOF
  echo "$dir/nginx.conf"
}

fwd_host_ini() {  # port -> path
  local ini="$FWD_DIR/hostfwd.ini"
  cat >"$ini" <<EOF
[host]
plugins_dir = $PLUGINS
threads = 1
log_level = warning

[listener.forward]
plugin = portforward
listen = tcp:$1:interface=127.0.0.1
upstream = tcp:127.0.0.1:${PORT[upstream]}
EOF
  echo "$ini"
}

fwd_server_cmd() {  # name port -> CMD (called by run.sh's server_cmd)
  case $1 in
    upstream) CMD=("$KIT_BUILD/bin/epoll_echo" "$2") ;;
    haproxy) CMD=(haproxy -db -f "$(fwd_haproxy_cfg haproxy "$2")") ;;
    haproxysplice) CMD=(haproxy -db -f "$(fwd_haproxy_cfg haproxysplice "$2" splice)") ;;
    nginx) CMD=(nginx -p "$FWD_DIR/nginx" -e "$FWD_DIR/nginx/error.log" -c "$(fwd_nginx_cfg "$2")") ;;
    hostfwd) CMD=("$HOST_BIN" --config "$(fwd_host_ini "$2")") ;;
  esac
}

fwd_note_cpu_pids() {  # name: every process of the proxy, for the CPU sum (nginx forks its worker)
  local pid=${PID[$1]} kids deadline=$((SECONDS + 5))
  CPU_PIDS[$1]=$pid
  [[ $1 == nginx ]] || return 0
  until kids=$(ps -o pid= --ppid "$pid" | tr -s ' \n' ',' | sed 's/^,//; s/,$//') && [[ -n $kids ]]; do
    ((SECONDS < deadline)) || { log "nginx: no worker process under $pid"; return 1; }
    sleep 0.05
  done
  CPU_PIDS[$1]="$pid,$kids"
}

fwd_main() {
  fwd_install_tools
  local s want=() skipped=()
  for s in $FWD_SERVERS; do
    case $s in
      haproxy|haproxysplice)
        if command -v haproxy >/dev/null; then want+=("$s"); else log "haproxy not installed: skipping $s"; fi ;;
      nginx)
        if command -v nginx >/dev/null && [[ -e $NGINX_STREAM_MODULE ]]; then want+=(nginx)
        else log "nginx or its stream module (libnginx-mod-stream) not installed: skipping nginx"; fi ;;
      hostfwd)
        if [[ -e $PLUGINS/portforward.so ]]; then want+=(hostfwd)
        else
          log "host row SKIPPED: $PLUGINS/portforward.so is not built (no portforward plugin yet); no host numbers are reported"
          skipped+=(--pending "hostfwd=pending: the portforward plugin is not built yet")
        fi ;;
      *) echo "run.sh: unknown forwarding server $s (haproxy nginx hostfwd haproxysplice)" >&2; exit 64 ;;
    esac
  done
  ((${#want[@]})) || { log "no forwarder can run here"; exit 2; }
  log "forwarding rows: ${want[*]} in front of epoll_echo :${PORT[upstream]} (proxy cpu $SCPU, upstream + loadgen cpu $LCPU)"
  local rep i n=${#want[@]} order row
  for ((rep = 1; rep <= REPS; rep++)); do
    order=()
    for ((i = 0; i < n; i++)); do order+=("${want[$(((i + rep - 1) % n))]}"); done
    log "repetition $rep/$REPS, order: ${order[*]}"
    start_server upstream || { FAILED=1; break; }
    for s in "${order[@]}"; do
      if start_server "$s"; then fwd_note_cpu_pids "$s" || FAILED=1; else FAILED=1; fi
    done
    sleep 0.3
    for row in "${FWD_ROWS[@]}"; do run_row_all "$rep" "$row" "${order[@]}"; done
    stop_all
  done
  "$PY" "$BENCH/forward_report.py" --results "$RESULTS" --servers "${FWD_SERVERS}" --out "$WORK/forwarding.md" "${skipped[@]}" \
    --machine "$(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u '+%Y-%m-%d %H:%M UTC')" \
    --versions "$(haproxy -v 2>/dev/null | head -1 | cut -d' ' -f1-3); $(nginx -v 2>&1)" || FAILED=1
  cat "$WORK/forwarding.md"
  log "forwarding report: $WORK/forwarding.md (raw results: $RESULTS)"
  ((FAILED)) && { log "some rows failed or had errors (see $RESULTS and $WORK/logs)"; exit 1; }
  exit 0
}
