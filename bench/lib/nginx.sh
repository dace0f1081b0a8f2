# Shared by bench/http/run.sh and bench/https/run.sh (sourced, not run; it sources the other
# parts of bench/lib it uses): a comfygate-vs-nginx run — options, temp dir and test files,
# starting, checking and stopping both servers, the wrk runs with their CPU sampling, the table
# and RESULTS.md. The functions read the caller's globals (ROOT, SCRIPT, TMP, COMFY_PID,
# NGINX_PID, SAMPLER_PID, WRK_PID, KEEP_LOGS, IDLE_PCT, CASE_NAME, ...).

# shellcheck source-path=SCRIPTDIR
. "$ROOT/bench/lib/common.sh"
. "$ROOT/bench/lib/options.sh"
. "$ROOT/bench/lib/load.sh"
. "$ROOT/bench/lib/report.sh"

# --- options -----------------------------------------------------------------------------------
nginx_usage_head() {
    cat <<EOF
usage: $SCRIPT [options]
  --threads N        comfygate THREADS and nginx worker_processes (default $THREADS)
  --duration S       seconds per measured run (default $DURATION)
  --runs R           measured runs per server and case; the median is reported (default $RUNS)
  --warmup S         seconds of the warm-up run per server and case (default $WARMUP)
EOF
}

