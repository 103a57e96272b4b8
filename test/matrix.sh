#!/bin/bash
# make test-matrix: derl on the Debian stacks README.org promises.
#
# Stacks (DERL_MATRIX_STACKS chooses some, in this order by default):
#
#   trixie-make-test  the whole `make test' inside Debian 13 (Emacs 30,
#                     Erlang/OTP 27, OpenSSL 3.5), on a copy of this tree
#   bullseye-nodes    this machine's Emacs and module, the suites that
#   host-nodes        talk to a node (NODE_TESTS below), against nodes
#   trixie-nodes      of Debian 11 (OTP 23), this machine (OTP 25 on
#   sid-nodes         Debian 12), Debian 13 (OTP 27) and unstable (the
#                     newest OTP Debian ships)
#
# The Debian systems are chroots made with debootstrap in DERL_MATRIX_CACHE
# (default /var/cache/derl-matrix), one a suite, and kept there: a
# chroot is reused when its stamp (SUITE.stamp) records the same suite
# and packages, extended with apt-get when the package list grew, and
# built from nothing otherwise.  A node of a chroot's Erlang runs in the
# chroot, with this tree bind-mounted at the same path, and registers
# with the epmd the tests start on this machine; wrappers named erl,
# erlc and elixir first in PATH run them there.  Needs root (chroot,
# mount, debootstrap) and Debian's archive (DERL_MATRIX_MIRROR).
#
# Each stack ends with "STACK: N passed, N failed, N skipped", and the
# run with "N passed, N failed, N skipped" over all of them.  Inside
# Debian 13 the fuzz smoke runs are shorter (DERL_MATRIX_FUZZ_SECONDS,
# default 10 and 5 s) than `make test' runs them here.  A stack
# that cannot be built or that stops short counts as a failure.  The
# exit status is non-zero when anything failed.  Every mount is
# undone, and every process left in a chroot killed, on any exit.
#
# Copyright (C) 2026 The derl authors
# SPDX-License-Identifier: GPL-3.0-or-later

cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd -P)
EMACS=${EMACS:-emacs}
CACHE=${DERL_MATRIX_CACHE:-/var/cache/derl-matrix}
MIRROR=${DERL_MATRIX_MIRROR:-http://deb.debian.org/debian}
STACKS=${DERL_MATRIX_STACKS:-trixie-make-test bullseye-nodes host-nodes trixie-nodes sid-nodes}
WORK=$ROOT/build/matrix
CHROOT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# What each chroot has.  A node stack needs OTP (with its sources and
# debugger, for the Distel suite) and Elixir.  Debian 13 builds and runs
# everything: what test/deps.sh installs (it is run there, and again
# whenever it changes), on top of build-essential (gcc alone lacks libc6-dev).
NODE_PACKAGES=(erlang-nox erlang-src erlang-debugger elixir)
FULL_PACKAGES=(build-essential make)

# The suites that talk to a node (DERL_MATRIX_TESTS, a regexp of test
# names, chooses others): connections, links, monitors, spawn,
# big messages, errors and traces (derl-tests.el, and the big messages
# of derl-bounds-tests.el), waits, RPC, listening and incoming
# connections, TLS distribution, Distel, the node's shell, evaluation
# from source buffers, and the codec against OTP's own term_to_binary
# (the oracle, and beams).  Not the codec-only, runtime, terminal,
# packaging and lint suites, nor what tests derl alone rather than the
# node (NODE_TESTS_SKIP: a busy Emacs, waits in the module, floods and
# stalls of incoming connections, the commands, the terminal), which
# do not depend on the node's OTP and run in `make test'.
NODE_TESTS=${DERL_MATRIX_TESTS:-'^\(derl-\(c\|e\|f\|link\|lots\|mon\|nodedown\|rec\|round\|send\|spawn\|survives\|trace\|two\|wait\|rpc\|listen\|tls\|distel\|shell\|mode\|bounds-big\)\|erlext-\(oracle\|beam\)\)'}

NODE_TESTS_SKIP='^derl-\(survives\|wait\|listen-flood\|listen-stall\|commands\)\|-terminal$'
FUZZ_SECONDS=${DERL_MATRIX_FUZZ_SECONDS:-10}

mkdir -p "$WORK/logs"
passed=0
failed=0
skipped=0
summary=""
MOUNTED=""                      # mount points, newest first
CHROOTS=""                      # chroots a session used
CHILD=""                        # the test run under way, a process group
SCRATCH=""                      # the node stacks' scratch directory

say () { printf '%s\n' "$*"; }

# note LINE: keep LINE for the summary at the end.
note () {
    summary="$summary
$1"
}

# count STACK P F S [WHY]: add to the totals and note the stack's line.
count () {
    passed=$((passed + $2))
    failed=$((failed + $3))
    skipped=$((skipped + $4))
    line="$1: $2 passed, $3 failed, $4 skipped"
    [ -n "${5:-}" ] && line="$line; $5"
    say "$line"
    note "$line"
}

now () { date +%s; }

# ---- mounts and processes, always undone

# mounted_under DIR: is anything mounted at DIR or below it?
mounted_under () {
    awk -v d="$1" '$2 == d || index($2, d "/") == 1 { found = 1 }
                   END { exit !found }' /proc/self/mounts
}

# do_mount ARGS... TARGET: mount, and remember TARGET for unmount_all.
do_mount () {
    local target
    for target; do :; done
    mkdir -p "$target" && mount "$@" && MOUNTED="$target $MOUNTED"
}

# kill_in DIR: kill every process whose root directory is DIR.
kill_in () {
    local p r
    for p in /proc/[0-9]*; do
        r=$(readlink "$p/root" 2>/dev/null) || continue
        [ "$r" = "$1" ] && kill -9 "${p#/proc/}" 2>/dev/null
    done
}

# unmount_all: kill what runs in the chroots, then undo every mount.
unmount_all () {
    local dir m
    for dir in $CHROOTS; do kill_in "$dir"; done
    for m in $MOUNTED; do
        umount "$m" 2>/dev/null || { sleep 1; umount "$m"; } ||
            umount -l "$m" || say "matrix: cannot unmount $m"
    done
    MOUNTED=""
}

# limited SECONDS COMMAND...: run COMMAND for at most SECONDS in a
# process group of its own, which a signal to this script ends too.
limited () {
    local status
    timeout -k 30 "$@" &
    CHILD=$!
    wait "$CHILD"
    status=$?
    CHILD=""
    return $status
}

cleanup () {
    [ -n "$CHILD" ] && kill -TERM -- "-$CHILD" 2>/dev/null
    unmount_all
    drop_scratch
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# remove DIR: delete DIR, which must have nothing mounted in it.
remove () {
    [ -e "$1" ] || return 0
    if mounted_under "$1"; then
        say "matrix: $1 has mounts; not removing it"
        return 1
    fi
    rm -rf --one-file-system "$1"
}

# in_chroot DIR COMMAND...: run COMMAND in DIR with a clean environment.
in_chroot () {
    local dir=$1; shift
    chroot "$dir" /usr/bin/env -i HOME=/root PATH=$CHROOT_PATH \
        LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
}

# ---- the chroots

# packages_for SUITE: set the array PACKAGES to what the chroot SUITE has.
packages_for () {
    case $1 in
        trixie) PACKAGES=("${FULL_PACKAGES[@]}") ;;
        *) PACKAGES=("${NODE_PACKAGES[@]}") ;;
    esac
}

# same_names DIR: names resolve in the chroot DIR as they do here.
same_names () {
    cp /etc/hosts "$1/etc/hosts" && cp /etc/resolv.conf "$1/etc/resolv.conf"
}

# install DIR PACKAGES...: install PACKAGES in the chroot DIR.
install () {
    local dir=$1 status; shift
    same_names "$dir"
    do_mount -t proc proc "$dir/proc" || return 1
    CHROOTS="$CHROOTS $dir"
    # Unstable's Release file is valid for a week; its signature is
    # checked all the same.
    in_chroot "$dir" apt-get -o Acquire::Check-Valid-Until=false update -q &&
        in_chroot "$dir" apt-get install -y -q --no-install-recommends "$@" &&
        in_chroot "$dir" apt-get clean
    status=$?
    unmount_all
    return $status
}

