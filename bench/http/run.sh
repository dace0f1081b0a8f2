#!/usr/bin/env bash
# shellcheck disable=SC2031 # THREADS is only exported (not changed) in the comfygate subshell
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

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"

THREADS=2
DURATION=10
RUNS=3
WARMUP=3
CONNS=64
CONNS_LARGE=8
WRK_THREADS=""
CASES="health,1m,64m"
BUILD_DIR="$ROOT/build-release"
BINARY=""
DO_BUILD=1
APPEND=1
RESULTS="$ROOT/bench/RESULTS.md"
LABEL=""
KEEP_LOGS=""
WAIT_IDLE=60
IDLE_PCT=10
NICE=0
COMFY_ENV=()

usage() {
    cat <<EOF
usage: bench/http/run.sh [options]
  --threads N        comfygate THREADS and nginx worker_processes (default $THREADS)
  --duration S       seconds per measured run (default $DURATION)
  --runs R           measured runs per server and case; the median is reported (default $RUNS)
  --warmup S         seconds of the warm-up run per server and case (default $WARMUP)
  --conns C          connections for /health and the 1 MiB file (default $CONNS)
  --conns-large C    connections for the 64 MiB file (default $CONNS_LARGE)
  --wrk-threads T    wrk threads (default: same as --threads, at most the connection count)
  --cases LIST       comma-separated subset of: health,1m,64m (default $CASES)
  --set NAME=VALUE   extra comfygate setting for this run (repeatable), e.g. --set PIPE_SIZE=65536
  --label TEXT       label written into the RESULTS.md entry
  --build-dir DIR    meson release build dir (default build-release)
  --binary PATH      use this comfygate binary; implies --no-build
  --no-build         do not run meson/ninja
  --no-append        print the table only, do not touch bench/RESULTS.md
  --results FILE     where to append (default bench/RESULTS.md)
  --keep-logs DIR    copy the raw wrk outputs and server logs there
  --wait-idle S      before each run wait up to S seconds for the machine to be quiet (other
                     processes under --idle-pct % of the CPUs); 0: don't wait (default $WAIT_IDLE)
  --idle-pct P       what counts as quiet (default $IDLE_PCT)
  --nice N           run both servers and wrk at this nice value (e.g. -5, root only for < 0), so
                     that other work on a shared machine disturbs the measurement less (default 0)
EOF
}

while [ $# -gt 0 ]; do
    case "$1" in
    --threads) THREADS="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    --warmup) WARMUP="$2"; shift 2 ;;
    --conns) CONNS="$2"; shift 2 ;;
    --conns-large) CONNS_LARGE="$2"; shift 2 ;;
    --wrk-threads) WRK_THREADS="$2"; shift 2 ;;
    --cases) CASES="$2"; shift 2 ;;
    --set) COMFY_ENV+=("$2"); shift 2 ;;
    --label) LABEL="$2"; shift 2 ;;
    --build-dir) BUILD_DIR="$2"; shift 2 ;;
    --binary) BINARY="$2"; DO_BUILD=0; shift 2 ;;
    --no-build) DO_BUILD=0; shift ;;
    --no-append) APPEND=0; shift ;;
    --results) RESULTS="$2"; shift 2 ;;
    --keep-logs) KEEP_LOGS="$2"; shift 2 ;;
    --wait-idle) WAIT_IDLE="$2"; shift 2 ;;
    --idle-pct) IDLE_PCT="$2"; shift 2 ;;
    --nice) NICE="$2"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
done

if ! [[ "$WAIT_IDLE" =~ ^[0-9]+$ && "$IDLE_PCT" =~ ^[0-9]+$ ]]; then
    echo "run.sh: --wait-idle and --idle-pct must be whole numbers" >&2
    exit 2
fi
if ! [[ "$NICE" =~ ^-?[0-9]+$ ]] || [ "$NICE" -lt -20 ] || [ "$NICE" -gt 19 ]; then
    echo "run.sh: --nice must be a whole number from -20 to 19" >&2
    exit 2