nginx_usage_tail() {
    cat <<EOF
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

nginx_check_opts() { # VAR...: the options that must be positive whole numbers
    check_whole "--wait-idle and --idle-pct" WAIT_IDLE IDLE_PCT
    check_nice
    check_positive "$@"
    [ -n "$WRK_THREADS" ] || WRK_THREADS="$THREADS"
    check_settings
}

# --- temp dir, processes, cleanup ----------------------------------------------------------------
# nginx_prepare TMP_NAME [COMMAND...]: the tools (wrk, nginx, curl and these commands), the
# comfygate binary (built unless --no-build/--binary), and the temp dir (make_tmp).
nginx_prepare() {
    local name="$1"
    shift
    need_tools wrk nginx:nginx-light curl "$@"
    [ -n "$BINARY" ] || BINARY="$BUILD_DIR/comfygate"
    [ "$DO_BUILD" -eq 0 ] || build_release
    need_exe comfygate BINARY

    COMFY_PID=""
    NGINX_PID=""
    SAMPLER_PID=""
    WRK_PID=""
    KEEP_FILES=(comfygate.log nginx.conf nginx-error.log)
    make_tmp "$name"

    mkdir -p "$TMP/static" "$TMP/logs" "$TMP/nginx-tmp" "$TMP/data" "$TMP/workflows"
    WORKFLOWS="$TMP/workflows"
    [ -d "$ROOT/workflows" ] && WORKFLOWS="$ROOT/workflows"
    # nginx workers run as "nobody" when started by root: the files must be world-readable.
    chmod 755 "$TMP" "$TMP/static"
}

make_files() { # NAME:MIB...: $TMP/static/NAME.bin, MIB MiB from /dev/urandom each
    local f
    log "generating test files from /dev/urandom in $TMP/static"
    for f in "$@"; do head -c $((${f#*:} * 1048576)) /dev/urandom >"$TMP/static/${f%%:*}.bin"; done
    chmod 644 "$TMP/static/"*.bin
}

stop_all() { # for cleanup
    stop_pid "$WRK_PID" INT 5
    stop_pid "$SAMPLER_PID" TERM 2
    stop_servers
}

stop_servers() {
    stop_pid "$COMFY_PID" TERM 5 # SHUTDOWN_TIMEOUT_MS=2000: a healthy comfygate is gone by then
    COMFY_PID=""
    if [ -n "$NGINX_PID" ]; then
        local workers w
        workers="$(nginx_workers "$NGINX_PID")"
        stop_pid "$NGINX_PID" TERM 10 # nginx: TERM = fast shutdown, master stops its workers
        for w in $workers; do         # only if the master died before they did
            if kill -0 "$w" 2>/dev/null; then kill -KILL "$w" 2>/dev/null || true; fi
        done
        NGINX_PID=""
    fi
}

nginx_workers() { # the master's children
    local m="$1"
    cat "/proc/$m/task/$m/children" 2>/dev/null || true
}

server_pids() { # pids whose CPU time counts as the server's
    if [ "$1" = comfygate ]; then echo "$COMFY_PID"; else nginx_workers "$NGINX_PID"; echo "$NGINX_PID"; fi
}

bench_pids() { server_pids comfygate; server_pids nginx; } # for wait_idle

port_in_use() {
    local hex
    hex="$(printf ':%04X ' "$1")"
    grep -q " 0100007F$hex\| 00000000$hex" /proc/net/tcp 2>/dev/null
}

# --- the servers ---------------------------------------------------------------------------------
start_comfygate() { # [NAME=VALUE...]: comfygate serving $TMP/static; sets COMFY_PID, COMFY_PORT
    # the job engine's files: the repo's workflow templates, a throw-away data dir
    start_comfygate_process COMFY_PID "$TMP/comfy.port" "$TMP/comfygate.log" 100 \
        STATIC_DIR="$TMP/static" WORKFLOWS_DIR="$WORKFLOWS" STORAGE_LOCAL_PATH="$TMP/data" "$@"
    COMFY_PORT="$(cat "$TMP/comfy.port")"
}

# write_nginx_conf PORT: nginx like comfygate (same worker count, no access log, keep-alive
# connections never closed while busy), /health and $TMP/static as /static/; with NGINX_TLS (the
# ssl_* lines of its http {} block) it listens with TLS.
write_nginx_conf() {
    {
        cat <<EOF
# generated by $SCRIPT
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
EOF
        [ -z "${NGINX_TLS:-}" ] || printf '%s\n' "$NGINX_TLS"
        cat <<EOF
    server {
        listen 127.0.0.1:$1 ${NGINX_TLS:+ssl }reuseport;
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
    } >"$TMP/nginx.conf"
}

# start_nginx BASE [CURL OPTION...]: nginx on a free port; up once BASE:PORT/health answers.
# Sets NGINX_PID and NGINX_PORT.
start_nginx() {
    local base="$1" try port i
    shift
    for ((try = 0; try < 10; try++)); do
        port=$((20000 + RANDOM % 12000)) # below the ephemeral range wrk's sockets use
        port_in_use "$port" && continue
        write_nginx_conf "$port"
        : >"$TMP/nginx-error.log"
        nice -n "$NICE" nginx -p "$TMP" -c "$TMP/nginx.conf" -e "$TMP/nginx-error.log" >"$TMP/nginx.out" 2>&1 &
        NGINX_PID=$!
        for ((i = 0; i < 100; i++)); do
            kill -0 "$NGINX_PID" 2>/dev/null || break
            if curl -fsS -o /dev/null "$@" "$base:$port/health" 2>/dev/null; then
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

log_servers() { # [PREFIX]: which processes and ports the run measures
    log "${1:-}comfygate pid $COMFY_PID port $COMFY_PORT; nginx master pid $NGINX_PID port $NGINX_PORT; workers: $(nginx_workers "$NGINX_PID" | xargs)"
}

# --- checks --------------------------------------------------------------------------------------
check_health() { # BASE [CURL OPTION...]: both servers answer BASE:PORT/health as they should
    local base="$1" b
    shift
    b="$(curl -fsS "$@" "$base:$COMFY_PORT/health")"
    [[ "$b" == *'"ok":true'* ]] || { echo "run.sh: comfygate /health answered: $b" >&2; exit 1; }
    b="$(curl -fsS "$@" -D "$TMP/h.txt" "$base:$NGINX_PORT/health")"
    [ "$b" = '{"ok":true}' ] || { echo "run.sh: nginx /health answered: $b" >&2; exit 1; }
    grep -qi '^content-type: application/json' "$TMP/h.txt" || { echo "run.sh: nginx /health content-type" >&2; exit 1; }
}

check_file() { # BASE PORT FILE [CURL OPTION...]: BASE:PORT/static/FILE is $TMP/static/FILE, byte for byte
    local base="$1" p="$2" f="$3"
    shift 3
    curl -fsS "$@" -o "$TMP/got.bin" "$base:$p/static/$f"
    cmp -s "$TMP/got.bin" "$TMP/static/$f" || {
        echo "run.sh: /static/$f from port $p differs from the file" >&2
        exit 1
    }
}

# --- measuring -----------------------------------------------------------------------------------
start_sampler() { # max thread count of the comfygate process while a run goes on
    local out="$1"
    [ -p "$TMP/tick" ] || mkfifo "$TMP/tick"
    ( # builtins only, so stopping it leaves no child behind
        exec 3<>"$TMP/tick"
        max=0
        while :; do
            t=(/proc/"$COMFY_PID"/task/*)
            n=${#t[@]}
            if [ "$n" -gt "$max" ]; then max=$n; echo "$max" >"$out"; fi
            read -r -t 0.2 -u 3 _ || true
        done
    ) &
    SAMPLER_PID=$!
}

# run_wrk server url conns secs tag [wrk args...] → writes $TMP/logs/<tag>.txt; prints
# "rps bytes/s errors cpu% threads other%"
run_wrk() {
    local server="$1" url="$2" conns="$3" secs="$4" tag="$5"
    shift 5
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
    nice -n "$NICE" wrk -t "$wt" -c "$conns" -d "${secs}s" --timeout 30s "$@" "$url" >"$out" 2>&1 &
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
    local cpu other
    cpu="$(awk -v a="$t0" -v b="$t1" -v hz="$HZ" -v s="$secs" 'BEGIN { printf "%.0f", (b - a) / hz / s * 100 }')"
    # CPU used by everything else on the machine during the run: not the server's, not wrk's
    # (nor this script's other children)
    other="$(other_load "$m0" "$m1" $((t1 - t0 + w1 - w0)))"
    echo "$rps $(to_bytes "$tr") $errs $cpu ${thr:--} $other"
}

# run_cases: each case of --cases in turn (an unknown one is an error when its turn comes), by
# the script's measure_this CASE; collects the table's ROWS and DETAILS.
run_cases() {
    local cs
    ROWS=()
    DETAILS=()
    BUSY_WARN=0
    IFS=',' read -r -a CASE_LIST <<<"$CASES"
    for cs in "${CASE_LIST[@]}"; do
        [ -n "${CASE_PATH[$cs]:-}" ] || { echo "run.sh: unknown case $cs" >&2; exit 2; }
        measure_this "$cs"
    done
}

# measure_case CASE CONNS COMFY_URL NGINX_URL [WRK ARG...]: a warm-up run per server, then --runs
# runs of each, interleaved (each after wait_idle); adds the case's row to ROWS and DETAILS.
measure_case() {
    local cs="$1" conns="$2" cu="$3" nu="$4" r
    shift 4
    wait_idle
    log "$cs: warm-up ${WARMUP}s each"
    run_wrk comfygate "$cu" "$conns" "$WARMUP" "$cs-comfygate-warmup" "$@" >/dev/null
    run_wrk nginx "$nu" "$conns" "$WARMUP" "$cs-nginx-warmup" "$@" >/dev/null
    : >"$TMP/c.$cs"
    : >"$TMP/n.$cs"
    for ((r = 1; r <= RUNS; r++)); do
        wait_idle
        log "$cs: run $r/$RUNS comfygate (${DURATION}s, $conns conns)"
        run_wrk comfygate "$cu" "$conns" "$DURATION" "$cs-comfygate-$r" "$@" >>"$TMP/c.$cs"
        wait_idle
        log "$cs: run $r/$RUNS nginx"
        run_wrk nginx "$nu" "$conns" "$DURATION" "$cs-nginx-$r" "$@" >>"$TMP/n.$cs"
    done

    local c="$TMP/c.$cs" n="$TMP/n.$cs" c_rps c_bps c_cpu n_rps n_bps n_cpu c_err n_err c_thr other
    local c_us n_us ratio
    IFS=, read -r c_rps c_bps c_cpu <<<"$(col_medians "$c" 1 2 4)"
    IFS=, read -r n_rps n_bps n_cpu <<<"$(col_medians "$n" 1 2 4)"
    c_err="$(awk '{s += $3} END {print s + 0}' "$c")"
    n_err="$(awk '{s += $3} END {print s + 0}' "$n")"
    c_thr="$(awk '{print $5}' "$c" | sort -g | tail -1)"
    other="$(awk '{print $6}' "$c" "$n" | sort -g | tail -1)"
    [ "$other" -lt "$IDLE_PCT" ] || BUSY_WARN=1
    # server CPU time per request, median over runs (robust against a busy machine)
    c_us="$(awk '{ if ($1 > 0) print $4 / 100 / $1 * 1e6 }' "$c" | median)"
    n_us="$(awk '{ if ($1 > 0) print $4 / 100 / $1 * 1e6 }' "$n" | median)"
    ratio="$(awk -v a="$c_rps" -v b="$n_rps" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')"
    ROWS+=("$(printf '| %s | %s | %.0f | %.0f | **%s×** | %s | %s | %s%% / %s%% | %s / %s | %s | %s%% | %s / %s |' \
        "${CASE_NAME[$cs]}" "$conns" "$c_rps" "$n_rps" "$ratio" "$(human_bytes "$c_bps")" \
        "$(human_bytes "$n_bps")" "$c_cpu" "$n_cpu" "$(fmt_us "$c_us")" "$(fmt_us "$n_us")" \
        "$c_thr" "$other" "$c_err" "$n_err")")
    DETAILS+=("$(printf -- '- %s req/s per run — comfygate: %s; nginx: %s' "$cs" "$(per_run_int "$c")" "$(per_run_int "$n")")")
}

to_bytes() { # wrk's "1.23GB" → bytes
    awk -v s="$1" 'BEGIN {
        n = s + 0; u = s; sub(/^[0-9.]+/, "", u)
        m = 1
        if (u == "KB") m = 1024; else if (u == "MB") m = 1048576
        else if (u == "GB") m = 1073741824; else if (u == "TB") m = 1099511627776
        printf "%.0f", n * m }'
}

# --- report --------------------------------------------------------------------------------------
fmt_us() { awk -v u="$1" 'BEGIN { if (u >= 100) printf "%.0f µs", u; else printf "%.1f µs", u }'; }

human_bytes() {
    awk -v b="$1" 'BEGIN {
        if (b >= 1073741824) printf "%.2f GiB/s", b / 1073741824
        else if (b >= 1048576) printf "%.1f MiB/s", b / 1048576
        else printf "%.1f KiB/s", b / 1024 }'
}

nginx_table() { # the report after its machine lines: settings, table, warning, per-run values
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
}

results_header() { # the head of a new RESULTS.md
    cat <<'EOF'
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
}
