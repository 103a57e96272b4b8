#!/bin/sh
# Run every test stage, show each one's output, and close with the totals:
#   C unit tests (ASan+UBSan), short fuzz runs, the ERT suites (in two
#   shards run at once), and the connection and codec suites again
#   against the module built with ASan.
#
# The closing line is "N passed, N failed, N skipped", each test counted
# once (the ASan stage's re-runs add their failures only), followed by what
# went wrong with whole stages, if anything: a stage that crashed (with
# the number of its tests that never ran, where it can be known), or one
# that ran no test at all.  The exit status is non-zero when any test
# failed or any stage went wrong.  CC names the compiler that built the
# ASan module (ASAN_MODULE, by default where `make' puts it for CC),
# whose sanitizer runtime the last stage preloads.
#
# Copyright (C) 2026 The derl authors
# SPDX-License-Identifier: GPL-3.0-or-later

cd "$(dirname "$0")/.."
EMACS=${EMACS:-emacs}
CC=${CC:-cc}
ASAN_MODULE=${ASAN_MODULE:-build/asan-$(basename "$CC")/derl-module.so}
LOGS=build/logs
mkdir -p "$LOGS"
# The package tests' lock, if a killed run left it.
rm -rf build/package.lock
passed=0
failed=0
skipped=0
problems=""

# problem TEXT: remember TEXT for the closing line.
problem () {
    if [ -z "$problems" ]; then problems=$1; else problems="$problems; $1"; fi
}

# totals LOG: print the numbers of the last "N passed, N failed[, N
# skipped]" line of LOG as "P F S", or nothing when there is none.
totals () {
    grep -aE '(^|: )[0-9]+ passed, [0-9]+ failed' "$1" | tail -n 1 |
        sed -E 's/(^|.*: )([0-9]+) passed, ([0-9]+) failed(, ([0-9]+) skipped)?.*/\2 \3 \5/'
}

# ert_progress LOG: for an ERT run that stopped short, print "P F S N":
# the tests that passed, failed and were skipped before it stopped, and
# how many it announced ("Running N tests").
ert_progress () {
    p=$(grep -acE '^ *passed +[0-9]+/[0-9]+ ' "$1")
    f=$(grep -acE '^ *FAILED +[0-9]+/[0-9]+ ' "$1")
    s=$(grep -acE '^ *skipped +[0-9]+/[0-9]+ ' "$1")
    n=$(sed -n 's/^Running \([0-9]*\) tests.*/\1/p' "$1" | tail -n 1)
    echo "$p $f $s ${n:-0}"
}

# run_stage NAME COMMAND...: run it, keep its log, its exit status and
# how many seconds it took.
run_stage () {
    name=$1; shift
    begin=$(date +%s)
    "$@" >"$LOGS/$name.log" 2>&1
    echo "$? $(($(date +%s) - begin))" >"$LOGS/$name.status"
}

# report NAME [rerun]: show the stage's log and add its totals; a rerun
# (the ASan stage, which runs tests the others ran) adds its failures
# only, so that the closing line counts each test once.
report () {
    name=$1
    rerun=${2:-}
    log="$LOGS/$name.log"
    set -- $(cat "$LOGS/$name.status" 2>/dev/null)
    status=${1:-1}
    echo "==== $name (${2:-?} s)"
    cat "$log"
    counts=$(totals "$log")
    if [ -n "$counts" ]; then
        set -- $counts
        if [ "$rerun" = rerun ]; then
            failed=$((failed + $2))
        else
            passed=$((passed + $1))
            failed=$((failed + $2))
            skipped=$((skipped + ${3:-0}))
        fi
        if [ $(($1 + $2 + ${3:-0})) -eq 0 ]; then
            problem "$name ran no test"
        elif [ "$status" -ne 0 ] && [ "$2" -eq 0 ]; then
            problem "$name exited with status $status"
        fi
    elif grep -aqE '^Running [0-9]+ tests' "$log"; then
        # An ERT run that died: count what it finished.
        set -- $(ert_progress "$log")
        if [ "$rerun" != rerun ]; then
            passed=$((passed + $1))
            skipped=$((skipped + $3))
        fi
        failed=$((failed + $2))
        problem "$name CRASHED (status $status), $(($4 - $1 - $2 - $3)) of its $4 tests not run"
    elif [ "$status" -ne 0 ]; then
        problem "$name CRASHED (status $status) before reporting totals"
    else
        problem "$name reported no totals"
    fi
}

