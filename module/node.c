/* node.c --- the I/O thread's poll loop, and what the main thread
   calls.  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#define _GNU_SOURCE
#include "node_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tls.h"

/* The longest poll, so that a lost wake-up costs at most this.  */
#define MAX_POLL_MS 60000

/* ---------------------------------------------------------------- */
/* The I/O thread */

static void
earliest (poll_set *ps, int64_t t)
{
  if (t >= 0 && (ps->timeout < 0 || t < ps->timeout))
    ps->timeout = t;
}

/* C's timers, by whose they are.  C may be freed when -1.  */
static int64_t
timers_locked (conn *c, int64_t now)
{
  if (c->kind == Q_LISTEN)
    return listener_timer_locked (c, now);  /* its tick time is for the
                                               connections it takes */
  if (c->incoming)
    return conn_timers_locked (c, now);
  return outgoing_timers_locked (c, now);
}

/* Read what C's socket has, and hand it to C's owner.  C may be freed
   on return.  */
static void
input_locked (conn *c)
{
  bool eof;
  if (!receive_locked (c, &eof))
    return;
  if (c->kind == Q_ALIVE && c->state == C_EPMD_WAIT)
    alive_input_locked (c, eof);
  else if (c->incoming)
    incoming_input_locked (c, eof);
  else
    outgoing_input_locked (c, eof);
}

/* Bring C up to date before polling: open its socket once resolved,
   run its timers, write what it can.  False when C died doing so.
   node_lock held.  */
static bool
prepare_conn_locked (conn *c, poll_set *ps, int64_t now)
{
  long id = c->id;
  if (c->net.fd == FD_TO_OPEN)
    {
      c->net.fd = -1;
      if (!open_socket_locked (c, (uint16_t) c->epmd_port))
        {
          char reason[300];
          snprintf (reason, sizeof reason, "cannot open a socket to %s: %s",
                    c->host, strerror (errno));
          kill_conn_locked (c, NODE_ERR_EPMD, reason);
          return false;
        }
    }
  earliest (ps, timers_locked (c, now));
  if (!find_conn_locked (id))
    return false;
  if (!flush_locked (c))
    {
      kill_conn_locked (c, c->state == C_UP ? NODE_ERR_CLOSED
                                            : NODE_ERR_CONNECT,
                        transport_failure (&c->net,
                                           "connection lost while writing"));
      return false;
    }
  return true;
}

/* What to wait for on C's socket.  */
static short
poll_events (conn *c, int64_t now)
{
  if (c->state == C_EPMD_CONNECT || c->state == C_CONNECT)
    return POLLOUT;
  if (c->state == C_TLS)
    return transport_poll_events (&c->net, true);
  if (c->kind == Q_LISTEN)
    return c->accepting && !c->deadline ? POLLIN : 0;
  bool paused = c->state == C_UP && events_over_high_water_locked ();
  if (paused)
    /* Not reading is our doing, not the node's silence.  */
    c->ses.last_recv = now;
  bool read = !paused && !main_reads_locked (c);
  return (short) ((read ? POLLIN : 0)
                  | (wants_write_locked (c) ? POLLOUT : 0)
                  | transport_poll_events (&c->net, false));
}

/* Fill PS for one round.  node_lock held.  */
static bool
build_poll_set_locked (poll_set *ps)
{
  size_t count = 1;
  for (conn *c = node_conns; c; c = c->next)
    count++;
  if (!poll_set_reserve (ps, count))
    return false;
  ps->n = 0;
  ps->timeout = -1;
  int64_t now = node_now_ms ();
  /* First: taking the reading back changes what is polled below.  */
  earliest (ps, main_reads_handback_locked (now));
  for (conn *c = node_conns, *next; c; c = next)
    {
      next = c->next;
      if (c->state == C_RESOLVING)
        {
          /* Only its deadline: the resolver has no socket for us.  */
          earliest (ps, timers_locked (c, now));
          continue;
        }
      short events;
      if (prepare_conn_locked (c, ps, now) && (events = poll_events (c, now)))
        poll_set_add (ps, c->net.fd, events, c->id);
    }
  poll_set_add (ps, node_wake_pipe_fd (), POLLIN, 0);
  return true;
}

/* Act on what poll reported for C.  node_lock held.  */
static void
serve_conn_locked (conn *c, short revents)
{
  if (c->kind == Q_LISTEN)
    {
      accept_locked (c);
      return;
    }
  if (c->state == C_EPMD_CONNECT || c->state == C_CONNECT)
    {
      connected_locked (c);
      return;
    }
  if (c->state == C_TLS)
    {
      if (c->incoming)
        incoming_tls_step_locked (c);
      else
        outgoing_tls_step_locked (c);
      return;
    }
  if ((revents & POLLOUT) && !flush_locked (c))
    {
      kill_conn_locked (c, NODE_ERR_CLOSED,
                        transport_failure (&c->net,
                                           "connection lost while writing"));
      return;
    }
  /* TLS may need the socket writable to read on.  */
  if (revents & (POLLIN | POLLHUP | POLLERR)
      || (c->net.tls && (revents & POLLOUT)))
    input_locked (c);
}

