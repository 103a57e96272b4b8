#!/bin/sh
# Run every test stage, show each one's output, and close with the totals:
# one line "N passed, N failed".  Exit non-zero when anything failed.
#   C unit tests (ASan+UBSan), a short fuzz run, the ERT suites.
#
# Copyright (C) 2026 The derl authors
# SPDX-License-Identifier: GPL-3.0-or-later

cd "$(dirname "$0")/.."
EMACS=${EMACS:-emacs}
LOGS=build/logs
mkdir -p "$LOGS"
passed=0
failed=0

# count LOG: add the last "N passed, N failed" line of LOG to the totals.
count () {
    line=$(grep -E '(^|: )[0-9]+ passed, [0-9]+ failed' "$1" | tail -n 1)
    p=$(echo "$line" | sed -E 's/.*(^|: )([0-9]+) passed.*/\2/')
    f=$(echo "$line" | sed -E 's/.*passed, ([0-9]+) failed.*/\1/')
    passed=$((passed + ${p:-0}))
    failed=$((failed + ${f:-0}))
}

# stage NAME COMMAND...: run it, keep its log; a stage that fails without
# saying how many tests failed counts as one failure.
stage () {
    name=$1; shift
    echo "==== $name"
    log="$LOGS/$name.log"
    "$@" >"$log" 2>&1
    status=$?
    cat "$log"
    before=$failed
    count "$log"
    if [ $status -ne 0 ] && [ $failed -eq $before ]; then
        failed=$((failed + 1))
    fi
}

stage c-etf build/test_etf
stage c-proto build/test_proto
stage fuzz-etf sh -c "sh test/fuzz/run.sh build/fuzz_etf ${FUZZ_SMOKE_SECONDS:-30} && echo 'fuzz smoke: 1 passed, 0 failed'"
stage fuzz-proto sh -c "mkdir -p build/fuzz-proto-corpus && build/fuzz_proto -max_total_time=${FUZZ_PROTO_SECONDS:-15} -max_len=4096 -artifact_prefix=build/ build/fuzz-proto-corpus 2>build/fuzz-proto.log && tail -n 1 build/fuzz-proto.log && echo 'fuzz smoke: 1 passed, 0 failed'"
stage ert "$EMACS" -Q --batch -L lisp -L test \
      --eval '(setq load-prefer-newer t)' \
      -l test/derl-ert.el -f derl-ert-run-batch

# The connection and codec suites once more, against the module built
# with ASan and UBSan (lint and the 20-second busy test are covered above).
stage ert-asan env \
      ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:verify_asan_link_order=0 \
      UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      LD_PRELOAD="$(${CC:-cc} -print-file-name=libasan.so) $(${CC:-cc} -print-file-name=libubsan.so)" \
      DERL_TESTS='derl-\(c\|e\|f\|link\|lots\|mon\|node\|rec\|round\|send\|trace\|two\)\|erlext-' \
      "$EMACS" -Q --batch -L lisp -L test \
      --eval '(setq load-prefer-newer t)' \
      --eval "(setq derl-module-file \"$PWD/build/asan/derl-module.so\")" \
      -l test/derl-ert.el -f derl-ert-run-batch

echo "===="
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
