# bench/tls.sh: the TLS rows (issue 11), sourced by `bench/run.sh --tls` (and, short, by
# `bench/run.sh --smoke`) after its set-up; it uses run.sh's start_server, stop_all,
# run_row_all, log, PORT, PID, WORK, RESULTS, REPS, WARMUP, DURATION, LG_THREADS, FAILED.
#
# Servers, each with threads = 1 on the server core, echo over TLS on 127.0.0.1:
#   tlslimit       bench/tls_echo (the TLS limit: a minimal OpenSSL epoll echo with the
#                  host's TLS settings), ECDSA P-256 certificate
#   hosttls        the host, `plugin = echo`, `listen = ssl:PORT:...:certKey=...:privateKey=...`
#   tlslimit-rsa   and hosttls-rsa: the same with the RSA 2048 certificate (handshake row only)
# Rows (the load generator with --tls; every echoed byte compared with what was sent):
#   tls64          50 conns x 64 B, depth 1
#   tls16k         10 conns x 16 KiB, depth 1
#   tlshs-ecdsa    handshakes/s: loadgen --mode churn, 10 slots, each connect + full TLS 1.3
#                  handshake + one 64 B echo + close_notify + close, ECDSA P-256
#   tlshs-rsa      the same with RSA 2048
# Certificates: made in $WORK/tls by tls_make_certs, self-signed, CN and SAN localhost: an
# ECDSA P-256 one (localhost.pem/key, as tests/tls/make-test-certs.sh's) and an RSA 2048 one
# (rsa.pem/key); two openssl commands instead of that script's twelve (the smoke's time). The
# server sends the leaf only either way. The client does not verify it (no --tls-ca): the
# load generator's CPU is the scarcer one.
# Not run: kTLS against user space (`ktls=on`): the kernel here has no `tls` ULP.

TLS_DIR="$WORK/tls"
PORT[tlslimit]=$((PORT_BASE + 50))
PORT[hosttls]=$((PORT_BASE + 51))
PORT[tlslimit-rsa]=$((PORT_BASE + 52))
PORT[hosttls-rsa]=$((PORT_BASE + 53))
TLS_ECDSA_ROWS=(tls64 tls16k tlshs-ecdsa)
TLS_RSA_ROWS=(tlshs-rsa)

tls_make_certs() {  # DIR: localhost.pem/key (ECDSA P-256), rsa.pem/key (RSA 2048), mode 600 keys
  mkdir -p "$1"
  (
    umask 077
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
      -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout "$1/localhost.key" -out "$1/localhost.pem" 2>/dev/null
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
      -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout "$1/rsa.key" -out "$1/rsa.pem" 2>/dev/null
  )
}

tls_rowargs() {  # warmup duration: the rows' loadgen arguments into ROWARGS
  local t="--warmup $1 --duration $2 --tls --threads $LG_THREADS"
  ROWARGS[tls64]="--mode echo --conns 50 --size 64 --depth 1 $t"
  ROWARGS[tls16k]="--mode echo --conns 10 --size 16384 --depth 1 $t"
  ROWARGS[tlshs-ecdsa]="--mode churn --conns 10 --size 64 $t"
  ROWARGS[tlshs-rsa]="--mode churn --conns 10 --size 64 $t"
}

tls_server_cmd() {  # name port -> CMD (called by run.sh's server_cmd; the host's ini by its write_host_ini)
  local cert=localhost
  [[ $1 == *-rsa ]] && cert=rsa
  case $1 in
    tlslimit*) CMD=("$KIT_BUILD/bin/tls_echo" "$2" "$TLS_DIR/$cert.pem" "$TLS_DIR/$cert.key") ;;
    hosttls*) CMD=("$HOST_BIN" --config "$(write_host_ini "$1" 1 "$2" tls "$TLS_DIR/$cert")") ;;
  esac
}

tls_rows() {  # the TLS matrix, REPS repetitions, server order rotating; results into $RESULTS
  [[ -x $KIT_BUILD/bin/tls_echo ]] || { log "missing $KIT_BUILD/bin/tls_echo: no TLS rows"; FAILED=1; return; }
  [[ -s $TLS_DIR/rsa.key ]] || tls_make_certs "$TLS_DIR" || { log "cannot make the TLS certificates"; FAILED=1; return; }
  local rep row pair order
  for ((rep = 1; rep <= REPS; rep++)); do
    for pair in "tlslimit hosttls" "tlslimit-rsa hosttls-rsa"; do
      read -r -a order <<<"$pair"
      ((rep % 2)) || order=("${order[1]}" "${order[0]}")
      log "TLS repetition $rep/$REPS, order: ${order[*]}"
      for s in "${order[@]}"; do start_server "$s" || FAILED=1; done
      sleep 0.2
      if [[ $pair == *-rsa* ]]; then
        for row in "${TLS_RSA_ROWS[@]}"; do run_row_all "$rep" "$row" "${order[@]}"; done
      else
        for row in "${TLS_ECDSA_ROWS[@]}"; do run_row_all "$rep" "$row" "${order[@]}"; done
      fi
      stop_all
    done
  done
}

tls_report() {  # results out.md
  "$PY" "$BENCH/tls_report.py" --results "$1" --out "$2" \
    --machine "$(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u '+%Y-%m-%d %H:%M UTC')" \
    --versions "$(openssl version), $(uname -r)"
}

tls_main() {  # bench/run.sh --tls: the TLS rows alone, report in the work dir (tls.md)
  tls_rowargs "$WARMUP" "$DURATION"
  log "TLS rows: tlslimit and hosttls (ECDSA P-256), tlslimit-rsa and hosttls-rsa (RSA 2048); server cpu $SCPU, loadgen cpu $LCPU"
  tls_rows
  tls_report "$RESULTS" "$WORK/tls.md" || FAILED=1
  cat "$WORK/tls.md"
  log "TLS report: $WORK/tls.md (raw results: $RESULTS)"
  ((FAILED)) && { log "some rows failed or had errors (see $RESULTS and $WORK/logs)"; exit 1; }
  exit 0
}

tls_smoke() {  # bench/run.sh --smoke: every TLS row once, 0.2 s, into $WORK/tls-results.jsonl
  local main_results=$RESULTS reps=$REPS start=$EPOCHREALTIME
  RESULTS="$WORK/tls-results.jsonl" REPS=1
  : >"$RESULTS"
  tls_rowargs 0.05 0.2
  tls_rows
  tls_report "$RESULTS" "$OUT/tls.md" || FAILED=1
  log "TLS rows: $(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s (report: $OUT/tls.md)"
  RESULTS=$main_results REPS=$reps
}
