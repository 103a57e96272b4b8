/* node_state.c --- what every part of the node shares: the lock, the
   clock, connection ids, and the pipe that wakes the I/O thread.  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#define _GNU_SOURCE
#include "node_internal.h"

#include <fcntl.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* Shared, under node_lock (see node.h).  */
pthread_mutex_t node_lock = PTHREAD_MUTEX_INITIALIZER;
pthread_t node_io_thread;
bool node_is_running, node_stopping;
static long next_id = 1;
static int wake_pipe[2] = { -1, -1 };

int64_t
node_now_us (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
node_now_ms (void)
{
  return node_now_us () / 1000;
}

long
node_new_id_locked (void)
{
  return next_id++;
}

bool
node_on_io_thread_locked (void)
{
  return node_is_running && pthread_equal (pthread_self (), node_io_thread);
}

bool
node_wake_pipe_open (void)
{
  return pipe2 (wake_pipe, O_NONBLOCK | O_CLOEXEC) == 0;
}

void
node_wake_pipe_close (void)
{
  close (wake_pipe[0]);
  close (wake_pipe[1]);
  wake_pipe[0] = wake_pipe[1] = -1;
}

int
node_wake_pipe_fd (void)
{
  return wake_pipe[0];
}

void
node_wake_pipe_drain (void)
{
  char buf[256];
  while (read (wake_pipe[0], buf, sizeof buf) > 0)
    ;
}

void
node_wake_io_thread (void)
{
  if (wake_pipe[1] >= 0)
    {
      ssize_t n = write (wake_pipe[1], "w", 1);
      (void) n;  /* a full pipe already wakes it */
    }
}

/* ---------------------------------------------------------------- */
/* Poll sets */

bool
poll_set_reserve (poll_set *ps, size_t count)
{
  if (count <= ps->cap)
    return true;
  struct pollfd *fds = realloc (ps->fds, count * sizeof *fds);
  if (fds)
    ps->fds = fds;
  long *ids = realloc (ps->ids, count * sizeof *ids);
  if (ids)
    ps->ids = ids;
  if (!fds || !ids)
    return false;
  ps->cap = count;
  return true;
}

void
poll_set_add (poll_set *ps, int fd, short events, long id)
{
  ps->fds[ps->n] = (struct pollfd) { .fd = fd, .events = events };
  ps->ids[ps->n] = id;
  ps->n++;
}