fi
if [ "$NICE" -lt 0 ] && [ "$(id -u)" -ne 0 ]; then
    echo "run.sh: --nice below 0 needs root" >&2
    exit 2
fi
for v in THREADS DURATION RUNS WARMUP CONNS CONNS_LARGE; do
    if ! [[ "${!v}" =~ ^[1-9][0-9]*$ ]]; then
        echo "run.sh: --${v,,} must be a positive whole number" >&2
        exit 2
    fi
done
[ -n "$WRK_THREADS" ] || WRK_THREADS="$THREADS"
for kv in "${COMFY_ENV[@]+"${COMFY_ENV[@]}"}"; do
    [[ "$kv" =~ ^[A-Z_][A-Z0-9_]*=.*$ ]] || { echo "run.sh: --set wants NAME=VALUE, got $kv" >&2; exit 2; }
done

. "$ROOT/bench/lib/common.sh"
. "$ROOT/bench/lib/nginx.sh"

# --- tools -------------------------------------------------------------------------------------
need_pkgs=()
command -v wrk >/dev/null 2>&1 || need_pkgs+=(wrk)
command -v nginx >/dev/null 2>&1 || need_pkgs+=(nginx-light)
command -v curl >/dev/null 2>&1 || need_pkgs+=(curl)
install_missing "${need_pkgs[@]+"${need_pkgs[@]}"}"

# --- comfygate binary ----------------------------------------------------------------------------
if [ -z "$BINARY" ]; then
    BINARY="$BUILD_DIR/comfygate"
fi
[ "$DO_BUILD" -eq 0 ] || build_release
[ -x "$BINARY" ] || { echo "run.sh: no comfygate binary at $BINARY" >&2; exit 1; }
BINARY="$(cd "$(dirname "$BINARY")" && pwd)/$(basename "$BINARY")"

# --- temp dir, processes, cleanup ------------------------------------------------------------------
TMP="$(mktemp -d /tmp/comfygate-bench.XXXXXX)"
COMFY_PID=""
NGINX_PID=""
SAMPLER_PID=""
WRK_PID=""

trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$TMP/static" "$TMP/logs" "$TMP/nginx-tmp" "$TMP/data" "$TMP/workflows"
WORKFLOWS="$TMP/workflows"
[ -d "$ROOT/workflows" ] && WORKFLOWS="$ROOT/workflows"
# nginx workers run as "nobody" when started by root: the files must be world-readable.
chmod 755 "$TMP" "$TMP/static"
log "generating test files from /dev/urandom in $TMP/static"
head -c 1048576 /dev/urandom >"$TMP/static/1m.bin"
head -c 67108864 /dev/urandom >"$TMP/static/64m.bin"
chmod 644 "$TMP/static/"*.bin

# --- comfygate -------------------------------------------------------------------------------------
start_comfygate() {
    rm -f "$TMP/comfy.port"
    # Run from the temp dir with --env-file /dev/null so no stray ./.env changes the settings.
    # shellcheck disable=SC2030,SC2031
    (
        cd "$TMP"
        export HOST=127.0.0.1 PORT=0 PORT_FILE="$TMP/comfy.port" THREADS="$THREADS" \
            ACCESS_LOG=false LOG_LEVEL=warn STATIC_DIR="$TMP/static" SHUTDOWN_TIMEOUT_MS=2000
        # the job engine's files: the repo's workflow templates, a throw-away data dir
        export WORKFLOWS_DIR="$WORKFLOWS" STORAGE_LOCAL_PATH="$TMP/data"
        for kv in "${COMFY_ENV[@]+"${COMFY_ENV[@]}"}"; do export "${kv?}"; done
        exec nice -n "$NICE" "$BINARY" serve --env-file /dev/null
    ) >"$TMP/comfygate.log" 2>&1 &
    COMFY_PID=$!
    local i
    for ((i = 0; i < 100; i++)); do
        [ -s "$TMP/comfy.port" ] && break
        kill -0 "$COMFY_PID" 2>/dev/null || break
        sleep 0.05
    done
    if [ ! -s "$TMP/comfy.port" ]; then
        echo "run.sh: comfygate did not start:" >&2
        cat "$TMP/comfygate.log" >&2
        exit 1
    fi
    COMFY_PORT="$(cat "$TMP/comfy.port")"
}

