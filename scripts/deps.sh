#!/usr/bin/env bash
# Installs what comfygate needs from Debian (bookworm) packages. Idempotent: apt-get runs only
# when something is missing. Usage: scripts/deps.sh [run|test|bench]
set -euo pipefail
what=${1:-run}
pkgs=(gcc meson ninja-build pkg-config liburing-dev libcurl4-openssl-dev libsqlite3-dev
      libbearssl-dev libwslay-dev node-llhttp libjansson-dev zlib1g-dev)
case "$what" in
  test)  pkgs+=(libcmocka-dev clang libclang-rt-14-dev curl python3-pil openssl libssl-dev strace)
         # the webhook tests' receiver runs on Node.js; keep a node that is already there (it
         # may not be Debian's, and Debian's npm would conflict with it)
         command -v node >/dev/null 2>&1 || pkgs+=(nodejs npm) ;;
  bench) pkgs+=(nginx-light wrk curl) ;;
esac
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "comfygate: missing Debian packages: ${missing[*]} (run as root or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "comfygate: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

# The webhook tests verify deliveries with the npm package standardwebhooks, the S3 tests run
# s3rver and @smithy/signature-v4 (tests/js, pinned by its package-lock.json); node_modules is
# not in the repository, and is installed again whenever the lock file is newer.
js="$(dirname "$0")/../tests/js"
if [ "$what" = test ] && { [ ! -f "$js/node_modules/.package-lock.json" ] ||
                           [ "$js/package-lock.json" -nt "$js/node_modules/.package-lock.json" ]; }; then
  echo "comfygate: installing tests/js (npm ci)" >&2
  (cd "$(dirname "$0")/../tests/js" && npm ci --no-audit --no-fund >/dev/null)
fi
