#!/bin/sh
# derl benchmarks, run by `make bench' after the module is built.
# Timing is reported, never asserted: this script fails only when a
# bench cannot run at all.
#
#   sh bench/run.sh          every section
#
# Environment: EMACS, ERL, ERLC (as in the Makefile); DERL_BENCH_RUNS,
# the timed runs per measurement (default 15; the median is reported).
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

if [ ! -f module/derl-module.so ]; then
    echo "bench: module/derl-module.so is missing; run \`make module' first" >&2
    exit 1
fi

# ---- Erlang helpers

mkdir -p "$BENCH_EBIN"
for src in bench/*.erl; do
    beam="$BENCH_EBIN/$(basename "$src" .erl).beam"
    if [ ! -f "$beam" ] || [ "$src" -nt "$beam" ]; then
        "$ERLC" -o "$BENCH_EBIN" "$src"
    fi
done

# ---- Codec: decode and encode against Emacs's native JSON

# The corpus is (re)written when missing or older than its generator.
if [ ! -f "$CORPUS/README.txt" ] \
       || [ bench/bench_corpus.erl -nt "$CORPUS/README.txt" ]; then
    rm -rf "$CORPUS"
    "$ERL" -noshell -pa "$BENCH_EBIN" -s bench_corpus main "$CORPUS"
fi

# As the Makefile loads the Lisp: the .elc files `make lisp' writes,
# unless a .el is newer.
"$EMACS" -Q --batch -L lisp --eval '(setq load-prefer-newer t)' \
    -l bench/bench.el -f derl-bench-codec

# ---- Connections: round trips against Erlang's own, streams, set-up

# Compiled, as a user's code would be.
"$EMACS" -Q --batch -L lisp -L test -L bench \
    --eval '(setq load-prefer-newer t)' \
    -f batch-byte-compile test/derl-ert.el bench/bench-net.el

"$EMACS" -Q --batch -L lisp -L test -L bench \
    --eval '(setq load-prefer-newer t)' \
    -l bench/bench-net.el -f derl-bench-net

# ---- TLS distribution: round trips against Erlang's, both over TLS

"$EMACS" -Q --batch -L lisp -L test -L bench \
    --eval '(setq load-prefer-newer t)' \
    -l bench/bench-tls.el -f derl-bench-tls