# --- nginx ---------------------------------------------------------------------------------------------

write_nginx_conf() {
    cat >"$TMP/nginx.conf" <<EOF
# generated by bench/http/run.sh
worker_processes $THREADS;
daemon off;
master_process on;
pid $TMP/nginx.pid;
error_log $TMP/nginx-error.log warn;
events {
    worker_connections 4096;
}
http {
    access_log off;
    client_body_temp_path $TMP/nginx-tmp/body;
    proxy_temp_path $TMP/nginx-tmp/proxy;
    fastcgi_temp_path $TMP/nginx-tmp/fastcgi;
    uwsgi_temp_path $TMP/nginx-tmp/uwsgi;
    scgi_temp_path $TMP/nginx-tmp/scgi;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 1000000; # like comfygate: never close a busy keep-alive connection
    server {
        listen 127.0.0.1:$1 reuseport;
        location = /health {
            default_type application/json;
            return 200 '{"ok":true}';
        }
        location /static/ {
            alias $TMP/static/;
        }
    }
}
EOF
}

start_nginx() {
    local try port i
    for ((try = 0; try < 10; try++)); do
        port=$((20000 + RANDOM % 12000)) # below the ephemeral range wrk's sockets use
        port_in_use "$port" && continue
        write_nginx_conf "$port"
        : >"$TMP/nginx-error.log"
        nice -n "$NICE" nginx -p "$TMP" -c "$TMP/nginx.conf" -e "$TMP/nginx-error.log" >"$TMP/nginx.out" 2>&1 &
        NGINX_PID=$!
        for ((i = 0; i < 100; i++)); do
            kill -0 "$NGINX_PID" 2>/dev/null || break
            if curl -fsS -o /dev/null "http://127.0.0.1:$port/health" 2>/dev/null; then
                NGINX_PORT=$port
                return 0
            fi
            sleep 0.05
        done
        stop_pid "$NGINX_PID" TERM 5
        NGINX_PID=""
        if ! grep -q "Address already in use" "$TMP/nginx-error.log" "$TMP/nginx.out" 2>/dev/null; then
            echo "run.sh: nginx did not start:" >&2
            cat "$TMP/nginx.out" "$TMP/nginx-error.log" >&2
            exit 1
        fi
    done
    echo "run.sh: no free port for nginx after 10 tries" >&2
    exit 1
}

# --- checks --------------------------------------------------------------------------------------------
check_servers() {
    local b
    b="$(curl -fsS "http://127.0.0.1:$COMFY_PORT/health")"
    [[ "$b" == *'"ok":true'* ]] || { echo "run.sh: comfygate /health answered: $b" >&2; exit 1; }
    b="$(curl -fsS -D "$TMP/h.txt" "http://127.0.0.1:$NGINX_PORT/health")"
    [ "$b" = '{"ok":true}' ] || { echo "run.sh: nginx /health answered: $b" >&2; exit 1; }
    grep -qi '^content-type: application/json' "$TMP/h.txt" || { echo "run.sh: nginx /health content-type" >&2; exit 1; }
    local f
    for f in 1m.bin 64m.bin; do
        for p in "$COMFY_PORT" "$NGINX_PORT"; do
            curl -fsS -o "$TMP/got.bin" "http://127.0.0.1:$p/static/$f"
            cmp -s "$TMP/got.bin" "$TMP/static/$f" || {
                echo "run.sh: /static/$f from port $p differs from the file" >&2
                exit 1
            }
        done
    done
    rm -f "$TMP/got.bin" "$TMP/h.txt"
}