# build SUITE LOG: make the chroot CACHE/SUITE from nothing.
build () {
    local suite=$1 log=$2 dir=$CACHE/$1 new=$CACHE/$1.new
    remove "$new" || return 1
    command -v debootstrap >/dev/null || {
        say "matrix: debootstrap is not installed (apt-get install debootstrap)"
        return 1
    }
    say "matrix: debootstrap $suite (log: $log)"
    debootstrap --variant=minbase "$suite" "$new" "$MIRROR" >>"$log" 2>&1 ||
        return 1
    # No service starts in the chroot.
    printf '#!/bin/sh\nexit 101\n' >"$new/usr/sbin/policy-rc.d"
    chmod 755 "$new/usr/sbin/policy-rc.d"
    packages_for "$suite"
    install "$new" "${PACKAGES[@]}" >>"$log" 2>&1 || return 1
    remove "$dir" && mv "$new" "$dir"
}

# ensure SUITE: make sure CACHE/SUITE is there with its packages.
ensure () {
    local suite=$1 dir=$CACHE/$1 stamp=$CACHE/$1.stamp start want
    local log=$WORK/logs/chroot-$1.log
    packages_for "$suite"
    want="suite $suite
packages ${PACKAGES[*]}"
    [ "$suite" = trixie ] &&
        want="$want
deps.sh $(sha256sum <test/deps.sh | cut -d' ' -f1)"
    mkdir -p "$CACHE"
    : >"$log"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -d "$dir" ]; then
        return 0
    fi
    start=$(now)
    if [ -f "$stamp" ] && [ -d "$dir" ] &&
           [ "$(head -n 1 "$stamp")" = "suite $suite" ]; then
        say "matrix: installing the packages $suite lacks (log: $log)"
        install "$dir" "${PACKAGES[@]}" >>"$log" 2>&1
    else
        rm -f "$stamp"
        build "$suite" "$log"
    fi || { tail -n 20 "$log"; return 1; }
    if [ "$suite" = trixie ]; then
        say "matrix: test/deps.sh installs what make test needs in $suite"
        same_names "$dir"
        if ! { in_chroot "$dir" apt-get -o Acquire::Check-Valid-Until=false \
                         update -q &&
                   in_chroot "$dir" sh -s all <test/deps.sh &&
                   in_chroot "$dir" apt-get clean; } >>"$log" 2>&1; then
            tail -n 20 "$log"
            return 1
        fi
    fi
    printf '%s\n' "$want" >"$stamp"
    say "matrix: chroot $suite ready in $(($(now) - start)) s"
}

# ---- what runs where

# emacs_version: the version of this machine's Emacs.
emacs_version () {
    "$EMACS" --version | sed -n '1s/^GNU Emacs //p'
}

