#!/usr/bin/env bash
# fuzz/run.sh [SECONDS] — builds every libFuzzer harness (fuzz/fuzz_<name>.c) with clang and
# runs each for SECONDS (default 30) over its seed corpus (fuzz/corpus/<name>/) with its
# dictionary (fuzz/<name>.dict, else fuzz/<first word of name>.dict).
#
# The repository's corpus is only read: new interesting inputs and any crash, leak or timeout
# input go to a scratch directory (FUZZ_SCRATCH, default a fresh /tmp/comfygate-fuzz.*), which
# is printed at the end. Exits non-zero if any harness fails; add the saved input to the corpus
# once the bug is fixed, so the fuzz-regress suite replays it from then on.
#
# Needs Debian's clang and libclang-rt-14-dev. Environment: FUZZ_BUILD_DIR (default
# build-fuzz), FUZZ_SCRATCH, FUZZ_ONLY (names of the harnesses to run), FUZZ_ARGS (extra libFuzzer flags, e.g. "-jobs=4 -workers=4").
set -uo pipefail
secs=${1:-30}
cd "$(dirname "$0")/.."
dir=${FUZZ_BUILD_DIR:-build-fuzz}
scratch=${FUZZ_SCRATCH:-$(mktemp -d /tmp/comfygate-fuzz.XXXXXX)}
mkdir -p "$scratch"

if ! command -v clang >/dev/null; then
  echo "fuzz: clang not found (Debian: apt-get install clang libclang-rt-14-dev)" >&2
  exit 1
fi
if [ ! -f "$dir/build.ninja" ]; then
  CC=clang meson setup "$dir" -Dfuzz=true -Dtests=false >"$scratch/setup.log" 2>&1 || {
    cat "$scratch/setup.log" >&2
    exit 1
  }
fi

harnesses=()
for src in fuzz/fuzz_*.c; do
  [ -e "$src" ] || continue
  name=$(basename "$src" .c)
  name=${name#fuzz_}
  # FUZZ_ONLY="a b": run just these harnesses
  if [ -n "${FUZZ_ONLY:-}" ] && [[ " $FUZZ_ONLY " != *" $name "* ]]; then continue; fi
  harnesses+=("$name")
done
if [ ${#harnesses[@]} -eq 0 ]; then
  echo "fuzz: no harnesses in fuzz/" >&2
  exit 1
fi
# Build only the harnesses: the rest of the tree need not build under clang for this.
targets=()
for h in "${harnesses[@]}"; do targets+=("fuzz/fuzz_$h"); done
ninja -C "$dir" "${targets[@]}" >"$scratch/build.log" 2>&1 || {
  cat "$scratch/build.log" >&2
  echo "fuzz: build failed" >&2
  exit 1
}

status=0
for h in "${harnesses[@]}"; do
  bin="$dir/fuzz/fuzz_$h"
  corpus="fuzz/corpus/$h"
  dict="fuzz/$h.dict"
  [ -f "$dict" ] || dict="fuzz/${h%%_*}.dict"
  out="$scratch/$h"
  mkdir -p "$out/new" "$out/artifacts"
  args=(-max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048
        -print_final_stats=1 -artifact_prefix="$out/artifacts/")
  [ -f "$dict" ] && args+=(-dict="$dict")
  dirs=("$out/new")
  [ -d "$corpus" ] && dirs+=("$corpus")
  echo "fuzz: $h for ${secs}s (corpus $corpus, dictionary ${dict}, log $out/fuzz.log)"
  # The first directory receives new inputs; the repository's corpus is only read.
  # shellcheck disable=SC2086
  "$bin" "${args[@]}" ${FUZZ_ARGS:-} "${dirs[@]}" >"$out/fuzz.log" 2>&1
  rc=$?
  grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb|^#[0-9]+ +DONE' "$out/fuzz.log" |
    sed "s/^/fuzz: $h: /"
  if [ $rc -ne 0 ] || ls "$out/artifacts/" | grep -q .; then
    echo "fuzz: $h FAILED (exit $rc); inputs in $out/artifacts/:" >&2
    ls -l "$out/artifacts/" >&2
    grep -m1 -B2 -A30 -E 'ERROR: |check failed|runtime error' "$out/fuzz.log" >&2
    status=1
  fi
done
echo "fuzz: scratch directory $scratch"
exit $status