# --- measuring -----------------------------------------------------------------------------------------

HZ="$(getconf CLK_TCK)"

# run_wrk server url conns secs tag → writes $TMP/logs/<tag>.txt; prints "rps bytes/s errors cpu% threads"
run_wrk() {
    local server="$1" url="$2" conns="$3" secs="$4" tag="$5"
    local wt="$WRK_THREADS" out="$TMP/logs/$tag.txt" pids t0 t1 thr=""
    [ "$wt" -le "$conns" ] || wt="$conns"
    pids="$(server_pids "$server")"
    if [ "$server" = comfygate ]; then
        rm -f "$TMP/threads.max"
        start_sampler "$TMP/threads.max"
    fi
    local m0 m1 w0 w1
    # shellcheck disable=SC2086
    t0="$(cpu_ticks $pids)"
    m0="$(machine_busy)"
    times >"$TMP/times0"
    # in the background + wait, so that Ctrl-C / SIGTERM reach the cleanup trap at once
    nice -n "$NICE" wrk -t "$wt" -c "$conns" -d "${secs}s" --timeout 30s "$url" >"$out" 2>&1 &
    WRK_PID=$!
    wait "$WRK_PID" || true
    WRK_PID=""
    times >"$TMP/times1"
    m1="$(machine_busy)"
    # shellcheck disable=SC2086
    t1="$(cpu_ticks $pids)"
    w0="$(children_ticks "$TMP/times0")"
    w1="$(children_ticks "$TMP/times1")"
    if [ "$server" = comfygate ]; then
        stop_pid "$SAMPLER_PID" TERM 2
        SAMPLER_PID=""
        thr="$(cat "$TMP/threads.max" 2>/dev/null || echo '?')"
    fi
    local rps tr errs non2xx
    rps="$(awk '/^Requests\/sec:/ {print $2}' "$out")"
    tr="$(awk '/^Transfer\/sec:/ {print $2}' "$out")"
    if [ -z "$rps" ] || [ -z "$tr" ]; then
        echo "run.sh: wrk failed ($tag):" >&2
        cat "$out" >&2
        exit 1
    fi
    errs="$(awk '/Socket errors:/ {gsub(",", ""); print $4 + $6 + $8 + $10}' "$out")"
    non2xx="$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out")"
    errs=$(( ${errs:-0} + ${non2xx:-0} ))
    local hz cpu
    hz="$(getconf CLK_TCK)"
    cpu="$(awk -v a="$t0" -v b="$t1" -v hz="$hz" -v s="$secs" 'BEGIN { printf "%.0f", (b - a) / hz / s * 100 }')"
    # CPU used by everything else on the machine during the run, as % of all CPUs:
    # busy ticks of the whole machine − the server's − wrk's (and this script's children).
    other="$(awk -v m="$m1 $m0" -v srv="$((t1 - t0))" -v w="$((w1 - w0))" '
        BEGIN { split(m, a, " "); tot = a[2] - a[4]; if (tot <= 0) tot = 1
                o = (a[1] - a[3] - srv - w) / tot * 100
                if (o < 0) o = 0; printf "%.0f", o }')"
    echo "$rps $(to_bytes "$tr") $errs $cpu ${thr:--} $other"
}

# --- main --------------------------------------------------------------------------------------------------
start_comfygate
start_nginx
check_servers
log "comfygate pid $COMFY_PID port $COMFY_PORT; nginx master pid $NGINX_PID port $NGINX_PORT; workers: $(nginx_workers "$NGINX_PID" | xargs)"

