# Shared by bench/http/run.sh and bench/https/run.sh (sourced after common.sh): the process
# bookkeeping, CPU sampling, idle-machine wait and number formatting of a comfygate-vs-nginx run.
# The functions read the caller's globals (TMP, COMFY_PID, NGINX_PID, SAMPLER_PID, WRK_PID,
# KEEP_LOGS, IDLE_PCT, ...), as they did when each script carried its own copy.

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    [ "$rc" -eq 0 ] || log "stopping (exit status $rc)"
    stop_pid "$WRK_PID" INT 5
    stop_pid "$SAMPLER_PID" TERM 2
    stop_pid "$COMFY_PID" TERM 5 # SHUTDOWN_TIMEOUT_MS=2000: a healthy comfygate is gone by then
    if [ -n "$NGINX_PID" ]; then
        local workers
        workers="$(nginx_workers "$NGINX_PID")"
        stop_pid "$NGINX_PID" TERM 10 # nginx: TERM = fast shutdown, master stops its workers
        for w in $workers; do         # only if the master died before they did
            if kill -0 "$w" 2>/dev/null; then kill -KILL "$w" 2>/dev/null || true; fi
        done
    fi
    if [ -n "$KEEP_LOGS" ]; then
        mkdir -p "$KEEP_LOGS"
        cp -r "$TMP/logs/." "$KEEP_LOGS/" 2>/dev/null || true
        cp "$TMP"/comfygate.log "$TMP"/nginx.conf "$TMP"/nginx-error.log "$KEEP_LOGS/" 2>/dev/null || true
    fi
    rm -rf "$TMP"
    exit "$rc"
}

cpu_ticks() { # sum of utime+stime (clock ticks) over the given pids, all threads
    local t=0 p s
    for p in "$@"; do
        s="$(cat "/proc/$p/stat" 2>/dev/null)" || continue
        s="${s##*) }"
        # after "pid (comm) ": state ppid ... field 14 utime is word 12, stime word 13
        # shellcheck disable=SC2086
        set -- $s
        t=$((t + ${12} + ${13}))
    done
    echo "$t"
}

fmt_us() { awk -v u="$1" 'BEGIN { if (u >= 100) printf "%.0f µs", u; else printf "%.1f µs", u }'; }

human_bytes() {
    awk -v b="$1" 'BEGIN {
        if (b >= 1073741824) printf "%.2f GiB/s", b / 1073741824
        else if (b >= 1048576) printf "%.1f MiB/s", b / 1048576
        else printf "%.1f KiB/s", b / 1024 }'
}

machine_busy() { # "busy total" clock ticks of all CPUs since boot (busy: user nice system irq softirq steal)
    awk '/^cpu / { b = $2 + $3 + $4 + $7 + $8 + $9; print b, b + $5 + $6; exit }' /proc/stat
}

median() { # numbers on stdin → median
    sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) { print 0; exit }
        if (NR % 2) print a[(NR + 1) / 2]; else printf "%.2f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

nginx_workers() { # the master's children
    local m="$1"
    cat "/proc/$m/task/$m/children" 2>/dev/null || true
}

port_in_use() {
    local hex
    hex="$(printf ':%04X ' "$1")"
    grep -q " 0100007F$hex\| 00000000$hex" /proc/net/tcp 2>/dev/null
}

server_pids() { # pids whose CPU time counts as the server's
    if [ "$1" = comfygate ]; then echo "$COMFY_PID"; else nginx_workers "$NGINX_PID"; echo "$NGINX_PID"; fi
}

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

to_bytes() { # wrk's "1.23GB" → bytes
    awk -v s="$1" 'BEGIN {
        n = s + 0; u = s; sub(/^[0-9.]+/, "", u)
        m = 1
        if (u == "KB") m = 1024; else if (u == "MB") m = 1048576
        else if (u == "GB") m = 1073741824; else if (u == "TB") m = 1099511627776
        printf "%.0f", n * m }'
}

# Waits (up to --wait-idle seconds) until processes other than ours use less than --idle-pct %
# of the machine's CPUs over one second; our servers are idle between runs, so all the busy time
# then comes from something else (other people's builds, tests, fuzzers).
wait_idle() {
    local deadline=$((SECONDS + WAIT_IDLE)) b0 b1 t0 t1 s0 s1 pct pids warned=0
    pids="$(server_pids comfygate; server_pids nginx)"
    while :; do
        read -r b0 t0 <<<"$(machine_busy)"
        # shellcheck disable=SC2086
        s0="$(cpu_ticks $pids)"
        sleep 1
        read -r b1 t1 <<<"$(machine_busy)"
        # shellcheck disable=SC2086
        s1="$(cpu_ticks $pids)"
        pct=$(( ((b1 - b0) - (s1 - s0)) * 100 / ((t1 - t0) > 0 ? (t1 - t0) : 1) ))
        [ "$pct" -lt "$IDLE_PCT" ] && return 0
        if [ "$warned" -eq 0 ]; then
            log "machine busy: other processes use ${pct}% of the CPUs; waiting up to ${WAIT_IDLE}s"
            warned=1
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "still busy (${pct}%); measuring anyway (see the 'other load' column)"
            return 0
        fi
    done
}
