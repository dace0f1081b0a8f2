#!/usr/bin/env bash
# bench/jobs/run.sh — comfygate end to end, against comfysim backends that execute in 0 ms, on
# this machine over loopback (127.0.0.1 only).
#
# Cases (one run measures them all; see bench/README.md):
#   e2e       jobs/s end to end (POST /jobs smoke with distinct inputs → wait for the final
#             status over SSE → download the output) through 1, 8 and 64 backends, with N jobs
#             kept in flight by bench/jobs/jobload.c (C, libcurl multi)
#   latency   one job at a time: the same loop straight against comfysim (POST /prompt,
#             WebSocket, /history, /view) and through the gateway; p50/p99 and the difference
#   wrk       POST /jobs and GET /jobs/:id requests/s under wrk at 64 connections
#   rss       VmRSS/VmHWM with 10,000 queued jobs and with 1,000 running
#   prompt    sync POST /prompt (EmptyImage 512×512 → SaveImage, answered with the PNG as
#             base64) under wrk
# The table is printed and appended, dated, to bench/RESULTS.md (unless --no-append).
#
# Run `bench/jobs/run.sh --help` for options.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# shellcheck source-path=SCRIPTDIR/..
. "$ROOT/bench/lib/common.sh"
. "$ROOT/bench/lib/options.sh"
. "$ROOT/bench/lib/load.sh"
. "$ROOT/bench/lib/report.sh"

common_defaults # bench/lib/options.sh: 2 threads, 3 × 10 s, 3 s warm-up, 64 conns, ...
BACKENDS="1,8,64"
LAT_JOBS=500
PROMPT_BACKENDS=64
RUN_SIMS=16 # backends of the "1,000 running" case, max=63 each (COMFYUI_URLS allows 64)
CASES="latency,e2e,wrk,rss,prompt"
SIM_BINARY=""
WAIT_IDLE=15
IDLE_PCT=15
QUICK=0

usage() {
    cat <<EOF
usage: bench/jobs/run.sh [--quick] [options]
  --quick            a short look (~2 min): 1 run of 3 s per case, 100 latency jobs
  --threads N        comfygate THREADS (default $THREADS)
  --duration S       seconds per measured run (default $DURATION)
  --runs R           measured runs per case; the median is reported (default $RUNS)
  --warmup S         seconds of the warm-up run (default $WARMUP)
  --backends LIST    fleet sizes of the e2e case (default $BACKENDS)
  --latency-jobs N   jobs per latency run (default $LAT_JOBS)
  --conns C          wrk connections (default $CONNS)
  --prompt-backends N  fleet of the sync /prompt case (default $PROMPT_BACKENDS)
  --cases LIST       comma-separated subset of: $CASES
  --set NAME=VALUE   extra comfygate setting for every gateway started (repeatable)
  --label TEXT       label written into the RESULTS.md entry
  --build-dir DIR    meson release build dir (default build-release)
  --binary PATH      this comfygate binary (implies --no-build; comfysim from --build-dir
                     unless --sim-binary)
  --sim-binary PATH  this comfysim binary
  --no-build         do not run meson/ninja
  --no-append        print the table only, do not touch bench/RESULTS.md
  --results FILE     where to append (default bench/RESULTS.md)
  --keep-logs DIR    copy the raw outputs and gateway logs there
  --wait-idle S      before each run wait up to S seconds for other processes to use less
                     than --idle-pct % of the CPUs; 0: don't wait (default $WAIT_IDLE)
  --idle-pct P       what counts as quiet (default $IDLE_PCT)
  --nice N           run gateway, comfysims and clients at this nice value (root for < 0)
EOF
}

ARGS=("$@")
for a in "${ARGS[@]+"${ARGS[@]}"}"; do
    if [ "$a" = --quick ]; then
        QUICK=1 DURATION=3 RUNS=1 WARMUP=1 LAT_JOBS=100 WAIT_IDLE=3
    fi
done
extra_opt() { # the options only this script takes (the others: common_opt)
    OPT_WORDS=2
    case "$1" in
    --quick) OPT_WORDS=1 ;; # already applied above
    --backends) BACKENDS="$2" ;;
    --latency-jobs) LAT_JOBS="$2" ;;
    --prompt-backends) PROMPT_BACKENDS="$2" ;;
    --sim-binary) SIM_BINARY="$2" ;;
    *) return 1 ;;
    esac
}