declare -A CASE_PATH=([health]=/health [1m]=/static/1m.bin [64m]=/static/64m.bin)
declare -A CASE_NAME=([health]="GET /health" [1m]="GET 1 MiB file" [64m]="GET 64 MiB file")
ROWS=()
DETAILS=()
BUSY_WARN=0
IFS=',' read -r -a CASE_LIST <<<"$CASES"
for cs in "${CASE_LIST[@]}"; do
    [ -n "${CASE_PATH[$cs]:-}" ] || { echo "run.sh: unknown case $cs" >&2; exit 2; }
    conns="$CONNS"
    [ "$cs" = 64m ] && conns="$CONNS_LARGE"
    cu="http://127.0.0.1:$COMFY_PORT${CASE_PATH[$cs]}"
    nu="http://127.0.0.1:$NGINX_PORT${CASE_PATH[$cs]}"
    [ "$WAIT_IDLE" -eq 0 ] || wait_idle
    log "$cs: warm-up ${WARMUP}s each"
    run_wrk comfygate "$cu" "$conns" "$WARMUP" "$cs-comfygate-warmup" >/dev/null
    run_wrk nginx "$nu" "$conns" "$WARMUP" "$cs-nginx-warmup" >/dev/null
    : >"$TMP/c.$cs"
    : >"$TMP/n.$cs"
    for ((r = 1; r <= RUNS; r++)); do
        [ "$WAIT_IDLE" -eq 0 ] || wait_idle
        log "$cs: run $r/$RUNS comfygate (${DURATION}s, $conns conns)"
        run_wrk comfygate "$cu" "$conns" "$DURATION" "$cs-comfygate-$r" >>"$TMP/c.$cs"
        [ "$WAIT_IDLE" -eq 0 ] || wait_idle
        log "$cs: run $r/$RUNS nginx"
        run_wrk nginx "$nu" "$conns" "$DURATION" "$cs-nginx-$r" >>"$TMP/n.$cs"
    done
    c_rps="$(awk '{print $1}' "$TMP/c.$cs" | median)"
    n_rps="$(awk '{print $1}' "$TMP/n.$cs" | median)"
    c_bps="$(awk '{print $2}' "$TMP/c.$cs" | median)"
    n_bps="$(awk '{print $2}' "$TMP/n.$cs" | median)"
    c_cpu="$(awk '{print $4}' "$TMP/c.$cs" | median)"
    n_cpu="$(awk '{print $4}' "$TMP/n.$cs" | median)"
    c_err="$(awk '{s += $3} END {print s + 0}' "$TMP/c.$cs")"
    n_err="$(awk '{s += $3} END {print s + 0}' "$TMP/n.$cs")"
    c_thr="$(awk '{print $5}' "$TMP/c.$cs" | sort -g | tail -1)"
    other="$(awk '{print $6}' "$TMP/c.$cs" "$TMP/n.$cs" | sort -g | tail -1)"
    [ "$other" -lt "$IDLE_PCT" ] || BUSY_WARN=1
    # server CPU time per request, median over runs (robust against a busy machine)
    c_us="$(awk '{ if ($1 > 0) print $4 / 100 / $1 * 1e6 }' "$TMP/c.$cs" | median)"
    n_us="$(awk '{ if ($1 > 0) print $4 / 100 / $1 * 1e6 }' "$TMP/n.$cs" | median)"
    ratio="$(awk -v a="$c_rps" -v b="$n_rps" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')"
    ROWS+=("$(printf '| %s | %s | %.0f | %.0f | **%s×** | %s | %s | %s%% / %s%% | %s / %s | %s | %s%% | %s / %s |' \
        "${CASE_NAME[$cs]}" "$conns" "$c_rps" "$n_rps" "$ratio" "$(human_bytes "$c_bps")" \
        "$(human_bytes "$n_bps")" "$c_cpu" "$n_cpu" "$(fmt_us "$c_us")" "$(fmt_us "$n_us")" \
        "$c_thr" "$other" "$c_err" "$n_err")")
    DETAILS+=("$(printf -- '- %s req/s per run — comfygate: %s; nginx: %s' "$cs" \
        "$(awk '{printf "%s%.0f", (NR > 1 ? ", " : ""), $1}' "$TMP/c.$cs")" \
        "$(awk '{printf "%s%.0f", (NR > 1 ? ", " : ""), $1}' "$TMP/n.$cs")")")
done

