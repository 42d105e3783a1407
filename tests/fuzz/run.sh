#!/usr/bin/env bash
# run.sh - build scepd's fuzz configuration and run every libFuzzer target
# for a bounded time on its seed corpus.  This is what CI calls.
#
#   tests/fuzz/run.sh [BUILD_DIR [SECONDS]]
#       BUILD_DIR  default /work/main/build-fuzz (any directory; created)
#       SECONDS    per target, default 20 (or $FUZZ_SECONDS; $SECONDS itself
#                  cannot be used: bash counts the shell's age in it)
#   FUZZ_TARGETS="query csr"  to run only some targets
#
# Exit status: 0 when every target ran clean; otherwise non-zero, with the
# reproducer under BUILD_DIR/tests/fuzz/artifacts/ (see README.md).
#
# Long runs (not CI): run a target for an hour on a persistent corpus, two
# at a time on a 2-core machine, e.g.
#   tests/fuzz/run_target.sh BUILD_DIR/tests/fuzz/fuzz_pkimsg_signed \
#       tests/fuzz/corpus/fuzz_pkimsg_signed 3600 /tmp/fuzz-artifacts
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
BUILD=${1:-$SRC/build-fuzz}
SECS=${2:-${FUZZ_SECONDS:-20}}
TARGETS=${FUZZ_TARGETS:-query csr pkimsg envelope pkimsg_signed certrep certrep_signed token policy answers der crt}
CC=${CC:-clang-14}

if ! command -v "$CC" >/dev/null; then
    echo "run.sh: $CC not found; apt-get install clang-14 libclang-rt-14-dev" >&2
    exit 2
fi
if ! grep -Eq '^[[:space:]]*add_subdirectory\((fuzz)\)' "$SRC/tests/CMakeLists.txt"; then
    echo "run.sh: tests/CMakeLists.txt does not add_subdirectory(fuzz)" >&2
    exit 2
fi

mkdir -p "$BUILD"
# CMAKE_BUILD_TYPE=None: exactly these flags (Release would add -O3 -DNDEBUG).
# fuzzer-no-link instruments scepcore for coverage without libFuzzer's main.
CC=$CC cmake -S "$SRC" -B "$BUILD" -DSCEPD_FUZZ=ON -DCMAKE_BUILD_TYPE=None \
    -DSCEPD_FUZZ_SECONDS="$SECS" \
    -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1" \
    >"$BUILD/fuzz-configure.log" 2>&1 || {
    cat "$BUILD/fuzz-configure.log" >&2
    exit 2
}
build_targets=()
for t in $TARGETS; do
    build_targets+=(--target "fuzz_$t")
done
cmake --build "$BUILD" -j"$(nproc)" "${build_targets[@]}"

fuzzdir=$BUILD/tests/fuzz
failed=()
for t in $TARGETS; do
    log=$fuzzdir/fuzz_$t.log
    echo "=== fuzz_$t: ${SECS}s (log: $log)"
    rc=0
    bash "$HERE/run_target.sh" "$fuzzdir/fuzz_$t" "$HERE/corpus/fuzz_$t" "$SECS" \
        "$fuzzdir/artifacts" >"$log" 2>&1 || rc=$?
    grep -E '^#[0-9]+[[:space:]]+DONE|^stat::number_of_executed_units' "$log" || true
    if ((rc != 0)); then
        failed+=("fuzz_$t")
        grep -E -A30 '^==[0-9]+==ERROR|runtime error|FAILED|property violated' "$log" | head -60 >&2 || true
    fi
done
if ((${#failed[@]})); then
    echo "run.sh: FAILED: ${failed[*]} (logs: $fuzzdir/<target>.log, inputs: $fuzzdir/artifacts/)" >&2
    exit 1
fi
echo "run.sh: all fuzz targets clean (${SECS}s each)"