parse_opts "$@"
check_positive THREADS DURATION RUNS LAT_JOBS CONNS PROMPT_BACKENDS
check_whole "--warmup, --wait-idle and --idle-pct" WARMUP WAIT_IDLE IDLE_PCT
check_nice
IFS=',' read -r -a FLEETS <<<"$BACKENDS"
for n in "${FLEETS[@]}"; do
    if ! [[ "$n" =~ ^[1-9][0-9]*$ ]] || [ "$n" -gt 256 ]; then
        echo "run.sh: --backends wants fleet sizes 1..256, got $n" >&2
        exit 2
    fi
done
check_settings
has_case() { [[ ",$CASES," == *",$1,"* ]]; }
for c in ${CASES//,/ }; do
    [[ ",latency,e2e,wrk,rss,prompt," == *",$c,"* ]] || { echo "run.sh: unknown case $c" >&2; exit 2; }
done

# --- tools -------------------------------------------------------------------------------------
need_pkgs=()
command -v wrk >/dev/null 2>&1 || need_pkgs+=(wrk)
command -v curl >/dev/null 2>&1 || need_pkgs+=(curl)
command -v cc >/dev/null 2>&1 || need_pkgs+=(gcc)
command -v pkg-config >/dev/null 2>&1 || need_pkgs+=(pkg-config)
pkg-config --exists libcurl 2>/dev/null || need_pkgs+=(libcurl4-openssl-dev)
pkg-config --exists jansson 2>/dev/null || need_pkgs+=(libjansson-dev)
install_missing "${need_pkgs[@]+"${need_pkgs[@]}"}"

# --- binaries ------------------------------------------------------------------------------------
[ -n "$BINARY" ] || BINARY="$BUILD_DIR/comfygate"
[ -n "$SIM_BINARY" ] || SIM_BINARY="$BUILD_DIR/src/sim/comfysim"
[ "$DO_BUILD" -eq 0 ] || build_release
need_exe comfygate BINARY
need_exe comfysim SIM_BINARY

# --- temp dir, processes, cleanup ------------------------------------------------------------------
GW_PID=""
CLIENT_PID=""
SIM_PIDS=()    # every comfysim this script started
FLEET_PORTS=() # the 0 ms fleet
RUN_PORTS=()   # the slow fleet of the "1,000 running" case

stop_sims() { # SIGTERM to all, then wait for each (they stop at once)
    local p
    for p in "${SIM_PIDS[@]+"${SIM_PIDS[@]}"}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${SIM_PIDS[@]+"${SIM_PIDS[@]}"}"; do stop_pid "$p" TERM 5; done
    SIM_PIDS=()
}

stop_all() { # for cleanup
    stop_pid "$CLIENT_PID" INT 5
    stop_pid "$GW_PID" TERM 10
    stop_sims
}
make_tmp comfygate-jobs-bench
JOBLOAD="$TMP/jobload"

mkdir -p "$TMP/logs" "$TMP/sims"
WORKFLOWS="$ROOT/workflows"

log "building the load generator (bench/jobs/jobload.c)"
# shellcheck disable=SC2046 # pkg-config prints several words on purpose
cc -O2 -Wall -o "$JOBLOAD" "$HERE/jobload.c" $(pkg-config --cflags --libs libcurl jansson)

# --- comfysim fleets -------------------------------------------------------------------------------
# start_sims COUNT TAG ARGS... → appends the ports to the array named TAG_PORTS (FLEET or RUN)
start_sims() {
    local count="$1" tag="$2" i d
    shift 2
    local pids=()
    for ((i = 1; i <= count; i++)); do
        d="$TMP/sims/$tag-$i"
        mkdir -p "$d"
        nice -n "$NICE" "$SIM_BINARY" --port 0 --port-file "$d/port" --root "$d" "$@" \
            >"$d/log" 2>&1 &
        pids+=($!)
        SIM_PIDS+=($!)
    done
    for ((i = 1; i <= count; i++)); do
        d="$TMP/sims/$tag-$i"
        wait_port_file "${pids[i - 1]}" "$d/port" 200 "comfysim $tag-$i" "$d/log"
        if [ "$tag" = fleet ]; then FLEET_PORTS+=("$(cat "$d/port")"); else RUN_PORTS+=("$(cat "$d/port")"); fi
    done
}

fleet_pids() { # pids of the first N sims of the 0 ms fleet
    local i
    for ((i = 0; i < $1; i++)); do echo "${SIM_PIDS[i]}"; done
}

# --- comfygate ------------------------------------------------------------------------------------
# start_gateway URLS HEALTHY NAME [NAME=VALUE...]: a fresh data dir each time; waits until
# HEALTHY backends are up with their capabilities read.
start_gateway() {
    local urls="$1" want="$2" name="$3"
    shift 3
    local data="$TMP/data-$name"
    rm -rf "$data"
    mkdir -p "$data"
    start_comfygate_process GW_PID "$TMP/gw.port" "$TMP/logs/gateway-$name.log" 200 \
        WORKFLOWS_DIR="$WORKFLOWS" STORAGE_LOCAL_PATH="$data" COMFYUI_URLS="$urls" "$@"
    GW_PORT="$(cat "$TMP/gw.port")"
    GW="http://127.0.0.1:$GW_PORT"
    local i have=0
    for ((i = 0; i < 400; i++)); do
        have="$(curl -fsS "$GW/backends" 2>/dev/null | count '"healthy":true,"capabilities":true')"
        [ "$have" -ge "$want" ] && return 0
        sleep 0.05
    done
    echo "run.sh: only $have of $want backends became healthy" >&2
    exit 1
}

count() { # count PATTERN: its matches on stdin (0 without failing)
    { grep -o "$1" || true; } | wc -l
}

stop_gateway() {
    stop_pid "$GW_PID" TERM 10
    GW_PID=""
    rm -rf "$TMP"/data-*
}

urls_of() { # urls_of N [OPTS] → COMFYUI_URLS of the first N sims of the 0 ms fleet
    local n="$1" opts="${2:-}" i out=""
    for ((i = 0; i < n; i++)); do out="$out${out:+,}http://127.0.0.1:${FLEET_PORTS[i]}$opts"; done
    echo "$out"
}

# --- measuring -------------------------------------------------------------------------------------
bench_pids() { echo "$GW_PID" "${SIM_PIDS[@]+"${SIM_PIDS[@]}"}"; } # for wait_idle

# measure SIMS_N TAG CMD... — runs a client (jobload or wrk) in the background and waits for it;
# its stdout goes to $TMP/logs/TAG.txt. Sets M_GW, M_SIMS, M_CLIENT (CPU as % of one core, over
# the client's wall time), M_OTHER (% of all CPUs used by other processes) and M_SECS.
measure() {
    local nsims="$1" tag="$2"
    shift 2
    local sims g0 g1 s0 s1 m0 m1 w0 w1 t0 t1
    sims="$(fleet_pids "$nsims" | xargs)"
    # shellcheck disable=SC2086
    g0="$(cpu_ticks $GW_PID)"
    # shellcheck disable=SC2086
    s0="$(cpu_ticks $sims)"
    m0="$(machine_busy)"
    times >"$TMP/times0"
    t0="$(date +%s.%N)"
    nice -n "$NICE" "$@" >"$TMP/logs/$tag.txt" 2>"$TMP/logs/$tag.err" &
    CLIENT_PID=$!
    wait "$CLIENT_PID" || { echo "run.sh: $tag: client failed:" >&2; cat "$TMP/logs/$tag.err" "$TMP/logs/$tag.txt" >&2; exit 1; }
    CLIENT_PID=""
    t1="$(date +%s.%N)"
    times >"$TMP/times1"
    m1="$(machine_busy)"
    # shellcheck disable=SC2086
    g1="$(cpu_ticks $GW_PID)"
    # shellcheck disable=SC2086
    s1="$(cpu_ticks $sims)"
    w0="$(children_ticks "$TMP/times0")"
    w1="$(children_ticks "$TMP/times1")"
    M_SECS="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')"
    read -r M_GW M_SIMS M_CLIENT <<<"$(awk -v g=$((g1 - g0)) -v s=$((s1 - s0)) -v w=$((w1 - w0)) \
        -v hz="$HZ" -v secs="$M_SECS" 'BEGIN {
            printf "%.0f %.0f %.0f", g / hz / secs * 100, s / hz / secs * 100, w / hz / secs * 100 }')"
    M_OTHER="$(other_load "$m0" "$m1" $((g1 - g0 + s1 - s0 + w1 - w0)))"
    if [ -s "$TMP/logs/$tag.err" ]; then
        log "$tag: $(head -c 300 "$TMP/logs/$tag.err" | tr '\n' ' ')"
    fi
}

