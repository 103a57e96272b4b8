/* lispterm.h --- External Term Format <-> Lisp values, the term mapping
   of README.org: decoding in lispterm_decode.c, encoding in
   lispterm_encode.c.  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#ifndef DERL_LISPTERM_H
#define DERL_LISPTERM_H

#include <emacs-module.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>

#include "etf.h"

typedef struct
{
  /* Decode binaries as [erl-tag erl-binary STRING] (lossless mode).  */
  bool binaries_tagged;
  /* Deepest nesting accepted either way; deeper input is refused rather
     than risk Emacs's own recursive walkers (GC, equal, print).  */
  size_t max_depth;
  /* `inhibit-quit' is non-nil: C-g only sets `quit-flag', which the
     decoder then looks at itself (see elisp_quit_requested).  */
  bool quits_inhibited;
} lispterm_options;

/* Decode one term from R, which stands at its first tag.  Returns NULL
   on failure: either a Lisp error is pending, or R holds the reason for
   `lispterm_signal_decode_error'.  C-g is looked at every few thousand
   items: a quit stops decoding with the quit pending.  */
emacs_value lispterm_decode (emacs_env *env, etf_reader *r,
                             const lispterm_options *opt);

/* Append VALUE's encoding (no version byte) to OUT.  On failure signals
   `erlext-encode-error' naming the object and returns false.  */
bool lispterm_encode (emacs_env *env, emacs_value value, etf_buf *out,
                      const lispterm_options *opt);

/* Signal `erlext-decode-error' for a reader error.  */
void lispterm_signal_decode_error (emacs_env *env, const etf_reader *r,
                                   bool decompressed);

/* Signal `erlext-encode-error' for REASON, naming OBJ.  */
void lispterm_signal_encode_error (emacs_env *env, const char *reason,
                                   emacs_value obj);

/* Grow *ITEMS, an array of *CAP items of ITEM_SIZE bytes, to hold NEED;
   for the explicit stacks of both directions.  False when out of
   memory.  */
static inline bool
lispterm_grow (void **items, size_t *cap, size_t need, size_t item_size)
{
  if (need <= *cap)
    return true;
  size_t ncap = *cap ? *cap : 64;
  while (ncap < need)
    ncap *= 2;
  void *n = realloc (*items, ncap * item_size);
  if (!n)
    return false;
  *items = n;
  *cap = ncap;
  return true;
}

#endif /* DERL_LISPTERM_H */