static void *
io_main (void *arg)
{
  (void) arg;
  poll_set ps = { 0 };
  pthread_mutex_lock (&node_lock);
  while (!node_stopping)
    {
      signal_owed_locked ();
      if (!build_poll_set_locked (&ps))
        {
          pthread_mutex_unlock (&node_lock);
          sleep (1);  /* out of memory: try again later */
          pthread_mutex_lock (&node_lock);
          continue;
        }
      signal_waiter_locked ();
      pthread_mutex_unlock (&node_lock);

      int timeout = ps.timeout < 0             ? -1
                    : ps.timeout > MAX_POLL_MS ? MAX_POLL_MS
                                               : (int) ps.timeout;
      int rc = poll (ps.fds, ps.n, timeout);
      if (rc > 0 && ps.fds[ps.n - 1].revents)
        node_wake_pipe_drain ();

      pthread_mutex_lock (&node_lock);
      for (size_t k = 0; rc > 0 && k + 1 < ps.n; k++)
        {
          conn *c = ps.fds[k].revents ? find_conn_locked (ps.ids[k]) : NULL;
          /* It may have gone, or moved on to another socket, since.  */
          if (c && c->net.fd == ps.fds[k].fd)
            serve_conn_locked (c, ps.fds[k].revents);
        }
    }
  pthread_mutex_unlock (&node_lock);
  free (ps.fds);
  free (ps.ids);
  return NULL;
}

/* ---------------------------------------------------------------- */
/* The main thread's side */

bool
node_running (void)
{
  pthread_mutex_lock (&node_lock);
  bool r = node_is_running;
  pthread_mutex_unlock (&node_lock);
  return r;
}

bool
node_start (int fd, const char **error)
{
  pthread_mutex_lock (&node_lock);
  if (node_is_running)
    {
      events_set_fd_locked (fd);
      pthread_mutex_unlock (&node_lock);
      return true;
    }
  if (!node_wake_pipe_open ())
    {
      pthread_mutex_unlock (&node_lock);
      *error = "cannot create the wake-up pipe";
      return false;
    }
  node_stopping = false;
  /* The I/O thread must never take Emacs's signals: block them all in
     it (it inherits our mask at creation).  */
  sigset_t all, old;
  sigfillset (&all);
  pthread_sigmask (SIG_SETMASK, &all, &old);
  int rc = pthread_create (&node_io_thread, NULL, io_main, NULL);
  pthread_sigmask (SIG_SETMASK, &old, NULL);
  if (rc != 0)
    {
      node_wake_pipe_close ();
      pthread_mutex_unlock (&node_lock);
      *error = "cannot start the I/O thread";
      return false;
    }
  /* The thread waits for the lock before it looks at the fd.  */
  events_set_fd_locked (fd);
  node_is_running = true;
  pthread_mutex_unlock (&node_lock);
  return true;
}

void
node_stop (void)
{
  pthread_mutex_lock (&node_lock);
  if (!node_is_running)
    {
      pthread_mutex_unlock (&node_lock);
      return;
    }
  node_stopping = true;
  node_wake_io_thread ();
  pthread_mutex_unlock (&node_lock);
  pthread_join (node_io_thread, NULL);

  pthread_mutex_lock (&node_lock);
  while (node_conns)
    {
      conn *c = node_conns;
      node_conns = c->next;
      free_conn (c);
    }
  events_clear_locked ();
  node_wake_pipe_close ();
  node_is_running = false;
  pthread_mutex_unlock (&node_lock);
}

static bool
valid_port (int port)
{
  return port >= 1 && port <= 65535;
}

/* Link C in and start resolving; returns its id or -1.  */
static long
add_conn (conn *c)
{
  pthread_mutex_lock (&node_lock);
  if (!node_is_running)
    {
      pthread_mutex_unlock (&node_lock);
      free_conn (c);
      return -1;
    }
  link_conn_locked (c);
  long id = c->id;
  if (!valid_port (c->epmd_port))
    {
      char reason[160];
      snprintf (reason, sizeof reason,
                "EPMD port %d is not a port number (1 to 65535)",
                c->epmd_port);
      kill_conn_locked (c, NODE_ERR_EPMD, reason);
    }
  else if (!start_resolver_locked (c))
    kill_conn_locked (c, NODE_ERR_HOST, "cannot start a resolver thread");
  pthread_mutex_unlock (&node_lock);
  return id;
}

