# Shared by the bench/*/run.sh scripts (sourced, not run): logging, the tools and binaries a run
# needs, the temp dir, and starting and stopping the processes a script runs.
# The functions read the caller's globals (ROOT, BUILD_DIR, BINARY, THREADS, NICE, COMFY_ENV, TMP,
# KEEP_LOGS, ...); cleanup calls the caller's stop_all.

log() { printf '[bench %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

stop_pid() { # pid signal timeout_s
    local pid="$1" sig="$2" t="$3" i
    [ -n "$pid" ] || return 0
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill "-$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < t * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "pid $pid did not stop on SIG$sig; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

install_missing() { # Debian packages...: installs them with apt-get as root, else says how and exits
    [ $# -gt 0 ] || return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "run.sh: missing $*; run as root or: sudo apt-get install $*" >&2
        exit 1
    fi
    log "installing $* (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

need_tools() { # COMMAND[:PACKAGE]...: installs the Debian packages of the missing commands
    local t pkgs=()
    for t in "$@"; do command -v "${t%%:*}" >/dev/null 2>&1 || pkgs+=("${t#*:}"); done
    install_missing "${pkgs[@]+"${pkgs[@]}"}"
}

build_release() { # meson setup (release, no tests) once, then ninja, in $BUILD_DIR (from $ROOT)
    if [ ! -f "$BUILD_DIR/build.ninja" ]; then
        log "meson setup $BUILD_DIR (release, no tests)"
        (cd "$ROOT" && meson setup "$BUILD_DIR" --buildtype=release -Dtests=false) >/dev/null
    fi
    log "ninja -C $BUILD_DIR"
    ninja -C "$BUILD_DIR" >/dev/null
}

need_exe() { # NAME VAR: exits unless the path in VAR is an executable; then makes it absolute
    local name="$1" var="$2" path="${!2}"
    [ -x "$path" ] || { echo "run.sh: no $name binary at $path" >&2; exit 1; }
    printf -v "$var" '%s' "$(cd "$(dirname "$path")" && pwd)/$(basename "$path")"
}

# wait_port_file PID FILE TRIES WHAT LOG: waits (TRIES × 50 ms) until the process PID has written
# its port into FILE; if it does not (or dies first), prints "WHAT did not start" and LOG, exits.
wait_port_file() {
    local pid="$1" file="$2" tries="$3" what="$4" out="$5" i
    for ((i = 0; i < tries; i++)); do
        [ -s "$file" ] && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    [ -s "$file" ] && return 0
    echo "run.sh: $what did not start:" >&2
    cat "$out" >&2
    exit 1
}

# start_comfygate_process PID_VAR PORT_FILE LOG TRIES [NAME=VALUE...]: $BINARY serve on
# 127.0.0.1, a port of the kernel's choosing (written to PORT_FILE), $THREADS threads, no access
# log, these settings and then the --set ones, at --nice. It runs from $TMP with --env-file
# /dev/null, so no stray ./.env changes the settings. Sets PID_VAR at once (for the cleanup),
# then waits for the port file as wait_port_file does.
start_comfygate_process() {
    local pid_var="$1" port_file="$2" out="$3" tries="$4"
    shift 4
    rm -f "$port_file"
    # shellcheck disable=SC2030,SC2031
    (
        cd "$TMP" || exit
        export HOST=127.0.0.1 PORT=0 PORT_FILE="$port_file" THREADS="$THREADS" \
            ACCESS_LOG=false LOG_LEVEL=warn SHUTDOWN_TIMEOUT_MS=2000
        for kv in "$@" "${COMFY_ENV[@]+"${COMFY_ENV[@]}"}"; do export "${kv?}"; done
        exec nice -n "$NICE" "$BINARY" serve --env-file /dev/null
    ) >"$out" 2>&1 &
    printf -v "$pid_var" '%s' "$!"
    wait_port_file "$!" "$port_file" "$tries" comfygate "$out"
}

# make_tmp NAME: TMP, a new directory /tmp/NAME.XXXXXX, and the traps that run cleanup on exit,
# Ctrl-C and SIGTERM. The pids cleanup reads must be set (maybe to "") before.
make_tmp() {
    TMP="$(mktemp -d "/tmp/$1.XXXXXX")"
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# cleanup: stops what the script started (its stop_all), copies $TMP/logs and the files named in
# KEEP_FILES (relative to $TMP) to --keep-logs DIR, removes $TMP, exits with the script's status.
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    [ "$rc" -eq 0 ] || log "stopping (exit status $rc)"
    stop_all
    if [ -n "$KEEP_LOGS" ]; then
        mkdir -p "$KEEP_LOGS"
        cp -r "$TMP/logs/." "$KEEP_LOGS/" 2>/dev/null || true
        if [ -n "${KEEP_FILES[*]:-}" ]; then
            cp "${KEEP_FILES[@]/#/$TMP/}" "$KEEP_LOGS/" 2>/dev/null || true
        fi
    fi
    rm -rf "$TMP"
    exit "$rc"
}
