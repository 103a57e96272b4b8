#!/bin/sh
# Run every test stage, show each one's output, and close with the totals:
#   C unit tests (ASan+UBSan), short fuzz runs, the ERT suites, and the
#   connection and codec suites again against the module built with ASan.
#
# The closing line is "N passed, N failed, N skipped", followed by what
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

# stage NAME COMMAND...: run it, keep its log, add its totals.
stage () {
    name=$1; shift
    echo "==== $name"
    log="$LOGS/$name.log"
    "$@" >"$log" 2>&1
    status=$?
    cat "$log"
    set -- $(totals "$log")
    if [ $# -ge 2 ]; then
        passed=$((passed + $1))
        failed=$((failed + $2))
        skipped=$((skipped + ${3:-0}))
        if [ $(($1 + $2 + ${3:-0})) -eq 0 ]; then
            problem "$name ran no test"
        elif [ $status -ne 0 ] && [ "$2" -eq 0 ]; then
            problem "$name exited with status $status"
        fi
    elif grep -aqE '^Running [0-9]+ tests' "$log"; then
        # An ERT run that died: count what it finished.
        set -- $(ert_progress "$log")
        passed=$((passed + $1))
        failed=$((failed + $2))
        skipped=$((skipped + $3))
        problem "$name CRASHED (status $status), $(($4 - $1 - $2 - $3)) of its $4 tests not run"
    elif [ $status -ne 0 ]; then
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
stage c-etf build/test_etf
stage c-proto build/test_proto
stage c-session build/test_session
stage c-layers sh test/c/layers.sh "$CC"
stage c-tls build/test_tls
stage fuzz-etf sh test/fuzz/run.sh --smoke build/fuzz_etf "$smoke"
stage fuzz-proto sh test/fuzz/run.sh --smoke --seeds none build/fuzz_proto \
      "${FUZZ_PROTO_SECONDS:-15}" -max_len=4096
stage ert "$EMACS" -Q --batch -L lisp -L test \
      --eval '(setq load-prefer-newer t)' \
      -l test/derl-ert.el -f derl-ert-run-batch

# The connection and codec suites once more, against the module built
# with ASan and UBSan (lint and the 20-second busy test are covered
# above); DERL_ASAN_TESTS chooses others.
runtimes=$(sanitizer_runtimes)
echo "(ert-asan preloads $runtimes)"
asan_tests='derl-\(bounds\|c\|e\|f\|hostile\|link\|listen\|lots\|mon\|node\|rec\|round\|send\|tls\|trace\|trust\|two\|wait\)\|erlext-'
stage ert-asan env \
      ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:verify_asan_link_order=0 \
      UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      LD_PRELOAD="$runtimes" \
      DERL_TESTS="${DERL_ASAN_TESTS:-$asan_tests}" \
      "$EMACS" -Q --batch -L lisp -L test \
      --eval '(setq load-prefer-newer t)' \
      --eval "(setq derl-module-file \"$PWD/$ASAN_MODULE\")" \
      -l test/derl-ert.el -f derl-ert-run-batch

echo "===="
if [ -n "$problems" ]; then
    echo "$passed passed, $failed failed, $skipped skipped; $problems"
else
    echo "$passed passed, $failed failed, $skipped skipped"
fi
[ "$failed" -eq 0 ] && [ -z "$problems" ]
