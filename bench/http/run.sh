#!/usr/bin/env bash
# bench/http/run.sh — comfygate vs nginx on this machine, over loopback (127.0.0.1 only).
#
# Cases (same reactor/worker count for both servers):
#   health  GET /health, 64 keep-alive connections   (nginx: return 200 '{"ok":true}')
#   1m      GET a 1 MiB file, 64 connections          (comfygate /static/ splice vs nginx sendfile)
#   64m     GET a 64 MiB file, 8 connections
# Each case: one warm-up run per server, then --runs measured runs of --duration seconds,
# comfygate and nginx interleaved; the table shows medians and the ratio comfygate/nginx.
# The table is printed and appended, dated, to bench/RESULTS.md (unless --no-append).
#
# See bench/README.md. Run `bench/http/run.sh --help` for options.
set -euo pipefail

SCRIPT=bench/http/run.sh
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source-path=SCRIPTDIR/..
. "$ROOT/bench/lib/nginx.sh"

common_defaults # bench/lib/options.sh: 2 threads, 3 × 10 s, 3 s warm-up, 64 conns, ...
CONNS_LARGE=8
WRK_THREADS=""
CASES="health,1m,64m"

usage() {
    nginx_usage_head
    cat <<EOF
  --conns C          connections for /health and the 1 MiB file (default $CONNS)
  --conns-large C    connections for the 64 MiB file (default $CONNS_LARGE)
  --wrk-threads T    wrk threads (default: same as --threads, at most the connection count)
  --cases LIST       comma-separated subset of: health,1m,64m (default $CASES)
EOF
    nginx_usage_tail
}

extra_opt() { # the options only this script takes (the others: common_opt)
    case "$1" in
    --conns-large) CONNS_LARGE="$2" ;;
    --wrk-threads) WRK_THREADS="$2" ;;
    *) return 1 ;;
    esac
    OPT_WORDS=2
}

parse_opts "$@"
nginx_check_opts THREADS DURATION RUNS WARMUP CONNS CONNS_LARGE

nginx_prepare comfygate-bench
make_files 1m:1 64m:64

check_servers() {
    local f p
    check_health http://127.0.0.1
    for f in 1m.bin 64m.bin; do
        for p in "$COMFY_PORT" "$NGINX_PORT"; do check_file http://127.0.0.1 "$p" "$f"; done
    done
    rm -f "$TMP/got.bin" "$TMP/h.txt"
}

# --- main --------------------------------------------------------------------------------------------------
# shellcheck disable=SC2119 # no extra settings over plain HTTP
start_comfygate
start_nginx http://127.0.0.1
check_servers
# shellcheck disable=SC2119 # no prefix
log_servers

declare -A CASE_PATH=([health]=/health [1m]=/static/1m.bin [64m]=/static/64m.bin)
declare -A CASE_NAME=([health]="GET /health" [1m]="GET 1 MiB file" [64m]="GET 64 MiB file")

measure_this() { # CASE, for run_cases
    local conns="$CONNS"
    [ "$1" = 64m ] && conns="$CONNS_LARGE"
    measure_case "$1" "$conns" "http://127.0.0.1:$COMFY_PORT${CASE_PATH[$1]}" \
        "http://127.0.0.1:$NGINX_PORT${CASE_PATH[$1]}"
}
run_cases

# --- report ----------------------------------------------------------------------------------------------
NGINX_VER="$(nginx -v 2>&1 | sed 's/^nginx version: //')"
report_info "$BUILD_DIR"

REPORT="$(
    echo "### $(date -u)${LABEL:+ — $LABEL}"
    echo
    echo "nproc $(nproc) ($CPU_MODEL), kernel $(uname -r), $NGINX_VER, $WRK_VER, $COMFY_VER ($GIT_REV)."
    nginx_table
)"
append_report "$REPORT" results_header