# --- report ----------------------------------------------------------------------------------------------
NGINX_VER="$(nginx -v 2>&1 | sed 's/^nginx version: //')"
WRK_VER="$( (wrk -v 2>&1 || true) | head -1 | awk '{print $1, $2}')"
CPU_MODEL="$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
COMFY_VER="$("$BINARY" --version 2>/dev/null || echo comfygate)"
if [ "$BINARY" = "$(cd "$BUILD_DIR/src" 2>/dev/null && pwd)/comfygate" ]; then
    GIT_REV="git $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    if [ -n "$(cd "$ROOT" && git status --porcelain --untracked-files=no -- src meson.build 2>/dev/null)" ]; then
        GIT_REV="$GIT_REV + uncommitted changes in src/"
    fi
else
    GIT_REV="binary $BINARY"
fi
EXTRA="${COMFY_ENV[*]+"${COMFY_ENV[*]}"}"

REPORT="$(
    echo "### $(date -u)${LABEL:+ — $LABEL}"
    echo
    echo "nproc $(nproc) ($CPU_MODEL), kernel $(uname -r), $NGINX_VER, $WRK_VER, $COMFY_VER ($GIT_REV)."
    echo "threads/workers $THREADS, wrk threads $WRK_THREADS, $RUNS × ${DURATION}s per server and case (median), ${WARMUP}s warm-up, nice $NICE; comfygate extra settings: ${EXTRA:-none}."
    echo
    echo "| case | conns | comfygate req/s | nginx req/s | ratio | comfygate transfer | nginx transfer | server CPU (c / n) | CPU per request (c / n) | comfygate max threads | other load | errors (c / n) |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    printf '%s\n' "${ROWS[@]}"
    echo
    if [ "$BUSY_WARN" -eq 1 ]; then
        echo "**Warning:** other processes used ≥ ${IDLE_PCT}% of the CPUs during some runs (\"other load\", the worst run); the req/s numbers and ratios are unreliable, the CPU-per-request numbers less so."
        echo
    fi
    printf '%s\n' "${DETAILS[@]}"
    echo
)"
echo
echo "$REPORT"

if [ "$APPEND" -eq 1 ]; then
    if [ ! -f "$RESULTS" ]; then
        cat >"$RESULTS" <<'EOF'
# Benchmark results

Produced by `bench/http/run.sh` (see `bench/README.md`); each entry is appended by one run.

Method: comfygate (release build, `ACCESS_LOG=false`) and nginx (Debian `nginx-light`,
`access_log off`, `master_process on`, `sendfile on; tcp_nopush on;`, `keepalive_requests
1000000`) run side by side on 127.0.0.1 with the same number of reactor threads / worker
processes. Debian's `wrk` drives keep-alive connections on the same machine (client and
servers share the cores, so absolute numbers are low; compare the ratio). Cases: `GET /health`
(nginx: `return 200 '{"ok":true}'`, `application/json`) and a 1 MiB and a 64 MiB file from
/dev/urandom (comfygate `/static/`: file → pipe → socket splice through io_uring; nginx:
sendfile). Each server gets a warm-up run, then N measured runs, comfygate and nginx
interleaved; the table gives the median requests/s and transfer/s, and ratio = comfygate /
nginx requests/s (>1: comfygate faster). "server CPU" is the servers' user+system CPU time
(all threads / worker processes) over the run, as % of one core (200% = both cores); "CPU per
request" is that time divided by the requests served (median over runs; lower is better, and
it is less disturbed by other load than req/s). "comfygate max threads" is the largest
/proc/PID/task count seen during the runs (main + reactors + io_uring io-wq workers).
"other load" is the CPU that processes other than the two servers and wrk used during the
worst run, as % of all CPUs: the machine is shared, and before each run the script waits (up
to --wait-idle s) for it to be quiet. Errors are wrk socket errors plus non-2xx answers.

EOF
    fi
    echo "$REPORT" >>"$RESULTS"
    log "appended to $RESULTS"
fi