kv() { # kv KEY FILE → value of KEY=... in a jobload output line
    grep -o "\(^\| \)$1=[^ ]*" "$2" | head -1 | cut -d= -f2-
}

worst() { sort -g | tail -1; }
sum() { awk '{ s += $1 } END { print s + 0 }'; }

to_ms() { # wrk latency "1.23ms" / "456.00us" / "1.20s" → ms
    awk -v s="$1" 'BEGIN { n = s + 0; u = s; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
        printf "%.2f", n }'
}

wrk_field() { # wrk_field FILE pct → latency at that percentile (needs --latency), in ms
    local v
    v="$(awk -v p="$2%" '$1 == p { print $2; exit }' "$1")"
    [ -n "$v" ] && to_ms "$v" || echo "?"
}

BUSY_WARN=0
note_other() { [ "$1" -lt "$IDLE_PCT" ] || BUSY_WARN=1; }

rss_of() { # "VmRSS VmHWM" in MiB
    awk '/^VmRSS:/ { r = $2 } /^VmHWM:/ { h = $2 } END { printf "%.1f %.1f", r / 1024, h / 1024 }' \
        "/proc/$1/status"
}

ROWS_E2E=()
ROWS_LAT=()
ROWS_WRK=()
ROWS_RSS=()
ROWS_PROMPT=()
DETAILS=()
COLOR=0 # distinct inputs for every job of the run: each client gets its own range
CB=0
next_colors() { COLOR=$((COLOR + 1000000)); CB=$((COLOR % 16000000)); }

