#!/bin/sh
# run.sh --- run a libFuzzer target over the seed corpus for a while.
#
#   sh test/fuzz/run.sh BINARY SECONDS
#
# The corpus grows in build/fuzz-corpus (kept between runs, seeded from
# test/fuzz/seeds); crashes land in build/fuzz-artifacts/.  The fuzzer's
# own chatter goes to build/NAME.log, NAME being the binary's; the last
# line printed here says how it went, and the exit status is the
# fuzzer's.
#
# Copyright (C) 2026 The derl authors
# SPDX-License-Identifier: GPL-3.0-or-later

if [ $# -ne 2 ]; then
    echo "usage: sh test/fuzz/run.sh BINARY SECONDS" >&2
    exit 2
fi
bin=$1
seconds=$2
# libFuzzer takes 0 to mean "forever".
case $seconds in
    ''|*[!0-9]*|0)
        echo "fuzz: FAILED, SECONDS must be a positive whole number" \
             "(got '$seconds')"
        exit 2 ;;
esac

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$root/build
corpus=$build/fuzz-corpus
artifacts=$build/fuzz-artifacts
log=$build/$(basename "$bin").log

if [ ! -x "$bin" ]; then
    echo "fuzz: FAILED, no fuzzer binary at $bin (build it first)"
    exit 2
fi

mkdir -p "$corpus" "$artifacts"
cp "$here"/seeds/* "$corpus"/

# The first directory receives new inputs; the seeds are read as well.
"$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
       -max_len=65536 -print_final_stats=1 \
       -artifact_prefix="$artifacts/" \
       "$corpus" "$here/seeds" >"$log" 2>&1
status=$?

# libFuzzer's closing line: "Done 123456 runs in 30 second(s)".
runs=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\1/p' "$log" \
           | tail -n 1)
secs=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\2/p' "$log" \
           | tail -n 1)

if [ $status -eq 0 ] && [ -n "$runs" ]; then
    echo "fuzz: $runs runs in $secs s, clean"
    exit 0
fi

# Show what went wrong: the sanitizer or libFuzzer report.
tail -n 60 "$log"
echo "fuzz: FAILED (exit $status); log in $log, inputs in $artifacts/"
[ $status -eq 0 ] && status=1
exit $status
