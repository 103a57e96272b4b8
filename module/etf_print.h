/* etf_print.h --- Terms printed straight from their bytes, as the trace
   buffers print them.

   The trace printer is Lisp (derl-trace.el); it prints decoded terms.
   This prints the common, simple terms of a message from the bytes
   that are already at hand, much faster, and gives up on everything
   the Lisp printer shows in a way not worth repeating here (floats,
   maps, funs, non-ASCII text, long or deep terms...): the caller then
   lets the Lisp printer do it.  Whatever this prints, the Lisp printer
   would print exactly the same (the tests hold it to that).  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#ifndef DERL_ETF_PRINT_H
#define DERL_ETF_PRINT_H

#include "etf.h"

#include <stdbool.h>
#include <stddef.h>

/* Where the text goes: CAP bytes at DATA, LEN used.  */
typedef struct
{
  char *data;
  size_t len, cap;
} etf_text;

/* Print the next term of R at the end of OUT, as the trace printer
   prints it: BINARIES_TAGGED as in lossless decoding, at most LIMIT
   characters (`derl-trace-term-length').  Return true with R past the
   term; false when the Lisp printer must print it (OUT's length is then
   unchanged, R anywhere).  */
bool etf_print_term (etf_reader *r, bool binaries_tagged, size_t limit,
                     etf_text *out);

#endif /* DERL_ETF_PRINT_H */
