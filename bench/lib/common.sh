# Shared by the bench/*/run.sh scripts (sourced, not run): logging, stopping a process this
# script started, and the CPU ticks of a process's children.

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

children_ticks() { # a file written by the `times` builtin → children's user+sys in ticks
    awk -v hz="$HZ" 'NR == 2 { t = 0
        for (i = 1; i <= 2; i++) { v = $i; sub(/s$/, "", v); split(v, p, "m"); t += p[1] * 60 + p[2] }
        printf "%.0f", t * hz }' "$1"
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

build_release() { # meson setup (release, no tests) once, then ninja, in $BUILD_DIR (from $ROOT)
    if [ ! -f "$BUILD_DIR/build.ninja" ]; then
        log "meson setup $BUILD_DIR (release, no tests)"
        (cd "$ROOT" && meson setup "$BUILD_DIR" --buildtype=release -Dtests=false) >/dev/null
    fi
    log "ninja -C $BUILD_DIR"
    ninja -C "$BUILD_DIR" >/dev/null
}
