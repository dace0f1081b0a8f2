# Shared by the bench/*/run.sh scripts (sourced, not run): the CPU time of processes and of the
# whole machine, what other processes use during a run, and the wait for a quiet machine.
# Sets HZ (clock ticks per second). wait_idle needs WAIT_IDLE, IDLE_PCT and a function bench_pids
# that prints the pids of the servers the script runs (their CPU time is not "other load").

HZ="$(getconf CLK_TCK)"

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

children_ticks() { # a file written by the `times` builtin → children's user+sys in ticks
    awk -v hz="$HZ" 'NR == 2 { t = 0
        for (i = 1; i <= 2; i++) { v = $i; sub(/s$/, "", v); split(v, p, "m"); t += p[1] * 60 + p[2] }
        printf "%.0f", t * hz }' "$1"
}

machine_busy() { # "busy total" clock ticks of all CPUs since boot (busy: user nice system irq softirq steal)
    awk '/^cpu / { b = $2 + $3 + $4 + $7 + $8 + $9; print b, b + $5 + $6; exit }' /proc/stat
}

# other_load BEFORE AFTER OURS: the CPU that everything else on the machine used between two
# machine_busy readings, as % of all CPUs: its busy ticks − OURS (the ticks of our servers and
# of this script's children).
other_load() {
    awk -v m="$2 $1" -v ours="$3" 'BEGIN { split(m, a, " "); tot = a[2] - a[4]; if (tot <= 0) tot = 1
        o = (a[1] - a[3] - ours) / tot * 100
        if (o < 0) o = 0; printf "%.0f", o }'
}

# Waits (up to --wait-idle seconds) until processes other than ours use less than --idle-pct %
# of the machine's CPUs over one second; our servers are idle between runs, so all the busy time
# then comes from something else (other people's builds, tests, fuzzers).
wait_idle() {
    [ "$WAIT_IDLE" -gt 0 ] || return 0
    local deadline=$((SECONDS + WAIT_IDLE)) b0 b1 t0 t1 s0 s1 pct pids warned=0
    pids="$(bench_pids)"
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