# The sanitizer runtimes of the compiler CC, to preload into Emacs for
# the module built with it: clang's ASan runtime carries UBSan as well.
sanitizer_runtimes () {
    clang_rt=$("$CC" -print-file-name="libclang_rt.asan-$(uname -m).so")
    if [ -f "$clang_rt" ]; then
        echo "$clang_rt"
    else
        echo "$("$CC" -print-file-name=libasan.so)" \
             "$("$CC" -print-file-name=libubsan.so)"
    fi
}

smoke=${FUZZ_SMOKE_SECONDS:-30}
runtimes=$(sanitizer_runtimes)
# The connection and codec suites once more, against the module built
# with ASan and UBSan (lint and the 20-second busy test are covered
# by the others); DERL_ASAN_TESTS chooses others.
asan_tests='derl-\(bounds\|c\|e\|f\|hostile\|link\|listen\|lots\|mon\|node\|rec\|round\|send\|tls\|trace\|trust\|two\|wait\)\|erlext-'

ert () {    # ert SHARD [VAR=VALUE...]: an ERT run of shard SHARD of 2
    shard=$1; shift
    env DERL_TEST_SHARD="$shard" "$@" "$EMACS" -Q --batch -L lisp -L test \
        --eval '(setq load-prefer-newer t)' \
        -l test/derl-ert.el -f derl-ert-run-batch
}

ert_asan () {
    echo "(ert-asan preloads $runtimes)"
    env ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:verify_asan_link_order=0 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        LD_PRELOAD="$runtimes" \
        DERL_TESTS="${DERL_ASAN_TESTS:-$asan_tests}" \
        "$EMACS" -Q --batch -L lisp -L test \
        --eval '(setq load-prefer-newer t)' \
        --eval "(setq derl-module-file \"$PWD/$ASAN_MODULE\")" \
        -l test/derl-ert.el -f derl-ert-run-batch
}

# Three lanes at once, each its stages one after another: the ERT
# suites in two shards of about equal time, and the C tests, the fuzz
# runs and the ASan stage.  Most of a test's time is spent waiting for
# nodes, so two cores run the three in about the time of the longest.
begin=$(date +%s)
run_stage ert-1 ert 1/2 &
run_stage ert-2 ert 2/2 &
(
    run_stage c-etf build/test_etf
    run_stage c-proto build/test_proto
    run_stage c-session build/test_session
    run_stage c-layers sh test/c/layers.sh "$CC"
    run_stage c-tls build/test_tls
    run_stage fuzz-etf sh test/fuzz/run.sh --smoke build/fuzz_etf "$smoke"
    run_stage fuzz-proto sh test/fuzz/run.sh --smoke --seeds none \
              build/fuzz_proto "${FUZZ_PROTO_SECONDS:-15}" -max_len=4096
    run_stage ert-asan ert_asan
) &
wait

for name in c-etf c-proto c-session c-layers c-tls fuzz-etf fuzz-proto ert-1 ert-2; do
    report "$name"
done
report ert-asan rerun
echo "(all stages: $(($(date +%s) - begin)) s; the ASan stage re-runs tests counted above: its failures count, its passes do not)"

echo "===="
if [ -n "$problems" ]; then
    echo "$passed passed, $failed failed, $skipped skipped; $problems"
else
    echo "$passed passed, $failed failed, $skipped skipped"
fi
[ "$failed" -eq 0 ] && [ -z "$problems" ]
