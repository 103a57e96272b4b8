#!/bin/sh
# derl benchmarks, run by `make bench' after the module is built.
# Every figure is printed beside its target with "met" or "NOT met",
# measured as users run derl: Emacs's default garbage collection, the
# trace buffer on (its default) and off.  Timing is reported, never
# asserted: this script fails only when a section cannot run at all.
#
#   sh bench/run.sh                 every section
#   BENCH_QUICK=1 sh bench/run.sh   fewer and smaller runs (development)
#   BENCH_ONLY=stream sh bench/run.sh   the sections whose names begin
#                                   with that (a basic regexp)
#
# Environment: EMACS, ERL, ERLC (as in the Makefile); BENCH_QUICK;
# DERL_BENCH_RUNS (codec runs per figure, default 5),
# DERL_BENCH_CODEC_CALLS (codec calls in a row per run, 8), DERL_BENCH_PAIRS
# (alternating round-trip pairs, 7), DERL_BENCH_ROUND_TRIPS (10000),
# DERL_BENCH_STREAM (200000), DERL_BENCH_LONG_STREAM (1000000),
# DERL_BENCH_STREAM_RUNS (interleaved rounds, 3), DERL_BENCH_CAPTURED
# (messages of the stream's breakdown, 20000),
# DERL_BENCH_CALLS (5000), DERL_BENCH_STAGES (2000) and
# DERL_BENCH_BIG_BYTES (1073741824), each smaller in quick mode;
# DERL_BENCH_BYTE_CODE=1 runs derl's byte code instead of the native
# code an interactive Emacs compiles it to (see bench/bench-native.el).
#
# Copyright (C) 2026 The derl authors
# SPDX-License-Identifier: GPL-3.0-or-later

set -e
cd "$(dirname "$0")/.."

EMACS=${EMACS:-emacs}
ERL=${ERL:-erl}
ERLC=${ERLC:-erlc}
BENCH_EBIN=build/bench-ebin
CORPUS=bench/corpus
DERL_BENCH_SUMMARY=$(pwd)/build/bench-summary.txt
export DERL_BENCH_SUMMARY

if [ ! -f module/derl-module.so ]; then
    echo "bench: module/derl-module.so is missing; run \`make module' first" >&2
    exit 1
fi

# The terminal round trip drives `emacs -nw' under tmux; installed
# here if missing, as test/deps.sh installs the tests' tools.
if ! command -v tmux >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "bench: installing tmux" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
            --no-install-recommends tmux >/dev/null || true
    else
        echo "bench: tmux is missing (sudo apt-get install tmux);" \
             "the terminal round trip is skipped" >&2
    fi
fi

# ---- Erlang helpers and the corpus

