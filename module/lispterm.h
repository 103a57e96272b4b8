/* lispterm.h --- External Term Format <-> Lisp values (DESIGN.md's mapping).  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#ifndef DERL_LISPTERM_H
#define DERL_LISPTERM_H

#include <emacs-module.h>
#include <stdbool.h>
#include <stddef.h>

#include "etf.h"

typedef struct
{
  /* Decode binaries as [erl-tag erl-binary STRING] (lossless mode).  */
  bool binaries_tagged;
  /* Deepest nesting accepted either way; deeper input is refused rather
     than risk Emacs's own recursive walkers (GC, equal, print).  */
  size_t max_depth;
} lispterm_options;

/* Intern the symbols and functions the mapping needs; call once per
   module load, before anything else here.  False on failure (a Lisp
   error is then pending).  */
bool lispterm_init (emacs_env *env);

/* Decode one term from R, which stands at its first tag.  Returns NULL
   on failure: either a Lisp error is pending, or R holds the reason for
   `lispterm_signal_decode_error'.  */
emacs_value lispterm_decode (emacs_env *env, etf_reader *r,
                             const lispterm_options *opt);

/* Append VALUE's encoding (no version byte) to OUT.  On failure signals
   `erlext-encode-error' naming the object and returns false.  */
bool lispterm_encode (emacs_env *env, emacs_value value, etf_buf *out,
                      const lispterm_options *opt);

/* Signal `erlext-decode-error' for a reader error.  */
void lispterm_signal_decode_error (emacs_env *env, const etf_reader *r,
                                   bool decompressed);

/* Signal CONDITION (an interned symbol name) with a message string and
   optional extra datum (NULL for none).  */
void lispterm_signal (emacs_env *env, const char *condition,
                      const char *message, emacs_value datum);

/* Lisp string from a C string; a unibyte string from bytes.  */
emacs_value lispterm_string (emacs_env *env, const char *s);
emacs_value lispterm_unibyte (emacs_env *env, const void *data, size_t len);

/* Copy a Lisp string's bytes (UTF-8 for multibyte text, raw bytes as
   themselves) into a malloc'd buffer; NULL with an error pending on
   failure.  */
uint8_t *lispterm_string_bytes (emacs_env *env, emacs_value s, size_t *len);

#endif /* DERL_LISPTERM_H */
