#!/usr/bin/env bash
# bench/https/run.sh — comfygate's TLS (BearSSL) vs nginx's (OpenSSL) on this machine, over
# loopback (127.0.0.1 only). Both servers get the same certificate (made here with the openssl
# tool: a throw-away CA and an RSA-2048 or EC P-256 leaf), TLS 1.2 only, the same cipher suites
# in the same order (ECDHE with AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305; server preference),
# a session cache and no session tickets, and the same reactor/worker count.
#
# Cases:
#   health     GET /health, 64 keep-alive connections    (nginx: return 200 '{"ok":true}')
#   1m         GET a 1 MiB file, 64 connections          (comfygate reads it through the ring
#              and encrypts; nginx reads it and SSL_writes: no sendfile under TLS for either)
#   resume     GET /health with "Connection: close", 64 connections: every request is a new
#              TCP connection and TLS handshake; wrk offers its last session again (SSL_clear
#              keeps it), so these are abbreviated handshakes: no RSA/ECDSA, no ECDHE
#   handshake  the same with both servers' session caches off (restarted for this case): every
#              request is a full handshake — ECDHE and a signature with the certificate's key
# Each case: one warm-up run per server, then --runs measured runs of --duration seconds,
# comfygate and nginx interleaved; the table shows medians and the ratio comfygate/nginx.
# The table is printed and appended, dated, to bench/RESULTS.md (unless --no-append).
#
# See bench/README.md. Run `bench/https/run.sh --help` for options.
set -euo pipefail

SCRIPT=bench/https/run.sh
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source-path=SCRIPTDIR/..
. "$ROOT/bench/lib/nginx.sh"

common_defaults # bench/lib/options.sh: 2 threads, 3 × 10 s, 3 s warm-up, 64 conns, ...
WRK_THREADS=""
KEY=rsa
CASES="health,1m,resume,handshake"
SESSIONS=on # both servers' session caches; the handshake case runs with them off

usage() {
    nginx_usage_head
    cat <<EOF
  --conns C          connections per case (default $CONNS)
  --wrk-threads T    wrk threads (default: same as --threads, at most the connection count)
  --key rsa|ec       the certificate's key: RSA-2048 or EC P-256 (default $KEY)
  --cases LIST       comma-separated subset of: health,1m,resume,handshake (default $CASES)
EOF
    nginx_usage_tail
}

extra_opt() { # the options only this script takes (the others: common_opt)
    case "$1" in
    --key) KEY="$2" ;;
    --wrk-threads) WRK_THREADS="$2" ;;
    *) return 1 ;;
    esac
    OPT_WORDS=2
}

parse_opts "$@"
[[ "$KEY" == rsa || "$KEY" == ec ]] || { echo "run.sh: --key must be rsa or ec" >&2; exit 2; }
nginx_check_opts THREADS DURATION RUNS WARMUP CONNS

nginx_prepare comfygate-https-bench openssl
make_files 1m:1

# --- certificate: a throw-away CA and a leaf for localhost, for both servers -------------------
make_certs() {
    local d="$TMP/tls"
    mkdir -p "$d"
    (
        cd "$d"
        openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 \
            -subj "/CN=comfygate bench CA" -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign" 2>/dev/null
        printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n' >leaf.cnf
        if [ "$KEY" = ec ]; then
            openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout leaf.key \
                -out leaf.csr -subj /CN=localhost 2>/dev/null
        else
            openssl req -new -newkey rsa:2048 -nodes -keyout leaf.key -out leaf.csr \
                -subj /CN=localhost 2>/dev/null
        fi
        openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
            -extfile leaf.cnf -out leaf.pem 2>/dev/null
        cat leaf.pem ca.pem >chain.pem
    ) || { echo "run.sh: openssl could not make the certificate" >&2; exit 1; }
    CERT="$d/chain.pem"
    CERT_KEY="$d/leaf.key"
    CA="$d/ca.pem"
    # the same suites, in the same order, as comfygate offers for this key type
    if [ "$KEY" = ec ]; then
        CIPHERS="ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305"
    else
        CIPHERS="ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305"
    fi
}
log "making a $KEY certificate with openssl"
make_certs