# --- fleets ----------------------------------------------------------------------------------------
MAX_FLEET=1
for n in "${FLEETS[@]}"; do [ "$n" -gt "$MAX_FLEET" ] && MAX_FLEET="$n"; done
if has_case prompt && [ "$PROMPT_BACKENDS" -gt "$MAX_FLEET" ]; then MAX_FLEET="$PROMPT_BACKENDS"; fi
log "starting $MAX_FLEET comfysim processes (--exec-ms 0 --step-ms 0)"
start_sims "$MAX_FLEET" fleet --exec-ms 0 --step-ms 0

# --- latency: one job at a time, direct vs through the gateway --------------------------------------
if has_case latency; then
    start_gateway "$(urls_of 1)" 1 latency
    : >"$TMP/lat.direct"
    : >"$TMP/lat.gw"
    for ((r = 1; r <= RUNS; r++)); do
        wait_idle
        log "latency: run $r/$RUNS, $LAT_JOBS jobs straight to comfysim, then through the gateway"
        next_colors
        measure 1 "lat-direct-$r" "$JOBLOAD" --mode comfyui --url "http://127.0.0.1:${FLEET_PORTS[0]}" \
            --jobs "$LAT_JOBS" --warmup-jobs 20 --color-base "$CB"
        echo "$(kv p50_ms "$TMP/logs/lat-direct-$r.txt") $(kv p90_ms "$TMP/logs/lat-direct-$r.txt") $(kv p99_ms "$TMP/logs/lat-direct-$r.txt") $(kv mean_ms "$TMP/logs/lat-direct-$r.txt") $(kv errors "$TMP/logs/lat-direct-$r.txt") $M_OTHER $M_SIMS $M_CLIENT" >>"$TMP/lat.direct"
        next_colors
        measure 1 "lat-gw-$r" "$JOBLOAD" --mode gateway --url "$GW" \
            --jobs "$LAT_JOBS" --warmup-jobs 20 --color-base "$CB"
        echo "$(kv p50_ms "$TMP/logs/lat-gw-$r.txt") $(kv p90_ms "$TMP/logs/lat-gw-$r.txt") $(kv p99_ms "$TMP/logs/lat-gw-$r.txt") $(kv mean_ms "$TMP/logs/lat-gw-$r.txt") $(kv errors "$TMP/logs/lat-gw-$r.txt") $M_OTHER $M_GW $M_CLIENT" >>"$TMP/lat.gw"
    done
    stop_gateway
    for f in direct gw; do
        IFS=, read -r p50 p90 p99 mean <<<"$(col_medians "$TMP/lat.$f" 1 2 3 4)"
        errs="$(awk '{print $5}' "$TMP/lat.$f" | sum)"
        other="$(awk '{print $6}' "$TMP/lat.$f" | worst)"
        note_other "$other"
        eval "L_${f}=\"$p50 $p90 $p99 $mean\""
        name="comfysim directly (POST /prompt, WebSocket, /history, /view)"
        [ "$f" = gw ] && name="through comfygate (POST /jobs, SSE, GET output), 1 backend"
        ROWS_LAT+=("$(printf '| %s | %.2f | %.2f | %.2f | %.2f | %s%% | %s |' "$name" "$p50" "$p90" "$p99" "$mean" "$other" "$errs")")
    done
    # shellcheck disable=SC2154 # set by eval above
    ROWS_LAT+=("$(awk -v d="$L_direct" -v g="$L_gw" 'BEGIN { split(d, a, " "); split(g, b, " ")
        printf "| **added by the gateway** | **%.2f** | %.2f | **%.2f** | %.2f | | |", b[1] - a[1], b[2] - a[2], b[3] - a[3], b[4] - a[4] }')")
    DETAILS+=("- latency p50 per run (ms) — direct: $(per_run "$TMP/lat.direct"); gateway: $(per_run "$TMP/lat.gw")")
fi

