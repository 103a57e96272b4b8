#!/bin/sh
# Check that what derl needs is installed; install what is missing with
# apt-get when running as root, otherwise say exactly what to run.
#   deps.sh build   what building the module needs
#   deps.sh doc     that, plus what building the manual needs
#   deps.sh all     that, plus what the tests, demo and bench need
#
# Copyright (C) 2026 The derl authors
# SPDX-License-Identifier: GPL-3.0-or-later

set -e
mode=${1:-all}
missing=""

need_cmd () {   # command package
    command -v "$1" >/dev/null 2>&1 || missing="$missing $2"
}
need_file () {  # file package
    [ -e "$1" ] || missing="$missing $2"
}

# The package of clang's libFuzzer runtime: libclang-rt-N-dev for the
# clang-N that `clang' is, or will be once installed.
fuzzer_runtime_package () {
    major=$(clang -dumpversion 2>/dev/null | cut -d. -f1)
    if [ -z "$major" ] && command -v apt-cache >/dev/null 2>&1; then
        major=$(apt-cache depends clang 2>/dev/null |
                    sed -n 's/.*Depends: clang-\([0-9][0-9]*\)$/\1/p' | head -n 1)
    fi
    echo "libclang-rt-${major:-14}-dev"
}

need_cmd cc gcc
need_cmd make make
need_cmd emacs emacs-nox
need_file /usr/include/emacs-module.h emacs-nox
need_file /usr/include/openssl/md5.h libssl-dev
need_file /usr/include/zlib.h zlib1g-dev
if [ "$mode" != build ]; then
    # The manual, doc/derl.info.
    need_cmd makeinfo texinfo
    need_cmd install-info install-info
fi
if [ "$mode" = all ]; then
    need_cmd erl erlang-nox
    need_cmd erlc erlang-nox
    need_cmd epmd erlang-nox
    need_cmd openssl openssl
    need_file /usr/lib/erlang/usr/include/ei.h erlang-dev
    need_cmd clang clang
    need_cmd elixir elixir
    # Distel's tests: find-source and fdoc read OTP's sources, edb
    # interprets code with the debugger application.
    [ -n "$(ls /usr/lib/erlang/lib/stdlib-*/src/lists.erl 2>/dev/null)" ] \
        || missing="$missing erlang-src"
    [ -n "$(ls /usr/lib/erlang/lib/debugger-*/ebin/int.beam 2>/dev/null)" ] \
        || missing="$missing erlang-debugger"
    # libFuzzer's runtime: its package is named after clang's major
    # version (libclang-rt-14-dev on Debian 12, -19- on Debian 13).
    [ -n "$(ls /usr/lib/llvm-*/lib/clang/*/lib/*/libclang_rt.fuzzer*.a 2>/dev/null)" ] \
        || missing="$missing $(fuzzer_runtime_package)"
    [ -n "$(ls -d /usr/share/emacs/site-lisp/elpa/package-lint-* 2>/dev/null)" ] \
        || missing="$missing elpa-package-lint"
    need_cmd tmux tmux
    # derl-mode's tests make projects of their own.
    need_cmd git git
    # derl-mode's tests run in erlang-mode buffers.
    need_file /usr/share/emacs/site-lisp/erlang/erlang.el erlang-mode
fi

[ -z "$missing" ] && exit 0
# Each package once.
missing=$(echo $missing | tr ' ' '\n' | sort -u | tr '\n' ' ')
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "derl: installing:$missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends $missing >/dev/null
else
    echo "derl: missing:$missing" >&2
    echo "derl: run:  sudo apt-get install $missing" >&2
    exit 1
fi
