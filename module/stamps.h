/* stamps.h --- optional time stamps along one message's way through
   the module, for the benchmark's stage breakdown.  Off by default:
   then each place below costs one branch.  No Emacs here.  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#ifndef DERL_STAMPS_H
#define DERL_STAMPS_H

#include <stdatomic.h>
#include <stdbool.h>

typedef enum
{
  STAMP_RECV,          /* the I/O thread's recv () that completed a frame */
  STAMP_QUEUED,        /* that frame appended to the event queue */
  STAMP_WOKE,          /* Lisp woken for it: the wake byte written, or
                          a waiting main thread signalled, or the
                          frame read by the waiting main thread */
  STAMP_DECODE_START,  /* the main thread started decoding it */
  STAMP_DECODE_END,    /* ... and finished */
  STAMP_SEND,          /* a send entered the module */
  STAMP_ENCODED,       /* its ETF written into the output buffer */
  STAMP_SENT,          /* its last byte handed to send () */
  STAMP_COUNT
} stamp_slot;

/* Who woke Lisp for the last frame, and who wrote the last send.  */
typedef enum
{
  STAMP_BY_NONE,       /* nobody needed to (the queue was not empty) */
  STAMP_BY_PIPE,       /* the event pipe */
  STAMP_BY_WAITER,     /* a main thread waiting in the module */
  STAMP_BY_SELF,       /* none: the waiting main thread read it itself */
  STAMP_BY_MAIN,       /* sent by the main thread */
  STAMP_BY_IO,         /* sent by the I/O thread */
} stamp_by;

extern atomic_bool stamping;

/* Note the time now (CLOCK_REALTIME) in SLOT, when stamping.  */
void stamp (stamp_slot slot);
/* Note a time taken earlier with stamp_clock ().  */
void stamp_at (stamp_slot slot, double t);
void stamp_by_set (bool woke, stamp_by by);
/* Microseconds since the epoch, the clock of `float-time'.  */
double stamp_clock (void);

static inline bool
stamps_on (void)
{
  return atomic_load_explicit (&stamping, memory_order_relaxed);
}

/* Turn stamping on (clearing every stamp) or off.  */
void stamps_set (bool on);
/* Copy the stamps (0 for none) and who woke and who sent.  */
void stamps_get (double out[STAMP_COUNT], stamp_by *woke, stamp_by *sent);

#endif /* DERL_STAMPS_H */