# --- e2e: jobs/s through 1, 8, 64 backends -------------------------------------------------------------
if has_case e2e; then
    for n in "${FLEETS[@]}"; do
        conc=$((n * 2))
        [ "$conc" -ge 16 ] || conc=16
        start_gateway "$(urls_of "$n")" "$n" "e2e-$n"
        wait_idle
        log "e2e: $n backend(s), $conc jobs in flight: warm-up ${WARMUP}s"
        next_colors
        measure "$n" "e2e-$n-warmup" "$JOBLOAD" --mode gateway --url "$GW" --conc "$conc" \
            --duration "$WARMUP" --drain 20 --color-base "$CB"
        : >"$TMP/e2e.$n"
        for ((r = 1; r <= RUNS; r++)); do
            wait_idle
            log "e2e: $n backend(s): run $r/$RUNS (${DURATION}s)"
            next_colors
            measure "$n" "e2e-$n-$r" "$JOBLOAD" --mode gateway --url "$GW" --conc "$conc" \
                --duration "$DURATION" --drain 20 --color-base "$CB"
            f="$TMP/logs/e2e-$n-$r.txt"
            # jobload's own window is --duration; the CPU shares are over its whole run (+ drain)
            echo "$(kv jobs_per_s "$f") $(kv p50_ms "$f") $(kv p99_ms "$f") $M_GW $M_SIMS $(kv client_cpu_pct "$f") $M_OTHER $(kv errors "$f") $(kv jobs_all "$f") $M_SECS $(kv stuck "$f")" >>"$TMP/e2e.$n"
        done
        stop_gateway
        f="$TMP/e2e.$n"
        IFS=, read -r jps p50 p99 gcpu scpu ccpu <<<"$(col_medians "$f" 1 2 3 4 5 6)"
        other="$(awk '{print $7}' "$f" | worst)"
        errs="$(awk '{print $8}' "$f" | sum)"
        stuck="$(awk '{print $11}' "$f" | sum)"
        note_other "$other"
        # gateway CPU time per job: its CPU time over the client's whole run / every job done
        us="$(awk '{ if ($9 > 0) print $4 / 100 * $10 / $9 * 1e6 }' "$f" | median)"
        ROWS_E2E+=("$(printf '| %s | %s | **%.1f** | %.1f / %.1f | %s%% | %s%% | %s%% | %.0f µs | %s%% | %s%s |' \
            "$n" "$conc" "$jps" "$p50" "$p99" "$gcpu" "$scpu" "$ccpu" "$us" "$other" "$errs" \
            "$([ "$stuck" -gt 0 ] && echo " + $stuck jobs never finished")")")
        DETAILS+=("- e2e $n backend(s) jobs/s per run: $(per_run "$f")")
    done
fi

# --- wrk: POST /jobs and GET /jobs/:id ------------------------------------------------------------------
# The part every wrk script shares: per-thread status counts, summed and printed at the end
# as "codes=200:N,...". Each script below appends its own init/request (and may redefine
# response: in Lua the later definition wins).
cat >"$TMP/wrk_codes.lua" <<'EOF'
local threads = {}
local nthreads = 0
function setup(thread)
  thread:set("tid", nthreads)
  nthreads = nthreads + 1
  table.insert(threads, thread)
end
function response(status, headers, body)
  codes[status] = (codes[status] or 0) + 1
end
function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("codes")) do total[k] = (total[k] or 0) + v end
  end
  local out = {}
  for k, v in pairs(total) do table.insert(out, k .. ":" .. v) end
  table.sort(out)
  io.write("codes=" .. table.concat(out, ",") .. "\n")
