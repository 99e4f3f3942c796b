#!/bin/sh
# tests/fuzz/run.sh: long libFuzzer run of every fuzz target (used by `deploy/dev chaos`).
#
# Usage: tests/fuzz/run.sh [SECONDS] [TARGET...]
#   SECONDS  time per target (default 60)
#   TARGET   e.g. fuzz_params (default: every fuzz_* binary that was built)
#
# Builds with clang (-fsanitize=fuzzer,address,undefined; the project library is instrumented
# with -fsanitize=fuzzer-no-link) into its own directory, build-fuzz/ at the repository root
# (override with FUZZ_BUILD_DIR), separate from the normal build. Each target starts from a copy
# of its committed seed corpus tests/fuzz/corpus/<name>/ (new inputs go to
# build-fuzz/fuzz-corpus/<name>/, never into the repository). Crash reproducers are written to
# build-fuzz/fuzz-artifacts/<name>/; copy one into tests/fuzz/corpus/<name>/ to make it a
# regression test. Prints one table row per target; exits 1 if any target found a failure.
set -eu

secs=${1:-60}
case $secs in '' | *[!0-9]*) echo "usage: $0 [SECONDS] [TARGET...]" >&2; exit 2 ;; esac
[ $# -gt 0 ] && shift

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}
cc=${FUZZ_CC:-$(command -v clang-14 || command -v clang)}

mkdir -p "$build"
cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DSANITIZE=ON -DANALYTICSD_FUZZ=ON -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link" >"$build/cmake.log" 2>&1 ||
    { cat "$build/cmake.log" >&2; exit 1; }

if [ $# -eq 0 ]; then
    set --
    for src in "$here"/fuzz_*.c; do
        t=$(basename "$src" .c)
        [ "$t" = fuzz_recompute_body ] && [ ! -e "$root/server/recompute_body.h" ] && continue
        set -- "$@" "$t"
    done
fi
cmake --build "$build" -j2 --target "$@" >"$build/build.log" 2>&1 ||
    { tail -50 "$build/build.log" >&2; exit 1; }

failed=0
rows=""
for t in "$@"; do
    name=${t#fuzz_}
    work="$build/fuzz-corpus/$name"
    art="$build/fuzz-artifacts/$name"
    log="$build/fuzz-logs/$name.log"
    mkdir -p "$work" "$art" "$(dirname "$log")"
    echo "fuzzing $t for ${secs}s ..." >&2
    rc=0
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
        "$build/tests/fuzz/$t" -max_total_time="$secs" -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$art/" "$work" "$here/corpus/$name" >"$log" 2>&1 || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    units=$(find "$work" -type f | wc -l)
    if [ "$rc" -eq 0 ]; then
        result=ok
    else
        failed=1
        crash=$(ls -t "$art" 2>/dev/null | head -1)
        result="FAILED (exit $rc) ${crash:+$art/$crash} log $log"
    fi
    rows="$rows$(printf '%-22s %14s %10s %8s  %s' "$t" "${execs:-?}" "${rate:-?}" "$units" "$result")
"
done

printf '%-22s %14s %10s %8s  %s\n' target executions exec/s corpus result
printf '%s' "$rows"
exit $failed
