/* node-wait.c --- the main thread waiting in the module for events.
   While it waits it reads the plain TCP connections itself: a reply
   then reaches Lisp with one thread wake-up (the kernel waking the
   main thread), not two (the I/O thread, then the main thread).  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#define _GNU_SOURCE
#include "node-internal.h"
#include "stamps.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* All under node_lock.  */

/* Wakes the main thread's poll: events queued by another thread.  */
static int waiter_fd = -1;
/* The main thread is inside node_wait_events.  */
static bool main_waiting;
static pthread_t waiting_thread;
/* The main thread reads the connections it can (see main_reads_locked);
   the I/O thread leaves their input alone.  Set by the first wait, and
   kept between waits that follow each other closely, so that a loop of
   round trips hands nothing back and forth; ended by node_wait_done,
   or by the I/O thread once the main thread has been away from the
   wait for HANDBACK_MS (Lisp busy between two waits must not leave a
   connection unread).  */
static bool main_reads;
static int64_t main_left_at;
#define HANDBACK_MS 20
/* The main thread sent something since it last spun.  */
static bool spin_armed;
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

bool
waiter_takes_event_locked (bool frame)
{
  if (!main_waiting)
    return false;
  wake_held = true;
  pthread_t self = pthread_self ();
  bool by_self = pthread_equal (self, waiting_thread);
  if (!by_self && node_is_running && pthread_equal (self, node_io_thread))
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

void
events_taken_locked (bool all)
{
  if (all)
    wake_held = false;
}

bool
main_reads_locked (const conn *c)
{
  return main_reads && c->kind == Q_NODE && c->state == C_UP && !c->tls
         && c->fd >= 0;
}

int64_t
main_reads_handback_locked (int64_t now)
{
  if (!main_reads)
    return -1;
  if (main_waiting)
    return HANDBACK_MS;  /* it may stop waiting without a word */
  int64_t away = now - main_left_at;
  if (away >= HANDBACK_MS)
    {
      main_reads = false;
      return -1;
    }
  return HANDBACK_MS - away;
}

/* ---------------------------------------------------------------- */
/* The main thread's poll */

static poll_set wait_set;

/* Fill the poll set: the waiter's eventfd, then each connection the
   main thread reads.  False when out of memory.  */
static bool
build_wait_set_locked (void)
{
  size_t count = 1;
  for (conn *c = node_conns; c; c = c->next)
    count++;
  if (!poll_set_reserve (&wait_set, count))
    return false;
  wait_set.n = 0;
  poll_set_add (&wait_set, waiter_fd, POLLIN, 0);
  for (conn *c = node_conns; c; c = c->next)
    if (main_reads_locked (c))
      poll_set_add (&wait_set, c->fd, POLLIN, c->id);
  return true;
}

/* Read what poll found in the set.  */
static void
read_ready_locked (void)
{
  struct pollfd *fds = wait_set.fds;
  if (fds[0].revents)
    {
      uint64_t count;
      ssize_t r = read (waiter_fd, &count, sizeof count);
      (void) r;
    }
  for (size_t k = 1; k < wait_set.n; k++)
    {
      if (!fds[k].revents)
        continue;
      long id = wait_set.ids[k];
      conn *c = find_conn (id);
      /* It may have gone, or been handed back, since.  */
      if (!c || c->fd != fds[k].fd || !main_reads_locked (c))
        continue;
      read_input_locked (c);
      if (!find_conn (id))
        node_wake_io_thread ();  /* it may still poll the closed socket */
    }
}

/* Poll without sleeping until SPIN_UNTIL: a reply that comes within
   then costs no wake-up at all.  Returns what poll returned last.  */
static int
spin_poll (int64_t spin_until)
{
  int rc;
  do
    rc = poll (wait_set.fds, wait_set.n, 0);
  while (rc == 0 && node_now_us () < spin_until);
  return rc;
}

static bool
open_waiter_locked (void)
{
  if (waiter_fd < 0)
    waiter_fd = eventfd (0, EFD_NONBLOCK | EFD_CLOEXEC);
  return waiter_fd >= 0;
}

void
waiter_arm_spin_locked (void)
{
  spin_armed = true;
}

bool
node_wait_events (unsigned timeout_us, unsigned spin_us)
{
  pthread_mutex_lock (&node_lock);
  if (events_pending_locked () || !timeout_us || !open_waiter_locked ())
    {
      bool ready = events_pending_locked ();
      pthread_mutex_unlock (&node_lock);
      if (!ready && timeout_us)
        usleep (timeout_us);  /* no eventfd: the pipe will wake Lisp */
      return ready;
    }
  int64_t until = node_now_us () + timeout_us;
  /* Spin once after each send: a reply may be a few microseconds
     away.  A wait that goes on sleeps.  */
  int64_t spin_until = spin_armed ? node_now_us () + spin_us : 0;
  spin_armed = false;
  main_waiting = true;
  waiting_thread = pthread_self ();
  if (!main_reads)
    {
      main_reads = true;
      node_wake_io_thread ();  /* to leave those sockets to us */
    }
  while (!events_pending_locked ())
    {
      int64_t left = until - node_now_us ();
      if (left <= 0)
        break;
      if (!build_wait_set_locked ())
        {
          /* Out of memory: the I/O thread reads, the pipe wakes Lisp.  */
          main_reads = false;
          node_wake_io_thread ();
          pthread_mutex_unlock (&node_lock);
          usleep ((useconds_t) left);
          pthread_mutex_lock (&node_lock);
          break;
        }
      pthread_mutex_unlock (&node_lock);
      int rc = spin_poll (spin_until);
      if (rc == 0)
        {
          struct timespec ts = { .tv_sec = left / 1000000,
                                 .tv_nsec = (long) (left % 1000000) * 1000 };
          rc = ppoll (wait_set.fds, wait_set.n, &ts, NULL);
        }
      pthread_mutex_lock (&node_lock);
      if (rc > 0)
        read_ready_locked ();
      else if (rc < 0 && errno != EINTR)
        break;
    }
  main_waiting = false;
  main_left_at = node_now_ms ();
  bool ready = events_pending_locked ();
  pthread_mutex_unlock (&node_lock);
  return ready;
}

void
node_wait_done (void)
{
  pthread_mutex_lock (&node_lock);
  if (wake_held && events_pending_locked ())
    wake_lisp_locked ();
  wake_held = false;
  if (main_reads)
    {
      main_reads = false;
      node_wake_io_thread ();  /* the sockets are its again */
    }
  pthread_mutex_unlock (&node_lock);
}