# --- the servers: comfygate's TLS policy in nginx, the same certificate --------------------------
check_servers() {
    local p v
    check_health https://localhost --cacert "$CA"
    for p in "$COMFY_PORT" "$NGINX_PORT"; do
        check_file https://localhost "$p" 1m.bin --cacert "$CA"
        # both must negotiate the same thing: TLS 1.2 and the first suite
        v="$(openssl s_client -connect "127.0.0.1:$p" -servername localhost -CAfile "$CA" </dev/null 2>/dev/null |
            awk '/^New, /{print $2, $5}')"
        [ "$v" = "TLSv1.2, ${CIPHERS%%:*}" ] || { echo "run.sh: port $p negotiates \"$v\"" >&2; exit 1; }
    done
    rm -f "$TMP/got.bin" "$TMP/h.txt"
}

start_servers() {
    local tls=(TLS_CERT_FILE="$CERT" TLS_KEY_FILE="$CERT_KEY")
    [ "$SESSIONS" = on ] || tls+=(TLS_SESSION_CACHE_BYTES=0)
    start_comfygate "${tls[@]}"
    NGINX_TLS="$(
        cat <<EOF
    # comfygate's TLS policy: TLS 1.2 only, its suites in its order, a session cache, no tickets
    ssl_protocols TLSv1.2;
    ssl_ciphers $CIPHERS;
    ssl_prefer_server_ciphers on;
    ssl_session_cache $([ "$SESSIONS" = on ] && echo shared:SSL:1m || echo off);
    ssl_session_tickets off;
    ssl_certificate $CERT;
    ssl_certificate_key $CERT_KEY;
EOF
    )"
    start_nginx https://localhost --cacert "$CA"
    check_servers
    log_servers "session caches $SESSIONS; "
}

# --- main --------------------------------------------------------------------------------------------------
start_servers

declare -A CASE_PATH=([health]=/health [1m]=/static/1m.bin [resume]=/health [handshake]=/health)
declare -A CASE_NAME=([health]="HTTPS GET /health, keep-alive" [1m]="HTTPS GET 1 MiB file"
    [resume]="HTTPS GET /health, new connection + resumed handshake each"
    [handshake]="HTTPS GET /health, new connection + full handshake each")
measure_this() { # CASE, for run_cases: the session caches it needs, a new connection per request?
    local want=on wa=()
    [ "$1" = handshake ] && want=off
    if [ "$want" != "$SESSIONS" ]; then
        log "restarting both servers with their session caches $want"
        stop_servers
        SESSIONS=$want
        start_servers
    fi
    [ "$1" = handshake ] || [ "$1" = resume ] && wa=(-H "Connection: close")
    measure_case "$1" "$CONNS" "https://127.0.0.1:$COMFY_PORT${CASE_PATH[$1]}" \
        "https://127.0.0.1:$NGINX_PORT${CASE_PATH[$1]}" "${wa[@]+"${wa[@]}"}"
}
run_cases

# --- report ----------------------------------------------------------------------------------------------
NGINX_VER="$(nginx -v 2>&1 | sed 's/^nginx version: //')"
SSL_VER="$(openssl version | awk '{print $1, $2}')"
BEARSSL_VER="$(dpkg-query -W -f='${Version}' libbearssl0 2>/dev/null || echo '?')"
KEY_DESC="RSA-2048"
[ "$KEY" = ec ] && KEY_DESC="EC P-256"
report_info "$BUILD_DIR"

REPORT="$(
    echo "### $(date -u) — HTTPS ($KEY_DESC)${LABEL:+ — $LABEL}"
    echo
    echo "nproc $(nproc) ($CPU_MODEL), kernel $(uname -r), $NGINX_VER with $SSL_VER, $WRK_VER, $COMFY_VER with BearSSL $BEARSSL_VER ($GIT_REV)."
    echo "TLS 1.2, $KEY_DESC certificate, suites $CIPHERS (server order), no session tickets, session caches on except for the full-handshake case; bench/https/run.sh."
    nginx_table
)"
append_report "$REPORT" results_header
