#!/usr/bin/env bash
# Installs dependencies, builds with ASan + UBSan, runs every test suite (unit, integration,
# fuzz-regress, ...) and a short fuzzing run, then prints "N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh test || exit 1
dir=${BUILD_DIR:-build-test}
if [ -d "$dir" ]; then
  meson setup --reconfigure "$dir" -Db_sanitize=address,undefined -Dtests=true >/dev/null || exit 1
else
  meson setup "$dir" -Db_sanitize=address,undefined -Dtests=true >/dev/null || exit 1
fi
ninja -C "$dir" || exit 1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
meson test -C "$dir" --print-errorlogs --num-processes 2 ${MESON_TEST_ARGS:-}
log="$dir/meson-logs/testlog.json"
passed=$(grep -c '"result": "OK"' "$log" || true)
failed=$(grep -cE '"result": "(FAIL|TIMEOUT|ERROR|UNEXPECTEDPASS)"' "$log" || true)
skipped=$(grep -c '"result": "SKIP"' "$log" || true)
# A short libFuzzer run of every harness (clang), counted as one more check each.
if [ -x fuzz/run.sh ] && [ "${FUZZ_SECONDS:-20}" != 0 ]; then
  if bash fuzz/run.sh "${FUZZ_SECONDS:-20}"; then
    passed=$((passed + 1))
  else
    echo "fuzz: a fuzzer found a crash (see above)"
    failed=$((failed + 1))
  fi
fi
echo "${passed} passed, ${failed} failed, ${skipped} skipped"
[ "$failed" -eq 0 ]
