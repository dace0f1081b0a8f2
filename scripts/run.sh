#!/usr/bin/env bash
# Installs dependencies, builds a release binary and starts the gateway on its embedded
# defaults. With no COMFYUI_URL/COMFYUI_URLS configured it first starts the bundled ComfyUI
# simulator (comfysim) on 127.0.0.1 so that a job runs end to end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh run
[ -d build ] || meson setup build --buildtype=release -Dtests=false >/dev/null
ninja -C build >/dev/null
if [ -z "${COMFYUI_URL:-}${COMFYUI_URLS:-}" ] && [ -x build/src/sim/comfysim ]; then
  simport=${COMFYSIM_PORT:-8188}
  build/src/sim/comfysim --port "$simport" &
  sim=$!
  trap 'kill $sim 2>/dev/null || true' EXIT
  export COMFYUI_URL="http://127.0.0.1:$simport"
  echo "comfygate: no COMFYUI_URL set; started comfysim (pid $sim) at $COMFYUI_URL" >&2
fi
build/comfygate serve "$@" &
gw=$!
trap 'kill -TERM $gw 2>/dev/null; wait $gw; kill ${sim:-} 2>/dev/null || true' EXIT INT TERM
wait $gw
