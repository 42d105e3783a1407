#!/usr/bin/env bash
# run_target.sh - run one libFuzzer target for a bounded time on a scratch
# copy of its seed corpus, so the committed corpus is never modified.
# Called by the fuzz ctests (CMakeLists.txt) and by run.sh.
#
#   run_target.sh BINARY CORPUS_DIR SECONDS [ARTIFACT_DIR] [extra libFuzzer flags...]
#
# Exit status is libFuzzer's: non-zero on a crash, leak, UBSan report,
# timeout (a single input over 25 s) or RSS over 2 GB.  The reproducer is
# written to ARTIFACT_DIR (default: a directory next to the scratch corpus
# that is kept when the run fails).
set -euo pipefail

bin=${1:?binary}
corpus=${2:?corpus dir}
seconds=${3:-20}
artifacts=${4:-}
shift $(($# < 4 ? $# : 4))

name=$(basename "$bin")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/scepd-$name.XXXXXX")
if [[ -z $artifacts ]]; then
    artifacts=$work/artifacts
fi
mkdir -p "$work/corpus" "$artifacts"
cp -r "$corpus"/. "$work/corpus/"

dict=()
if [[ -f $here/$name.dict ]]; then
    dict=(-dict="$here/$name.dict")
fi

export SCEPD_FUZZ_KEYS=${SCEPD_FUZZ_KEYS:-$here/keys}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

rc=0
"$bin" "${dict[@]}" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=25 \
    -print_final_stats=1 -artifact_prefix="$artifacts/$name-" "$@" "$work/corpus" || rc=$?
if ((rc != 0)); then
    echo "$name: FAILED (exit $rc); reproducer(s) in $artifacts:" >&2
    ls -l "$artifacts" >&2 || true
    echo "$name: reproduce with: SCEPD_FUZZ_KEYS=$SCEPD_FUZZ_KEYS $bin $artifacts/<file>" >&2
    if [[ $artifacts == "$work"/* ]]; then
        rm -rf "$work/corpus" # keep the reproducer
    else
        rm -rf "$work"
    fi
    exit "$rc"
fi
rm -rf "$work"
exit 0
