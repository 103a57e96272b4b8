#!/bin/sh
# layers.sh --- check that module/'s C files call only downward.
#
# Each file of module/ belongs to one layer below; a file may call
# functions (and use data) of its own layer and of the layers under it,
# never of a layer above, and no two files may call each other (nor any
# longer loop of files).  The binding does no protocol work: it takes
# nothing from the protocol layer nor from the connection's.  Every
# module/*.c must be listed, so a new file gets a place.
#
# The calls are read from the object files: each file is compiled
# alone, and each symbol it leaves undefined is matched with the file
# that defines it (nm).
#
#   1 codec       etf.c etf_print.c digest.c stamps.c
#   2 protocol    epmd.c handshake.c dist.c
#   3 socket      tls.c transport.c              bytes on a socket
#   4 connection  session.c                      one connection, fed bytes
#   5 node        node_state.c node_events.c node_table.c node_io.c
#                 node_resolve.c node_listen.c node_dial.c node_wait.c
#                 node.c              the table, the I/O thread, the waits
#   6 binding     elisp.c lispterm_decode.c lispterm_encode.c
#                 derl_module.c                  Emacs's side
#
# Usage: sh test/c/layers.sh [CC]    (from the top of the tree)
#
# Copyright (C) 2026 The derl authors
# SPDX-License-Identifier: GPL-3.0-or-later

set -eu

CC=${1:-${CC:-cc}}

LAYERS='
1 etf etf_print digest stamps
2 epmd handshake dist
3 tls transport
4 session
5 node_state node_events node_table node_io node_resolve node_listen node_dial node_wait node
6 elisp lispterm_decode lispterm_encode derl_module
'
# What the binding must not call.
BINDING=derl_module
NOT_FOR_BINDING='epmd handshake dist session'

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Three checks, counted as the other C tests count theirs.
passed=0
failed=0
check_done () {
    if [ "$1" = 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
}

# file -> layer
printf '%s\n' "$LAYERS" | awk 'NF { for (i = 2; i <= NF; i++) print $i, $1 }' \
  | sort > "$tmp/layer"

status=0
for src in module/*.c; do
  f=$(basename "$src" .c)
  if ! grep -q "^$f " "$tmp/layer"; then
    echo "layers.sh: $src is in no layer: add it to the list" >&2
    status=1
  fi
  $CC -std=gnu11 -fPIC -c "$src" -o "$tmp/$f.o"
done
check_done $status
if [ $status != 0 ]; then
  echo "$passed passed, $failed failed"
  exit 1
fi

# symbol -> file defining it; then the edges "caller callee symbol".
for o in "$tmp"/*.o; do
  nm --defined-only "$o" \
    | awk -v f="$(basename "$o" .o)" '$2 ~ /^[TDBRCV]$/ { print $3, f }'
done | sort > "$tmp/defs"
for o in "$tmp"/*.o; do
  f=$(basename "$o" .o)
  nm -u "$o" | awk '{ print $NF }' | sort \
    | join - "$tmp/defs" | awk -v f="$f" '$2 != f { print f, $2, $1 }'
done > "$tmp/calls"

# Upward calls, and calls the binding must not make.
awk -v binding="$BINDING" -v forbidden="$NOT_FOR_BINDING" '
  FNR == NR { layer[$1] = $2; next }
  BEGIN { n = split(forbidden, fl, " "); for (i = 1; i <= n; i++) bad[fl[i]] = 1 }
  layer[$2] > layer[$1] {
    printf "layers.sh: %s.c (layer %d) calls %s of %s.c (layer %d) above it\n",
           $1, layer[$1], $3, $2, layer[$2]
    status = 1
  }
  $1 == binding && bad[$2] {
    printf "layers.sh: %s.c does protocol work: it calls %s of %s.c\n", $1, $3, $2
    status = 1
  }
  END { exit status }
' "$tmp/layer" "$tmp/calls" >&2 || status=1
check_done $status

# Files calling each other, directly or round a longer loop.
loops=0
awk '{ print $1, $2 }' "$tmp/calls" | sort -u > "$tmp/edges"
awk '{ print $2, $1 }' "$tmp/edges" | sort | comm -12 - "$tmp/edges" \
  | awk '$1 < $2 { printf "layers.sh: %s.c and %s.c call each other\n", $1, $2 }' \
  > "$tmp/mutual"
if [ -s "$tmp/mutual" ]; then
  cat "$tmp/mutual" >&2
  loops=1
fi
if ! tsort "$tmp/edges" > /dev/null 2> "$tmp/loops"; then
  echo "layers.sh: the files call each other in a loop:" >&2
  cat "$tmp/loops" >&2
  loops=1
fi
check_done $loops

echo "layers: $(wc -l < "$tmp/edges") calls between files checked"
echo "$passed passed, $failed failed"
[ $failed = 0 ]
