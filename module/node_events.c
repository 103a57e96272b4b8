/* node_events.c --- the queue of events for Lisp, counted by the memory
   each one really holds, and handed over in bounded batches; and how
   Lisp is woken for it: a byte down Emacs's pipe, or, while the main
   thread waits in the module (node_wait.c), its own eventfd.  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#define _GNU_SOURCE
#include "node_internal.h"
#include "stamps.h"

#include <errno.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* Under node_lock.  */
static node_event *events_head, *events_tail;
/* Memory held by queued events, their structs and the allocator's own
   share included.  Past the high-water mark the I/O thread stops
   reading until Lisp has taken some: a fast sender cannot grow Emacs's
   memory without bound.  */
static size_t queued_bytes;
#define QUEUE_HIGH_WATER ((size_t) 16 << 20)
/* What malloc keeps beside each block, roughly.  */
#define MALLOC_OVERHEAD 16
/* REFUSED events among them: node_listen.c keeps their number small
   whatever a flood of connections does.  */
static size_t queued_refusals;
static int event_fd = -1;
/* An event was queued by a thread that must not write to Emacs's pipe;
   the I/O thread writes the wake-up byte for it.  */
static bool lisp_signal_owed;

node_event *
event_new (node_event_kind kind, long id, size_t extra)
{
  node_event *ev = calloc (1, sizeof *ev + extra);
  if (ev)
    {
      ev->kind = kind;
      ev->id = id;
      ev->cost = sizeof *ev + extra + MALLOC_OVERHEAD;
    }
  return ev;
}

node_event *
event_failure (node_event_kind kind, long id, node_error error,
               const char *reason)
{
  size_t n = strlen (reason);
  node_event *ev = event_new (kind, id, n + 1);
  if (ev)
    {
      ev->error = error;
      memcpy (ev->bytes, reason, n + 1);
      ev->reason = (const char *) ev->bytes;
    }
  return ev;
}

/* Wake Lisp: one byte down the event pipe.  node_lock held.  */
static void
signal_lisp_locked (void)
{
  lisp_signal_owed = false;
  if (event_fd < 0)
    return;
  ssize_t n;
  do
    n = write (event_fd, "e", 1);
  while (n < 0 && errno == EINTR);
  if (stamps_on ())
    {
      stamp (STAMP_WOKE);
      stamp_by_set (true, STAMP_BY_PIPE);
    }
}

/* Only threads that block every signal write to Emacs's pipe: a write
   after its reader is gone raises SIGPIPE.  Others let the I/O thread
   do it.  */
void
wake_lisp_locked (void)
{
  if (node_on_io_thread_locked ())
    signal_lisp_locked ();
  else
    {
      lisp_signal_owed = true;
      node_wake_io_thread ();
    }
}

void
signal_owed_locked (void)
{
  if (lisp_signal_owed && events_head)
    signal_lisp_locked ();
}

/* ---------------------------------------------------------------- */
/* The waiting main thread */

/* All under node_lock.  */

/* Wakes the main thread's poll: events queued by another thread.  */
static int waiter_fd = -1;

/* The main thread is inside node_wait_events.  */
static bool main_waiting;
static pthread_t waiting_thread;

/* Events were queued while the main thread waited, and no wake-up
   byte went to Emacs's pipe for them: the waiter takes them itself,
   and node_wait_done writes the byte if it leaves some behind.  */
static bool wake_held;

/* The I/O thread owes the waiting main thread a wake-up: given just
   before it lets go of node_lock, so that the main thread does not
   wake only to wait for the lock.  */
static bool waiter_owed;

static void
wake_waiter (void)
{
  if (waiter_fd < 0)
    return;
  uint64_t one = 1;
  ssize_t n = write (waiter_fd, &one, sizeof one);
  (void) n;  /* a full counter already wakes it */
}

/* A first event was queued: when the main thread waits in the module,
   see that it wakes (FRAME: stamp it) and return true; false when
   Lisp must be woken through the pipe.  */
static bool
waiter_takes_event_locked (bool frame)
{
  if (!main_waiting)
    return false;
  wake_held = true;
  pthread_t self = pthread_self ();
  bool by_self = pthread_equal (self, waiting_thread);
  if (!by_self && node_on_io_thread_locked ())
    {
      waiter_owed = true;  /* stamped when given */
      return true;
    }
  if (!by_self)  /* else it read the event itself, and is awake */
    wake_waiter ();
  if (frame && stamps_on ())
    {
      stamp (STAMP_WOKE);
      stamp_by_set (true, by_self ? STAMP_BY_SELF : STAMP_BY_WAITER);
    }
  return true;
}

