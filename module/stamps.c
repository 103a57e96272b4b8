/* stamps.c --- the time stamps of stamps.h.  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#include "stamps.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

atomic_bool stamping;

/* Its own lock: stamps are taken with and without node_lock held.  */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static double stamps[STAMP_COUNT];
static stamp_by woke_by, sent_by;

double
stamp_clock (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_REALTIME, &ts);
  return (double) ts.tv_sec * 1e6 + (double) ts.tv_nsec / 1e3;
}

void
stamp_at (stamp_slot slot, double t)
{
  if (!stamps_on ())
    return;
  pthread_mutex_lock (&lock);
  stamps[slot] = t;
  pthread_mutex_unlock (&lock);
}

void
stamp (stamp_slot slot)
{
  if (stamps_on ())
    stamp_at (slot, stamp_clock ());
}

void
stamp_by_set (bool woke, stamp_by by)
{
  if (!stamps_on ())
    return;
  pthread_mutex_lock (&lock);
  if (woke)
    woke_by = by;
  else
    sent_by = by;
  pthread_mutex_unlock (&lock);
}

void
stamps_set (bool on)
{
  pthread_mutex_lock (&lock);
  memset (stamps, 0, sizeof stamps);
  woke_by = sent_by = STAMP_BY_NONE;
  atomic_store (&stamping, on);
  pthread_mutex_unlock (&lock);
}

void
stamps_get (double out[STAMP_COUNT], stamp_by *woke, stamp_by *sent)
{
  pthread_mutex_lock (&lock);
  memcpy (out, stamps, sizeof stamps);
  *woke = woke_by;
  *sent = sent_by;
  pthread_mutex_unlock (&lock);
}