mkdir -p "$BENCH_EBIN"
for src in bench/*.erl; do
    beam="$BENCH_EBIN/$(basename "$src" .erl).beam"
    if [ ! -f "$beam" ] || [ "$src" -nt "$beam" ]; then
        "$ERLC" -o "$BENCH_EBIN" "$src"
    fi
done

# The corpus is (re)written when missing or older than its generator.
if [ ! -f "$CORPUS/README.txt" ] \
       || [ bench/bench_corpus.erl -nt "$CORPUS/README.txt" ]; then
    rm -rf "$CORPUS"
    "$ERL" -noshell -pa "$BENCH_EBIN" -s bench_corpus main "$CORPUS"
fi

# OTP's C client, the reference the stream and the round trip are
# compared with besides Erlang (bench/bench_ei.c, with erlang-dev's
# erl_interface); a benchmark peer only, derl never links it.  When it
# cannot be built the sections say what they skip.
EI_DIR=$("$ERL" -noshell -eval \
    'io:format("~s", [code:lib_dir(erl_interface)]), halt().' 2>/dev/null) \
    || EI_DIR=
if [ -n "$EI_DIR" ] && [ -f "$EI_DIR/include/ei.h" ] \
       && [ -f "$EI_DIR/lib/libei.a" ]; then
    if [ ! -x build/bench-ei ] || [ bench/bench_ei.c -nt build/bench-ei ]; then
        ${CC:-cc} -O2 -Wall -I"$EI_DIR/include" -o build/bench-ei \
            bench/bench_ei.c "$EI_DIR/lib/libei.a" -lpthread \
            || echo "bench: could not build build/bench-ei;" \
                    "the comparisons with ei are skipped" >&2
    fi
else
    echo "bench: erl_interface (erlang-dev) not found;" \
         "the comparisons with ei are skipped" >&2
fi

# The drivers compiled, as a user's code would be; the Lisp as the
# Makefile loads it: the .elc files `make lisp' writes, unless a .el
# is newer.
"$EMACS" -Q --batch -L lisp -L test -L bench \
    --eval '(setq load-prefer-newer t)' \
    -f batch-byte-compile test/derl-ert.el bench/bench-lib.el \
    bench/bench-rt.el bench/bench.el bench/bench-net.el bench/bench-tty.el \
    bench/bench-big.el bench/bench-tls.el bench/bench-ei.el \
    bench/bench-stream.el

# The Lisp natively compiled when this Emacs can, before anything is
# measured: see bench/bench-native.el.
"$EMACS" -Q --batch -L lisp -L test -L bench -l bench-native \
    -f derl-bench-native-compile

: > "$DERL_BENCH_SUMMARY"
failed=0

# section NAME ARGS...: run one bench Emacs; a failure is noted, and
# the other sections still run.
section () {
    name=$1
    shift
    if [ -n "${BENCH_ONLY:-}" ] && ! expr "$name" : "$BENCH_ONLY" >/dev/null
    then
        return 0
    fi
    if ! "$EMACS" -Q --batch -L lisp -L test -L bench \
         --eval '(setq load-prefer-newer t)' -l bench-native "$@"; then
        printf '%s\t%s\t-\t-\tFAILED to run\n' "$name" "$name" \
               >> "$DERL_BENCH_SUMMARY"
        failed=1
    fi
}

# ---- Codec: decode and encode against Emacs's native JSON
section codec -l bench -f derl-bench-codec

# ---- The stream against Erlang and ei, both trace settings in turn
section "stream" -l bench-stream -f derl-bench-stream

# ---- Connections, each trace setting in a fresh Emacs
DERL_BENCH_TRACE=off section "connections (trace off)" \
    -l bench-net -f derl-bench-net
DERL_BENCH_TRACE=on section "connections (trace on)" \
    -l bench-net -f derl-bench-net

# ---- One big binary each way, each in a fresh Emacs
echo
echo "BIG BINARIES (a fresh Emacs for each)"
echo "------------------------------------------------------------------------------"
for trace in on off; do
    for direction in in out; do
        DERL_BENCH_TRACE=$trace DERL_BENCH_BIG_DIRECTION=$direction \
            section "big binary $direction (trace $trace)" \
            -l bench-big -f derl-bench-big
    done
done

# ---- TLS distribution: round trips against two Erlang TLS nodes
for trace in off on; do
    DERL_BENCH_TRACE=$trace section "TLS round trip (trace $trace)" \
        -l bench-tls -f derl-bench-tls
done

# ---- Summary
echo
echo "SUMMARY$( [ -n "$BENCH_QUICK" ] && [ "$BENCH_QUICK" != 0 ] \
    && echo ' (quick mode: smaller runs)')"
# Columns as wide as their widest entry.
awk -F '\t' '
    { for (i = 1; i <= 5; i++) {
          cell[NR, i] = $i
          if (length($i) > width[i]) width[i] = length($i)
      } }
    END { for (r = 1; r <= NR; r++)
              printf "%-*s  %-*s  %-*s  %-*s  %s\n",
                     width[1], cell[r, 1], width[2], cell[r, 2],
                     width[3], cell[r, 3], width[4], cell[r, 4], cell[r, 5] }' \
    "$DERL_BENCH_SUMMARY"
exit $failed
