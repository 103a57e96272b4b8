/* node_wait.c --- the main thread waiting in the module for events.
   While it waits it reads the plain TCP connections itself: a reply
   then reaches Lisp with one thread wake-up (the kernel waking the
   main thread), not two (the I/O thread, then the main thread).  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#define _GNU_SOURCE
#include "node_internal.h"
#include "stamps.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* All under node_lock.  */

/* The main thread reads the connections it can (see main_reads_locked);
   the I/O thread leaves their input alone.  Set by the first wait, and
   kept between waits that follow each other closely, so that a loop of
   round trips hands nothing back and forth; ended by node_wait_done,
   or by the I/O thread once the main thread has been away from the
   wait for HANDBACK_MS (Lisp busy between two waits must not leave a
   connection unread).  */
static bool main_reads;
/* The main thread is inside node_wait_events.  */
static bool in_wait;
static int64_t main_left_at;
#define HANDBACK_MS 20
/* The main thread sent something since it last spun.  */
static bool spin_armed;

bool
main_reads_locked (const conn *c)
{
  return main_reads && c->kind == Q_NODE && c->state == C_UP && !c->net.tls
         && c->net.fd >= 0;
}

int64_t
main_reads_handback_locked (int64_t now)
{
  if (!main_reads)
    return -1;
  if (in_wait)
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
  poll_set_add (&wait_set, events_waiter_fd_locked (), POLLIN, 0);
  for (conn *c = node_conns; c; c = c->next)
    if (main_reads_locked (c))
      poll_set_add (&wait_set, c->net.fd, POLLIN, c->id);
  return true;
}

/* Read what poll found in the set.  */
static void
read_ready_locked (void)
{
  struct pollfd *fds = wait_set.fds;
  if (fds[0].revents)
    events_waiter_woken_locked ();
  for (size_t k = 1; k < wait_set.n; k++)
    {
      if (!fds[k].revents)
        continue;
      long id = wait_set.ids[k];
      conn *c = find_conn_locked (id);
      /* It may have gone, or been handed back, since.  */
      if (!c || c->net.fd != fds[k].fd || !main_reads_locked (c))
        continue;
      bool eof;
      if (receive_locked (c, &eof))
        up_input_locked (c, eof);
      if (!find_conn_locked (id))
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

void
waiter_arm_spin_locked (void)
{
  spin_armed = true;
}

bool
node_wait_events (unsigned timeout_us, unsigned spin_us)
{
  pthread_mutex_lock (&node_lock);
  if (events_pending_locked () || !timeout_us
      || events_waiter_fd_locked () < 0)
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
  events_wait_begin_locked ();
  in_wait = true;
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
  events_wait_end_locked ();
  in_wait = false;
  main_left_at = node_now_ms ();
  bool ready = events_pending_locked ();
  pthread_mutex_unlock (&node_lock);
  return ready;
}

void
node_wait_done (void)
{
  pthread_mutex_lock (&node_lock);
  events_wait_done_locked ();
  if (main_reads)
    {
      main_reads = false;
      node_wake_io_thread ();  /* the sockets are its again */
    }
  pthread_mutex_unlock (&node_lock);
}