long
node_connect (const node_connect_args *a)
{
  conn *c = new_conn (Q_NODE, a->host, a->epmd_port, &a->limits);
  if (!c)
    {
      tls_context_free (a->tls);
      return -1;
    }
  c->net.ctx = a->tls;
  c->alive = strdup (a->alive);
  if (!c->alive
      || !session_set_identity (&c->ses, a->our_name, a->cookie,
                                a->cookie_len, a->creation,
                                HS_FLAGS (a->published)))
    {
      free_conn (c);
      return -1;
    }
  return add_conn (c);
}

/* An EPMD query's limits: only its TIMEOUT_MS.  */
static session_limits
query_limits (unsigned timeout_ms)
{
  return (session_limits) { .timeout_ms = timeout_ms };
}

long
node_epmd_port_please (const char *host, int epmd_port, const char *alive,
                       unsigned timeout_ms)
{
  session_limits limits = query_limits (timeout_ms);
  conn *c = new_conn (Q_PORT_PLEASE, host, epmd_port, &limits);
  if (!c)
    return -1;
  if (!(c->alive = strdup (alive)))
    {
      free_conn (c);
      return -1;
    }
  return add_conn (c);
}

long
node_epmd_names (const char *host, int epmd_port, unsigned timeout_ms)
{
  session_limits limits = query_limits (timeout_ms);
  conn *c = new_conn (Q_NAMES, host, epmd_port, &limits);
  if (!c)
    return -1;
  return add_conn (c);
}

node_send_result
node_send (long id, const uint8_t *control, size_t control_len,
           const uint8_t *message, size_t message_len)
{
  pthread_mutex_lock (&node_lock);
  conn *c = find_conn_locked (id);
  node_send_result r
    = c && c->kind == Q_NODE
        ? queue_message_locked (c, control, control_len, message, message_len)
        : NODE_SEND_NO_CONNECTION;
  waiter_arm_spin_locked ();
  pthread_mutex_unlock (&node_lock);
  return r;
}

int
node_frame_form (long id)
{
  pthread_mutex_lock (&node_lock);
  conn *c = find_conn_locked (id);
  int form = c && c->kind == Q_NODE && c->state == C_UP ? c->ses.use_header
                                                         : -1;
  pthread_mutex_unlock (&node_lock);
  return form;
}

size_t
node_frame_begin (etf_buf *out, int form)
{
  return dist_frame_begin (out, form == 1);
}

void
node_frame_message (etf_buf *out, int form)
{
  dist_frame_message (out, form == 1);
}

void
node_frame_end (etf_buf *out, size_t start)
{
  dist_frame_end (out, start);
}

node_send_result
node_send_frame (long id, etf_buf *frame, size_t terms_len)
{
  pthread_mutex_lock (&node_lock);
  conn *c = find_conn_locked (id);
  node_send_result r
    = c && c->kind == Q_NODE && c->state == C_UP
        ? queue_frame_locked (c, frame, terms_len)
        : NODE_SEND_NO_CONNECTION;
  waiter_arm_spin_locked ();
  pthread_mutex_unlock (&node_lock);
  return r;
}

void
node_close (long id)
{
  pthread_mutex_lock (&node_lock);
  conn *c = find_conn_locked (id);
  if (c)
    {
      c->close_requested = true;
      kill_conn_locked (c, NODE_ERR_LOCAL, "closed");
      node_wake_io_thread ();
    }
  pthread_mutex_unlock (&node_lock);
}

/* A connection's state as the node list shows it.  */
static const char *
state_name (conn_state state)
{
  switch (state)
    {
    case C_RESOLVING: return "resolving";
    case C_EPMD_CONNECT:
    case C_EPMD_WAIT: return "epmd";
    case C_TLS:
    case C_HANDSHAKE: return "handshaking";
    case C_UP: return "up";
    case C_DEAD: return "down";
    default: return "connecting";
    }
}

bool
node_stats (long id, node_conn_stats *stats)
{
  pthread_mutex_lock (&node_lock);
  conn *c = find_conn_locked (id);
  bool found = c && c->kind == Q_NODE;
  if (found)
    {
      stats->state = state_name (c->state);
      stats->messages_in = c->ses.messages_in;
      stats->bytes_in = c->ses.bytes_in;
      stats->messages_out = c->ses.messages_out;
      stats->bytes_out = c->ses.bytes_out;
      stats->incoming = c->incoming;
      stats->tls = c->net.tls || c->net.ctx;
    }
  pthread_mutex_unlock (&node_lock);
  return found;
}