# versions_of SUITE: the versions a chroot (or "host", this machine)
# runs: Debian, Erlang/OTP, Elixir, OpenSSL and, with a second
# argument, Emacs.
versions_of () {
    local dir otp elixir ssl emacs
    if [ "$1" = host ]; then
        otp=$(cat /usr/lib/erlang/releases/*/OTP_VERSION 2>/dev/null)
        elixir=$(elixir --version 2>/dev/null |
                     sed -n 's/^Elixir \([^ ]*\).*/\1/p')
        ssl=$(openssl version | cut -d' ' -f2)
        emacs=$(emacs_version)
        dir=""
    else
        dir=$CACHE/$1
        otp=$(cat "$dir"/usr/lib/erlang/releases/*/OTP_VERSION 2>/dev/null)
        elixir=$(upstream "$(version_in "$dir" elixir)")
        ssl=$(upstream "$(version_in "$dir" libssl3t64 libssl3 libssl1.1)")
        emacs=$(upstream "$(version_in "$dir" emacs-nox)")
    fi
    printf 'Debian %s, Erlang/OTP %s, Elixir %s, OpenSSL %s' \
           "$(cat "$dir/etc/debian_version")" "$otp" "$elixir" "$ssl"
    [ -n "${2:-}" ] && printf ', Emacs %s' "$emacs"
    echo
}

# upstream VERSION: the upstream part of a Debian package's version
# (1:30.1+1-6 is 30.1, 1.18.3.dfsg-1 is 1.18.3).
upstream () {
    local v=${1#*:}
    v=${v%%[-+~]*}
    echo "${v%.dfsg}"
}

# version_in DIR PACKAGE...: the Debian version of the first PACKAGE
# installed in the chroot DIR.
version_in () {
    local dir=$1 p; shift
    for p; do
        # shellcheck disable=SC2016 # dpkg-query's own ${Version}
        if in_chroot "$dir" dpkg-query -W -f '${Version}' "$p" 2>/dev/null; then
            return
        fi
    done
}

# totals LOG: the numbers of LOG's last "N passed, N failed, N skipped".
totals () {
    grep -aE '(^|: )[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped' "$1" |
        tail -n 1 |
        sed -E 's/(^|.*: )([0-9]+) passed, ([0-9]+) failed, ([0-9]+) skipped.*/\2 \3 \4/'
}

# finish STACK STATUS LOG SECONDS: count what LOG reports.
finish () {
    local stack=$1 status=$2 log=$3 time="${4}s" p f s
    read -r p f s < <(totals "$log")
    if [ -z "$s" ]; then
        count "$stack" 0 1 0 "stopped with status $status before its totals ($time)"
    elif [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then
        count "$stack" "$p" 1 "$s" "exited with status $status ($time)"
    else
        count "$stack" "$p" "$f" "$s" "$time"
    fi
}

# make_test_in SUITE: the whole `make test' on a copy of this tree.
make_test_in () {
    local stack=$1-make-test dir log copy d distel start status
    dir=$(cd "$CACHE/$1" && pwd -P)
    log=$WORK/logs/$stack.log
    # Not under HOME (/root): the tests give subprocesses other homes.
    copy=$dir/srv/derl
    remove "$copy" || return 1
    mkdir -p "$copy"
    # The tree as it is, without what was built or is ignored.
    if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git ls-files -z -c -o --exclude-standard |
            tar --null -T - --ignore-failed-read -cf -
    else
        tar --exclude=./build --exclude='*.elc' --exclude='*.so' -cf - .
    fi | tar -C "$copy" -xf -
    distel=""
    for d in "${DERL_DISTEL_DIR:-}" "$ROOT/../shared/distel" \
             "$ROOT/../../shared/distel"; do
        if [ -n "$d" ] && [ -f "$d/elisp/distel.el" ]; then
            remove "$dir/srv/distel" && cp -R "$d" "$dir/srv/distel" &&
                distel=DERL_DISTEL_DIR=/srv/distel
            break
        fi
    done
    CHROOTS="$CHROOTS $dir"
    same_names "$dir"
    do_mount -t proc proc "$dir/proc" &&
        do_mount --bind /dev "$dir/dev" &&
        do_mount --bind /dev/pts "$dir/dev/pts" || return 1
    say "==== $stack: $(versions_of "$1" emacs)"
    start=$(now)
    limited "${DERL_MATRIX_MAKE_TEST_TIMEOUT:-1800}" \
            chroot "$dir" /usr/bin/env -i HOME=/root PATH=$CHROOT_PATH \
            LANG=C.UTF-8 TERM=xterm-256color $distel \
            FUZZ_PROTO_SECONDS=$(((FUZZ_SECONDS + 1) / 2)) \
            sh -c "cd /srv/derl && make test FUZZ_SMOKE_SECONDS=$FUZZ_SECONDS" \
            >"$log" 2>&1
    status=$?
    unmount_all
    cat "$log"
    finish "$stack" $status "$log" $(($(now) - start))
}

# wrappers SUITE BIN: erl, erlc and elixir in BIN run SUITE's, in its
# chroot, in the current directory (this tree is at the same path).
wrappers () {
    local dir=$1 bin=$2 cmd
    mkdir -p "$bin"
    for cmd in erl erlc elixir; do
        cat >"$bin/$cmd" <<EOF
#!/bin/sh
# $cmd of the chroot $dir (made by test/matrix.sh)
exec env PATH=$CHROOT_PATH chroot $dir /bin/sh -c \\
    'cd "\$1" 2>/dev/null || cd /; shift; exec "\$0" "\$@"' $cmd "\$(pwd)" "\$@"
EOF
        chmod 755 "$bin/$cmd"
    done
}

# erlang_mode: "DIR:", DIR being erlang-mode's directory in this
# machine's Erlang/OTP, or nothing.
erlang_mode () {
    local tools
    tools=$(erl -noshell -eval 'io:format("~s", [code:lib_dir(tools)])' \
                -s init stop 2>/dev/null)
    [ -f "$tools/emacs/erlang.el" ] && echo "$tools/emacs:"
}

# drop_scratch: remove the scratch directory, here and in the chroot.
drop_scratch () {
    local dir
    [ -n "$SCRATCH" ] || return 0
    for dir in $CHROOTS; do
        [ -d "$dir$SCRATCH" ] && ! mounted_under "$dir$SCRATCH" &&
            rmdir "$dir$SCRATCH"
    done
    remove "$SCRATCH"
    SCRATCH=""
}

# nodes_of SUITE: this machine's Emacs, the node suites, SUITE's nodes.
nodes_of () {
    local stack=$1-nodes dir bin ebin path loadpath start status
    local log=$WORK/logs/$1-nodes.log
    local -a settings=()
    if [ "$1" = host ]; then
        path=$PATH
        ebin=$ROOT/build/ebin
        loadpath=${EMACSLOADPATH:-}
    else
        dir=$(cd "$CACHE/$1" && pwd -P)
        bin=$WORK/$1/bin
        ebin=$WORK/$1/ebin
        CHROOTS="$CHROOTS $dir"
        same_names "$dir"
        # Scratch files (certificates, Distel's copy, modules to
        # compile) go where the chroot sees them at the same path, and
        # outside this tree, which is a project of its own.
        SCRATCH=$(mktemp -d /tmp/derl-matrix.XXXXXX) || return 1
        settings=(TMPDIR="$SCRATCH")
        do_mount -t proc proc "$dir/proc" &&
            do_mount --bind "$ROOT" "$dir$ROOT" &&
            do_mount --bind "$SCRATCH" "$dir$SCRATCH" || return 1
        wrappers "$dir" "$bin"
        path=$bin:$PATH
        # Distel's Emacs looks for erlang-mode where `erl' has it, which
        # is in the chroot: here it gets this machine's.
        loadpath=$(erlang_mode)${EMACSLOADPATH:-}
        rm -rf "$ebin" && mkdir -p "$ebin" &&
            "$bin/erlc" -o "$ebin" test/erl/*.erl || return 1
    fi
    say "==== $stack: nodes of $(versions_of "$1");" \
        "from Emacs $(emacs_version) here, OpenSSL $(openssl version | cut -d' ' -f2)"
    start=$(now)
    limited "${DERL_MATRIX_NODES_TIMEOUT:-1200}" \
            env PATH="$path" EMACSLOADPATH="$loadpath" "${settings[@]}" \
            DERL_TEST_EBIN="$ebin" \
            DERL_TESTS="$NODE_TESTS" DERL_TESTS_SKIP="$NODE_TESTS_SKIP" \
            "$EMACS" -Q --batch -L lisp -L test \
            --eval '(setq load-prefer-newer t)' \
            -l test/derl-ert.el -f derl-ert-run-batch >"$log" 2>&1
    status=$?
    unmount_all
    drop_scratch
    cat "$log"
    finish "$stack" $status "$log" $(($(now) - start))
}

# ---- the run

if [ "$(id -u)" != 0 ]; then
    say "matrix: needs root (debootstrap, chroot, mount)"
    exit 1
fi
total_start=$(now)
for stack in $STACKS; do
    case $stack in
        *-make-test) suite=${stack%-make-test}; run=make_test_in ;;
        *-nodes) suite=${stack%-nodes}; run=nodes_of ;;
        *) count "$stack" 0 1 0 "no such stack"; continue ;;
    esac
    if [ "$suite" != host ] && ! ensure "$suite"; then
        count "$stack" 0 1 0 "the chroot $suite could not be built"
        continue
    fi
    $run "$suite" || {
        unmount_all
        drop_scratch
        count "$stack" 0 1 0 "could not be set up"
    }
done

say "====$summary"
say "matrix: $(($(now) - total_start)) s"
say "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