void
signal_waiter_locked (void)
{
  if (waiter_owed)
    {
      waiter_owed = false;
      wake_waiter ();
      if (stamps_on ())
        {
          stamp (STAMP_WOKE);
          stamp_by_set (true, STAMP_BY_WAITER);
        }
    }
}

int
events_waiter_fd_locked (void)
{
  if (waiter_fd < 0)
    waiter_fd = eventfd (0, EFD_NONBLOCK | EFD_CLOEXEC);
  return waiter_fd;
}

void
events_wait_begin_locked (void)
{
  main_waiting = true;
  waiting_thread = pthread_self ();
}

void
events_wait_end_locked (void)
{
  main_waiting = false;
}

void
events_waiter_woken_locked (void)
{
  uint64_t count;
  ssize_t r = read (waiter_fd, &count, sizeof count);
  (void) r;
}

void
events_wait_done_locked (void)
{
  if (wake_held && events_head)
    wake_lisp_locked ();
  wake_held = false;
}

/* Queue an event (node_lock held); tell Lisp when the queue was
   empty.  */
void
emit_locked (node_event *ev)
{
  ev->next = NULL;
  bool was_empty = events_head == NULL;
  queued_bytes += ev->cost;
  if (ev->kind == NODE_EV_REFUSED)
    queued_refusals++;
  if (events_tail)
    events_tail->next = ev;
  else
    events_head = ev;
  events_tail = ev;
  if (ev->kind == NODE_EV_FRAME && stamps_on ())
    {
      stamp (STAMP_QUEUED);
      stamp_at (STAMP_WOKE, 0);
      stamp_by_set (true, STAMP_BY_NONE);
    }
  if (was_empty && !waiter_takes_event_locked (ev->kind == NODE_EV_FRAME))
    wake_lisp_locked ();
}

bool
events_pending_locked (void)
{
  return events_head != NULL;
}

bool
events_over_high_water_locked (void)
{
  return queued_bytes > QUEUE_HIGH_WATER;
}

size_t
events_refusals_queued_locked (void)
{
  return queued_refusals;
}

void
events_set_fd_locked (int fd)
{
  if (event_fd >= 0 && event_fd != fd)
    close (event_fd);
  event_fd = fd;
  /* Events queued for an old channel must wake the new one.  */
  if (fd >= 0 && events_head)
    wake_lisp_locked ();
}

void
events_clear_locked (void)
{
  node_free_events (events_head);
  events_head = events_tail = NULL;
  queued_bytes = 0;
  queued_refusals = 0;
  events_set_fd_locked (-1);
  lisp_signal_owed = false;
}

node_event *
node_take_events (void)
{
  pthread_mutex_lock (&node_lock);
  node_event *batch = events_head, *last = NULL;
  size_t count = 0, bytes = 0;
  bool was_over = events_over_high_water_locked ();
  for (node_event *e = events_head;
       e && (count == 0
             || (count < NODE_BATCH_EVENTS
                 && bytes + e->cost <= NODE_BATCH_BYTES));
       e = e->next)
    {
      last = e;
      count++;
      bytes += e->cost;
      if (e->kind == NODE_EV_REFUSED)
        queued_refusals--;
    }
  if (last)
    {
      events_head = last->next;
      last->next = NULL;
      if (!events_head)
        events_tail = NULL;
    }
  queued_bytes -= bytes;
  if (!events_head)
    wake_held = false;
  if (events_head)
    wake_lisp_locked ();  /* the rest follows on the next wake-up; this
                             also wakes the I/O thread */
  else if (was_over)
    node_wake_io_thread ();  /* it may have stopped reading */
  pthread_mutex_unlock (&node_lock);
  return last ? batch : NULL;
}

void
node_requeue_events (node_event *events)
{
  if (!events)
    return;
  size_t bytes = 0, refusals = 0;
  node_event *last = events;
  for (node_event *e = events; e; e = e->next)
    {
      bytes += e->cost;
      refusals += e->kind == NODE_EV_REFUSED;
      last = e;
    }
  pthread_mutex_lock (&node_lock);
  queued_refusals += refusals;
  last->next = events_head;
  events_head = events;
  if (!events_tail)
    events_tail = last;
  queued_bytes += bytes;
  /* The main thread is not waiting: the pipe wakes Lisp, by way of the
     I/O thread.  */
  wake_lisp_locked ();
  pthread_mutex_unlock (&node_lock);
}

void
node_free_events (node_event *ev)
{
  while (ev)
    {
      node_event *next = ev->next;
      free (ev);
      ev = next;
    }
}
