# Shared by the bench/*/run.sh scripts (sourced, not run): the options all three take, their
# defaults and the checks of their values. Each script keeps its usage() and its own options.

# common_defaults: the defaults of those options (a script then sets its own, and may change these)
# shellcheck disable=SC2034 # the variables are the sourcing script's
common_defaults() {
    THREADS=2
    DURATION=10
    RUNS=3
    WARMUP=3
    CONNS=64
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
}

# common_opt "$@": the option in $1 (and its value in $2) that every script takes; sets its
# variable and OPT_WORDS (the words it used). -h/--help prints usage(); anything else is an error.
# shellcheck disable=SC2034 # the variables are the sourcing script's
common_opt() {
    OPT_WORDS=2
    case "$1" in
    --threads) THREADS="$2" ;;
    --duration) DURATION="$2" ;;
    --runs) RUNS="$2" ;;
    --warmup) WARMUP="$2" ;;
    --conns) CONNS="$2" ;;
    --cases) CASES="$2" ;;
    --set) COMFY_ENV+=("$2") ;;
    --label) LABEL="$2" ;;
    --build-dir) BUILD_DIR="$2" ;;
    --binary) BINARY="$2"; DO_BUILD=0 ;;
    --no-build) DO_BUILD=0; OPT_WORDS=1 ;;
    --no-append) APPEND=0; OPT_WORDS=1 ;;
    --results) RESULTS="$2" ;;
    --keep-logs) KEEP_LOGS="$2" ;;
    --wait-idle) WAIT_IDLE="$2" ;;
    --idle-pct) IDLE_PCT="$2" ;;
    --nice) NICE="$2" ;;
    -h | --help) usage; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
}

check_positive() { # VAR...: each must be a whole number from 1
    local v
    for v in "$@"; do
        if ! [[ "${!v}" =~ ^[1-9][0-9]*$ ]]; then
            echo "run.sh: --${v,,} must be a positive whole number" >&2
            exit 2
        fi
    done
}

check_whole() { # OPTIONS VAR...: each VAR must be a whole number; OPTIONS names them in the message
    local opts="$1" v
    shift
    for v in "$@"; do
        if ! [[ "${!v}" =~ ^[0-9]+$ ]]; then
            echo "run.sh: $opts must be whole numbers" >&2
            exit 2
        fi
    done
}

check_nice() {
    if ! [[ "$NICE" =~ ^-?[0-9]+$ ]] || [ "$NICE" -lt -20 ] || [ "$NICE" -gt 19 ]; then
        echo "run.sh: --nice must be a whole number from -20 to 19" >&2
        exit 2
    fi
    if [ "$NICE" -lt 0 ] && [ "$(id -u)" -ne 0 ]; then
        echo "run.sh: --nice below 0 needs root" >&2
        exit 2
    fi
}

check_settings() { # the --set values: NAME=VALUE each
    local kv
    for kv in "${COMFY_ENV[@]+"${COMFY_ENV[@]}"}"; do
        [[ "$kv" =~ ^[A-Z_][A-Z0-9_]*=.*$ ]] || { echo "run.sh: --set wants NAME=VALUE, got $kv" >&2; exit 2; }
    done
}

parse_opts() { # "$@" of the script: each option is the script's own (extra_opt) or a common one
    while [ $# -gt 0 ]; do
        extra_opt "$@" || common_opt "$@"
        shift "$OPT_WORDS"
    done
}
