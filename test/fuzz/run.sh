#!/bin/sh
# run.sh --- run a libFuzzer target over a seed corpus for a while.
#
#   sh test/fuzz/run.sh [--smoke] [--seeds DIR|none] BINARY SECONDS [FLAG...]
#
# Seeds come from DIR (default test/fuzz/seeds; `none' for no seeds).
# A long run grows its corpus in build/fuzz-corpus-NAME, NAME being the
# binary's, and keeps it between runs.  A smoke run (--smoke, as `make
# test' does) starts from the committed seeds alone, in a corpus made
# afresh, with a fixed random seed, so that two smoke runs test the same
# thing; it closes with a line of totals for test/run-tests.sh.  FLAGs go
# to libFuzzer after ours (a later flag wins).  Crashes land in
# build/fuzz-artifacts/; the fuzzer's own chatter goes to
# build/NAME.log, and its tail is printed when the run fails.  The exit
# status is the fuzzer's.
#
# Copyright (C) 2026 The derl authors
# SPDX-License-Identifier: GPL-3.0-or-later

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$root/build
smoke=
seeds=$here/seeds
while :; do
    case $1 in
        --smoke) smoke=1; shift ;;
        --seeds) seeds=$2; shift 2 ;;
        *) break ;;
    esac
done
if [ $# -lt 2 ]; then
    echo "usage: sh test/fuzz/run.sh [--smoke] [--seeds DIR|none]" \
         "BINARY SECONDS [FLAG...]" >&2
    exit 2
fi
bin=$1
seconds=$2
shift 2
name=$(basename "$bin")

# fail TEXT STATUS: say so (with a totals line for a smoke run), exit.
fail () {
    echo "fuzz $name: FAILED, $1"
    [ -n "$smoke" ] && echo "fuzz smoke $name: 0 passed, 1 failed"
    exit "$2"
}

# libFuzzer takes 0 to mean "forever".
case $seconds in
    ''|*[!0-9]*|0)
        fail "SECONDS must be a positive whole number (got '$seconds')" 2 ;;
esac

artifacts=$build/fuzz-artifacts
log=$build/$name.log
if [ -n "$smoke" ]; then
    corpus=$build/fuzz-smoke-corpus-$name
    rm -rf "$corpus"
    set -- -seed=1 "$@"
else
    corpus=$build/fuzz-corpus-$name
fi
[ "$seeds" = none ] && seeds=

[ -x "$bin" ] || fail "no fuzzer binary at $bin (build it first)" 2

mkdir -p "$corpus" "$artifacts"

# The first directory receives new inputs; the seeds are read as well.
"$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
       -max_len=65536 -print_final_stats=1 \
       -artifact_prefix="$artifacts/" "$@" \
       "$corpus" ${seeds:+"$seeds"} >"$log" 2>&1
status=$?

# libFuzzer's closing line: "Done 123456 runs in 30 second(s)".
runs=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\1/p' "$log" \
           | tail -n 1)
secs=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\2/p' "$log" \
           | tail -n 1)

if [ $status -eq 0 ] && [ -n "$runs" ]; then
    echo "fuzz $name: $runs runs in $secs s, clean"
    [ -n "$smoke" ] && echo "fuzz smoke $name: 1 passed, 0 failed"
    exit 0
fi

# Show what went wrong: the sanitizer or libFuzzer report.
tail -n 60 "$log"
[ $status -eq 0 ] && status=1
fail "exit $status; log in $log, inputs in $artifacts/" "$status"