end
EOF
{ cat "$TMP/wrk_codes.lua"; cat <<'EOF'
-- POST /jobs with a distinct color per request (no cache hit possible)
function init(args)
  n = 0
  base = tonumber(args[1] or "0") + tid * 4000000
  codes = {}
end
function request()
  n = n + 1
  local body = '{"workflowId":"smoke","inputs":{"color":' .. ((base + n) % 16777216) .. '}}'
  return wrk.format("POST", "/jobs", {["Content-Type"] = "application/json"}, body)
end
EOF
} >"$TMP/post_jobs.lua"
{ cat "$TMP/wrk_codes.lua"; cat <<'EOF'
-- GET /jobs/:id over the ids in the file given as the first argument, round robin per thread
function init(args)
  ids = {}
  for line in io.lines(args[1]) do table.insert(ids, line) end
  i = tid * 97
  codes = {}
end
function request()
  i = i + 1
  return wrk.format("GET", "/jobs/" .. ids[(i % #ids) + 1])
end
EOF
} >"$TMP/get_jobs.lua"
{ cat "$TMP/wrk_codes.lua"; cat <<'EOF'
-- sync POST /prompt: EmptyImage 512x512 -> SaveImage, a distinct color per request
function init(args)
  n = 0
  base = tonumber(args[1] or "0") + tid * 4000000
  codes = {}
end
function request()
  n = n + 1
  local body = '{"prompt":{"1":{"class_type":"EmptyImage","inputs":{"width":512,"height":512,' ..
    '"batch_size":1,"color":' .. ((base + n) % 16777216) .. '}},"2":{"class_type":"SaveImage",' ..
    '"inputs":{"images":["1",0],"filename_prefix":"bench"}}}}'
  return wrk.format("POST", "/prompt", {["Content-Type"] = "application/json"}, body)
end
function response(status, headers, body)
  codes[status] = (codes[status] or 0) + 1
  if status == 200 and not checked then
    checked = true
    if not string.find(body, '"images":["iVBORw0KGgo', 1, true) then
      io.write("warning: the answer has no base64 PNG\n")
    end
  end
end
EOF
} >"$TMP/prompt.lua"

# run_wrk NSIMS TAG SECS URL SCRIPT ARG → one line: rps p50 p99 gw% sims% wrk% other% codes
run_wrk() {
    local nsims="$1" tag="$2" secs="$3" url="$4" script="$5" arg="$6" wt="$THREADS"
    [ "$wt" -le "$CONNS" ] || wt="$CONNS"
    measure "$nsims" "$tag" wrk -t "$wt" -c "$CONNS" -d "${secs}s" --timeout 30s --latency \
        -s "$script" "$url" -- "$arg"
    local f="$TMP/logs/$tag.txt" rps
    rps="$(awk '/^Requests\/sec:/ {print $2}' "$f")"
    [ -n "$rps" ] || { echo "run.sh: wrk failed ($tag):" >&2; cat "$f" >&2; exit 1; }
    echo "$rps $(wrk_field "$f" 50) $(wrk_field "$f" 99) $M_GW $M_SIMS $M_CLIENT $M_OTHER $(kv codes "$f")"
}

wrk_row() { # wrk_row NAME FILE EXTRA → a table row from run_wrk lines
    local name="$1" f="$2" extra="$3" rps p50 p99 g w other codes us
    IFS=, read -r rps p50 p99 g w <<<"$(col_medians "$f" 1 2 3 4 6)"
    other="$(awk '{print $7}' "$f" | worst)"
    note_other "$other"
    codes="$(awk '{print $8}' "$f" | tr ',' '\n' | awk -F: '{ c[$1] += $2 } END { for (k in c) printf "%s %s×%d", (n++ ? "," : ""), k, c[k] }' | sed 's/^ //')"
    us="$(awk '{ if ($1 > 0) print $4 / 100 / $1 * 1e6 }' "$f" | median)"
    printf '| %s | %s | **%.0f** | %s / %s | %s%% | %.0f µs | %s%% | %s%% | %s | %s |' "$name" "$CONNS" \
        "$rps" "$p50" "$p99" "$g" "$us" "$w" "$other" "$codes" "$extra"
}

queue_len() { # the newest queued job's position + 1 (every job has the same priority here)
    local q
    q="$(curl -fsS "$GW/jobs?status=queued&limit=1" | grep -o '"queue_position":[0-9]*' | cut -d: -f2 || true)"
    echo $((${q:--1} + 1))
}

REFUSING="http://127.0.0.1:1" # nothing listens on port 1: every probe is refused
if has_case wrk; then
    : >"$TMP/wrk.post"
    qmax=0
    for ((r = 0; r <= RUNS; r++)); do # run 0: warm-up
        # a fresh gateway per run: the queue (nothing can run it) starts empty each time
        start_gateway "$REFUSING" 0 "post-$r" MAX_QUEUE=10000000 MAX_QUEUE_PER_TENANT=10000000
        wait_idle
        secs="$DURATION"
        [ "$r" -gt 0 ] || secs="$WARMUP"
        [ "$secs" -gt 0 ] || { stop_gateway; continue; }
        log "wrk: POST /jobs run $r/$RUNS (${secs}s, $CONNS conns; 0 = warm-up)"
        next_colors
        line="$(run_wrk 0 "post-$r" "$secs" "$GW" "$TMP/post_jobs.lua" "$CB")"
        q="$(queue_len)"
        [ "$q" -le "$qmax" ] || qmax="$q"
        [ "$r" -eq 0 ] || echo "$line" >>"$TMP/wrk.post"
        stop_gateway
    done
    ROWS_WRK+=("$(wrk_row "POST /jobs (smoke, distinct inputs; no backend can run them)" "$TMP/wrk.post" "queue grew to $qmax jobs per run")")
    DETAILS+=("- POST /jobs req/s per run: $(per_run_int "$TMP/wrk.post")")
fi

# --- rss: 10,000 queued (then GET /jobs/:id over them), 1,000 running -------------------------------------
if has_case rss || has_case wrk; then
    start_gateway "$REFUSING" 0 queued MAX_QUEUE=20000 MAX_QUEUE_PER_TENANT=20000
    read -r rss0 hwm0 <<<"$(rss_of "$GW_PID")"
    log "rss: 10,000 jobs into a queue nothing can run"
    next_colors
    measure 0 fill-queue "$JOBLOAD" --mode submit --url "$GW" --conc 64 --jobs 10000 \
        --color-base "$CB"
    sleep 1
    read -r rss1 hwm1 <<<"$(rss_of "$GW_PID")"
    nq="$(queue_len)"
    ROWS_RSS+=("$(printf '| gateway started, no jobs | %s | %s | |' "$rss0" "$hwm0")")
    ROWS_RSS+=("$(printf '| %s jobs queued (submit codes: %s) | %s | %s | %.1f KiB |' "$nq" \
        "$(kv codes "$TMP/logs/fill-queue.txt")" "$rss1" "$hwm1" \
        "$(awk -v a="$rss1" -v b="$rss0" -v n="$nq" 'BEGIN { print (a - b) * 1024 / n }')")")
    if has_case wrk; then
        curl -fsS "$GW/jobs?limit=1000" | grep -o '"id":"[0-9a-f-]\{36\}"' | cut -d'"' -f4 >"$TMP/ids.txt"
        : >"$TMP/wrk.get"
        for ((r = 0; r <= RUNS; r++)); do
            secs="$DURATION"
            [ "$r" -gt 0 ] || secs="$WARMUP"
            [ "$secs" -gt 0 ] || continue
            wait_idle
            log "wrk: GET /jobs/:id run $r/$RUNS (${secs}s; 0 = warm-up)"
            line="$(run_wrk 0 "get-$r" "$secs" "$GW" "$TMP/get_jobs.lua" "$TMP/ids.txt")"
            [ "$r" -eq 0 ] || echo "$line" >>"$TMP/wrk.get"
        done
        ROWS_WRK+=("$(wrk_row "GET /jobs/:id (1,000 ids of queued jobs)" "$TMP/wrk.get" "$nq jobs queued")")
        DETAILS+=("- GET /jobs/:id req/s per run: $(per_run_int "$TMP/wrk.get")")
    fi
    stop_gateway
fi

if has_case rss; then
    log "rss: $RUN_SIMS comfysims with --exec-ms 3600000, max=63 each: 1,000 jobs running"
    start_sims "$RUN_SIMS" run --exec-ms 3600000
    urls=""
    for p in "${RUN_PORTS[@]}"; do urls="$urls${urls:+,}http://127.0.0.1:$p;max=63"; done
    start_gateway "$urls" "$RUN_SIMS" running MAX_QUEUE_PER_TENANT=20000
    read -r rss0 hwm0 <<<"$(rss_of "$GW_PID")"
    next_colors
    measure 0 fill-running "$JOBLOAD" --mode submit --url "$GW" --conc 64 --jobs 1000 \
        --color-base "$CB"
    nrun=0
    for ((i = 0; i < 300; i++)); do
        nrun="$(curl -fsS "$GW/jobs?status=running&limit=1000" | count '"status":"running"')"
        [ "$nrun" -ge 1000 ] && break
        sleep 0.1
    done
    inflight="$(curl -fsS "$GW/backends" | grep -o '"in_flight":[0-9]*' | cut -d: -f2 | sum || true)"
    sleep 1
    read -r rss1 hwm1 <<<"$(rss_of "$GW_PID")"
    ROWS_RSS+=("$(printf '| gateway with %s backends (max=63), no jobs | %s | %s | |' "$RUN_SIMS" "$rss0" "$hwm0")")
    ROWS_RSS+=("$(printf '| %s jobs running (%s prompts in flight on the backends) | %s | %s | %.1f KiB |' \
        "$nrun" "$inflight" "$rss1" "$hwm1" \
        "$(awk -v a="$rss1" -v b="$rss0" -v n="$nrun" 'BEGIN { print n ? (a - b) * 1024 / n : 0 }')")")
    stop_gateway
fi

# --- sync POST /prompt -------------------------------------------------------------------------------------
if has_case prompt; then
    start_gateway "$(urls_of "$PROMPT_BACKENDS")" "$PROMPT_BACKENDS" prompt
    : >"$TMP/wrk.prompt"
    for ((r = 0; r <= RUNS; r++)); do
        secs="$DURATION"
        [ "$r" -gt 0 ] || secs="$WARMUP"
        [ "$secs" -gt 0 ] || continue
        wait_idle
        log "prompt: sync POST /prompt 512×512 run $r/$RUNS (${secs}s; 0 = warm-up)"
        next_colors
        line="$(run_wrk "$PROMPT_BACKENDS" "prompt-$r" "$secs" "$GW" "$TMP/prompt.lua" "$CB")"
        [ "$r" -eq 0 ] || echo "$line" >>"$TMP/wrk.prompt"
        if grep -q 'no base64 PNG' "$TMP/logs/prompt-$r.txt"; then
            echo "run.sh: sync /prompt answers carry no base64 PNG" >&2
            exit 1
        fi
    done
    stop_gateway
    f="$TMP/wrk.prompt"
    ROWS_PROMPT+=("$(wrk_row "sync POST /prompt, EmptyImage 512×512 → SaveImage, base64 PNG answer" "$f" "$PROMPT_BACKENDS backends; comfysim CPU $(awk '{print $5}' "$f" | median)%")")
    DETAILS+=("- sync /prompt req/s per run: $(per_run_int "$f")")
fi
stop_sims

# --- report ----------------------------------------------------------------------------------------------
CURL_VER="$(pkg-config --modversion libcurl 2>/dev/null || echo '?')"
FS="$(df -T "$TMP" 2>/dev/null | awk 'NR == 2 {print $2}')"
report_info "$BUILD_DIR"

REPORT="$(
    echo "### $(date -u) — jobs end to end (bench/jobs/run.sh$([ "$QUICK" -eq 1 ] && echo " --quick"))${LABEL:+ — $LABEL}"
    echo
    echo "nproc $(nproc) ($CPU_MODEL), kernel $(uname -r), data on ${FS:-?}, $WRK_VER, libcurl $CURL_VER, $COMFY_VER ($GIT_REV)."
    echo "comfygate THREADS=$THREADS, ACCESS_LOG=false, defaults otherwise (synchronous=FULL, group commit); comfysim --exec-ms 0 --step-ms 0; $RUNS × ${DURATION}s per case (median), ${WARMUP}s warm-up, nice $NICE; extra settings: ${EXTRA:-none}. Gateway, comfysims and clients share the $(nproc) CPUs; CPU columns are % of one CPU over the client's run."
    if [ ${#ROWS_E2E[@]} -gt 0 ]; then
        echo
        echo "End to end (POST /jobs smoke → SSE until succeeded → GET the PNG; jobload keeps N jobs in flight):"
        echo
        echo "| backends | jobs in flight | jobs/s | latency p50 / p99 (ms) | gateway CPU | comfysim CPU | client CPU | gateway CPU per job | other load | errors |"
        echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        printf '%s\n' "${ROWS_E2E[@]}"
    fi
    if [ ${#ROWS_LAT[@]} -gt 0 ]; then
        echo
        echo "Latency of one job at a time, same graph (EmptyImage 64×64 → SaveImage), $LAT_JOBS jobs per run:"
        echo
        echo "| path | p50 ms | p90 ms | p99 ms | mean ms | other load | errors |"
        echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
        printf '%s\n' "${ROWS_LAT[@]}"
    fi
    if [ ${#ROWS_WRK[@]} -gt 0 ] || [ ${#ROWS_PROMPT[@]} -gt 0 ]; then
        echo
        echo "Under wrk ($CONNS connections, $THREADS threads):"
        echo
        echo "| request | conns | req/s | latency p50 / p99 (ms) | gateway CPU | gateway CPU per request | wrk CPU | other load | status codes | notes |"
        echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"
        printf '%s\n' "${ROWS_WRK[@]+"${ROWS_WRK[@]}"}" "${ROWS_PROMPT[@]+"${ROWS_PROMPT[@]}"}"
    fi
    if [ ${#ROWS_RSS[@]} -gt 0 ]; then
        echo
        echo "Memory of the gateway process (/proc/PID/status; queued: the only backend refuses connections):"
        echo
        echo "| state | VmRSS MiB | VmHWM MiB | RSS per job |"
        echo "| --- | ---: | ---: | ---: |"
        printf '%s\n' "${ROWS_RSS[@]}"
    fi
    echo
    if [ "$BUSY_WARN" -eq 1 ]; then
        echo "**Warning:** other processes used ≥ ${IDLE_PCT}% of the CPUs during some runs (\"other load\", the worst run); the rates are unreliable, the CPU-per-job numbers less so."
        echo
    fi
    printf '%s\n' "${DETAILS[@]+"${DETAILS[@]}"}"
    echo
)"
append_report "$REPORT"
