# Shared by the bench/*/run.sh scripts (sourced, not run): medians of the runs, what a report
# says about the machine and the binary, and appending the report to bench/RESULTS.md.

median() { # numbers on stdin → median
    sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) { print 0; exit }
        if (NR % 2) print a[(NR + 1) / 2]; else printf "%.2f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# col_medians FILE COLUMN... → the median of each of these columns of FILE, joined by commas
# (empty ones too), for: IFS=, read -r a b c <<<"$(col_medians FILE 1 2 3)"
col_medians() {
    local f="$1" c meds=()
    shift
    for c in "$@"; do meds+=("$(awk -v c="$c" '{ print $c }' "$f" | median)"); done
    (IFS=,; echo "${meds[*]}")
}

per_run() { # FILE [COLUMN] → the values of that column (default 1), one per run: "a, b, c"
    awk -v c="${2:-1}" '{ printf "%s%s", (NR > 1 ? ", " : ""), $c }' "$1"
}

per_run_int() { # FILE → column 1, one value per run, rounded: "a, b, c"
    awk '{ printf "%s%.0f", (NR > 1 ? ", " : ""), $1 }' "$1"
}

# report_info DIR: sets WRK_VER, CPU_MODEL, COMFY_VER, EXTRA (the --set values) and GIT_REV (the
# checkout's revision when $BINARY is DIR/comfygate, else the binary's path) for a report.
# shellcheck disable=SC2034 # the variables are the sourcing script's
report_info() {
    WRK_VER="$( (wrk -v 2>&1 || true) | head -1 | awk '{print $1, $2}')"
    CPU_MODEL="$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
    COMFY_VER="$("$BINARY" --version 2>/dev/null || echo comfygate)"
    if [ "$BINARY" = "$(cd "$1" 2>/dev/null && pwd)/comfygate" ]; then
        GIT_REV="git $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)"
        if [ -n "$(cd "$ROOT" && git status --porcelain --untracked-files=no -- src meson.build 2>/dev/null)" ]; then
            GIT_REV="$GIT_REV + uncommitted changes in src/"
        fi
    else
        GIT_REV="binary $BINARY"
    fi
    EXTRA="${COMFY_ENV[*]+"${COMFY_ENV[*]}"}"
}

# append_report REPORT [HEADER_FUNCTION]: prints the report, then appends it to $RESULTS (unless
# --no-append), after what HEADER_FUNCTION prints if the file does not exist yet.
append_report() {
    echo
    echo "$1"
    [ "$APPEND" -eq 1 ] || return 0
    if [ -n "${2:-}" ] && [ ! -f "$RESULTS" ]; then "$2" >"$RESULTS"; fi
    echo "$1" >>"$RESULTS"
    log "appended to $RESULTS"
}
