/* node_io.c --- a connection's bytes in and out: its socket opened,
   written and read (bounded per call) through its transport, what came
   in handed to its session, the frames it checked made events, its
   messages queued, its TLS handshake stepped, its timers.  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#define _GNU_SOURCE
#include "node_internal.h"
#include "stamps.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* What one read asks for at least.  */
#define READ_CHUNK 65536
#define READ_BUDGET_HANDSHAKE (2 * READ_CHUNK)
#define READ_BUDGET_UP (64 * READ_CHUNK)
/* Room made for each read of held TLS records.  */
#define READ_CHUNK_HELD 16384

/* When stamping: the time of the last recv () that got bytes.  I/O
   thread only.  */
static double last_recv_stamp;

/* ---------------------------------------------------------------- */
/* Sockets */

static void
set_port (struct sockaddr_storage *addr, uint16_t port)
{
  if (addr->ss_family == AF_INET)
    ((struct sockaddr_in *) addr)->sin_port = htons (port);
  else if (addr->ss_family == AF_INET6)
    ((struct sockaddr_in6 *) addr)->sin6_port = htons (port);
}

bool
open_socket_locked (conn *c, uint16_t port)
{
  set_port (&c->addr, port);
  int fd = socket (c->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK
                                       | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return false;
  int one = 1;
  setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect (fd, (struct sockaddr *) &c->addr, c->addr_len) < 0
      && errno != EINPROGRESS)
    {
      close (fd);
      return false;
    }
  c->net.fd = fd;
  return true;
}

/* ---------------------------------------------------------------- */
/* Output */

/* Write what C has to write: EPMD or handshake bytes first, then
   frames once up.  Returns false when the socket failed.  */
bool
flush_locked (conn *c)
{
  if (c->net.fd < 0)
    return true;
  const uint8_t *data;
  size_t len;
  while (session_output (&c->ses, &data, &len))
    {
      ssize_t n = transport_send (&c->net, data, len);
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          if (errno == EAGAIN || errno == EWOULDBLOCK)
            return true;
          return false;
        }
      if (session_wrote (&c->ses, (size_t) n, node_now_ms ())
          && stamps_on ())
        {
          stamp (STAMP_SENT);
          stamp_by_set (false, node_on_io_thread_locked () ? STAMP_BY_IO
                                                           : STAMP_BY_MAIN);
        }
    }
  return true;
}

bool
wants_write_locked (const conn *c)
{
  if (c->state == C_EPMD_CONNECT || c->state == C_CONNECT)
    return true;
  return session_wants_write (&c->ses);
}

/* Write at once when we can: no thread switch on the way out.  IDLE
   says nothing waited to go out before.  */
static void
send_now_locked (conn *c, bool idle)
{
  if (idle && (!flush_locked (c) || session_wants_write (&c->ses)))
    node_wake_io_thread ();
}

node_send_result
queue_frame_locked (conn *c, etf_buf *frame, size_t terms_len)
{
  bool idle;
  node_send_result r = session_queue_frame (&c->ses, frame, terms_len, &idle);
  if (r == NODE_SEND_OK)
    send_now_locked (c, idle);
  return r;
}

node_send_result
queue_message_locked (conn *c, const uint8_t *control, size_t control_len,
                      const uint8_t *message, size_t message_len)
{
  bool idle;
  node_send_result r = session_queue_message (&c->ses, control, control_len,
                                              message, message_len, &idle);
  if (r == NODE_SEND_OK)
    send_now_locked (c, idle);
  return r;
}

/* ---------------------------------------------------------------- */
/* Input */

/* Move what C's TLS session took from the socket but has not handed
   out into its input: poll cannot see it, so a read that stops at its
   budget must take it.  False when out of memory.  */
static bool
drain_held_locked (conn *c)
{
  if (!c->net.tls)
    return true;
  for (;;)
    {
      size_t room;
      uint8_t *p = session_input_space (&c->ses, READ_CHUNK_HELD, &room);
      if (!p)
        return false;
      ssize_t n = transport_recv_held (&c->net, p, room);
      if (n <= 0)
        return true;  /* a failure shows on the next read */
      session_received (&c->ses, (size_t) n, c->ses.last_recv);
    }
}

/* Read everything the socket has into C's session.  False when out of
   memory; *EOF when the peer closed or the socket failed.  */
static bool
receive_bytes (conn *c, bool *eof)
{
  *eof = false;
  /* A peer that sends without pause must not make one call read
     without end: before the handshake is done (nothing is trusted yet,
     and no message is longer than 64 KiB) very little, after it a few
     MiB; poll calls again for the rest.  */
  size_t budget = c->state == C_UP ? READ_BUDGET_UP : READ_BUDGET_HANDSHAKE;
  size_t got = 0;
  while (got < budget)
    {
      size_t room;
      uint8_t *p = session_input_space (&c->ses, READ_CHUNK, &room);
      if (!p)
        return false;
      if (room > budget - got)
        room = budget - got;
      ssize_t n = transport_recv (&c->net, p, room);
      if (n > 0)
        {
          session_received (&c->ses, (size_t) n, node_now_ms ());
          got += (size_t) n;
          if (stamps_on ())
            last_recv_stamp = stamp_clock ();
          if ((size_t) n < room)
            return true;
          continue;
        }
      if (n < 0 && errno == EINTR)
        continue;
      *eof = n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
      return true;
    }
  /* The budget is spent; what TLS already holds must come too.  */
  return drain_held_locked (c);
}

bool
receive_locked (conn *c, bool *eof)
{
  if (receive_bytes (c, eof))
    return true;
  kill_conn_locked (c, NODE_ERR_PROTOCOL, "out of memory");
  return false;
}

/* The end of an input step: C's peer closed (EOF) or not.  C may be
   freed on return.  */
static void
input_done_locked (conn *c, bool eof)
{
  if (eof)
    kill_conn_locked (c, NODE_ERR_CLOSED,
                      transport_failure (&c->net,
                                         "connection closed by the peer"));
}

/* A FRAME event holding a copy of BODY (N bytes) and of the atoms REFS
   name (the cache they point into changes with the next frame), all in
   the event's one allocation.  */
static node_event *
frame_event (long id, const uint8_t *body, size_t n, const dist_frame *frame,
             const etf_atom *refs)
{
  size_t count = frame->atom_ref_count, names = 0;
  for (size_t k = 0; k < count; k++)
    names += refs[k].len;
  node_event *ev = event_new (NODE_EV_FRAME, id,
                              count * sizeof *refs + names + n);
  if (!ev)
    return NULL;
  etf_atom *atoms = (etf_atom *) ev->bytes;
  uint8_t *p = ev->bytes + count * sizeof *refs;
  for (size_t k = 0; k < count; k++)
    {
      memcpy (p, refs[k].name, refs[k].len);
      atoms[k] = refs[k];
      atoms[k].name = p;
      p += refs[k].len;
    }
  memcpy (p, body, n);
  ev->atom_refs = count ? atoms : NULL;
  ev->data = p;
  ev->len = n;
  ev->frame = *frame;
  return ev;
}

/* The session checked a frame of connection ARG: queue it for Lisp.  */
static bool
emit_frame (void *arg, const uint8_t *body, size_t n, const dist_frame *frame,
            const etf_atom *refs)
{
  const conn *c = arg;
  node_event *ev = frame_event (c->id, body, n, frame, refs);
  if (!ev)
    return false;
  if (stamps_on ())
    stamp_at (STAMP_RECV, last_recv_stamp);
  emit_locked (ev);
  return true;
}

/* Handle the whole frames C has received: false when C was killed.  */
static bool
frames_locked (conn *c)
{
  session_failure failure;
  if (session_frames (&c->ses, emit_frame, c, &failure))
    return true;
  kill_conn_locked (c, failure.error, failure.reason);
  return false;
}

void
up_input_locked (conn *c, bool eof)
{
  if (frames_locked (c))
    input_done_locked (c, eof);
}

/* Feed C's handshake what came in, DECIDE answering the acceptor's
   question: false when C was killed (too much of it, or its peer spoke
   TLS to a plain connection).  */
static bool
feed_handshake_locked (conn *c, session_decide_fn decide, hs_status *status)
{
  if (session_input_len (&c->ses) > 2 * READ_BUDGET_HANDSHAKE)
    {
      /* No handshake message is this long: a peer flooding before it
         is known is dropped, not buffered.  */
      kill_conn_locked (c, NODE_ERR_PROTOCOL,
                        "too much data during the handshake");
      return false;
    }
  if (session_feed_handshake (&c->ses, decide, c, status))
    return true;
  char reason[400];
  if (c->incoming)
    snprintf (reason, sizeof reason,
              "the node at %s spoke TLS: it runs its distribution "
              "over TLS (-proto_dist inet_tls), and Emacs listens for "
              "plain TCP; set derl-proto-dist to tls and start the "
              "node again", c->host);
  else
    snprintf (reason, sizeof reason,
              "the node at %s port %u answered in TLS: it runs its "
              "distribution over TLS (-proto_dist inet_tls); set "
              "derl-proto-dist to tls", c->host, c->node_port);
  kill_conn_locked (c, NODE_ERR_TLS, reason);
  return false;
}

/* Fail C's TLS set-up with WHY.  */
static void
tls_failed_locked (conn *c, const char *why)
{
  char reason[600];
  if (c->incoming)
    snprintf (reason, sizeof reason, "TLS from %s: %s", c->host, why);
  else
    snprintf (reason, sizeof reason, "TLS with %s port %u: %s", c->host,
              c->node_port, why);
  kill_conn_locked (c, NODE_ERR_TLS, reason);
}

/* The handshake of C failed or the peer closed during it: C killed.  */
static void
handshake_closed_locked (conn *c)
{
  if (transport_failed (&c->net))
    {
      /* A peer's alert after our part of the TLS handshake was done, as
         in TLS 1.3.  */
      tls_failed_locked (c, transport_failure (&c->net, ""));
      return;
    }
  session_peer_closed (&c->ses);
  kill_conn_locked (c, c->ses.hs.kind == HS_ERR_AUTH ? NODE_ERR_AUTH
                                                      : NODE_ERR_PROTOCOL,
                    c->ses.hs.error);
}

/* Input of C in its handshake.  */
static void
handshake_input_locked (conn *c, bool eof, session_decide_fn decide,
                        void (*result) (conn *c, hs_status status))
{
  /* Deciding may give C the id of our own attempt it takes over: then
     C is looked for in vain below, and EOF waits for the next read.  */
  long id = c->id;
  hs_status st;
  if (!feed_handshake_locked (c, decide, &st))
    return;
  result (c, st);
  if (!(c = find_conn_locked (id)))
    return;
  if (eof && c->state == C_HANDSHAKE)
    handshake_closed_locked (c);
  else
    input_done_locked (c, eof);
}

void
conn_input_locked (conn *c, bool eof, session_decide_fn decide,
                   void (*result) (conn *c, hs_status status))
{
  if (c->state == C_HANDSHAKE)
    handshake_input_locked (c, eof, decide, result);
  else if (c->state == C_UP)
    up_input_locked (c, eof);
  else
    input_done_locked (c, eof);
}

void
conn_up_locked (conn *c, node_event_kind kind)
{
  c->state = C_UP;
  c->deadline = 0;
  if (!session_up (&c->ses, node_now_ms ()))
    {
      kill_conn_locked (c, NODE_ERR_PROTOCOL, "out of memory");
      return;
    }
  const hs_state *hs = &c->ses.hs;
  node_event *ev = event_new (kind, c->id, hs->peer_name_len + 1);
  if (ev)
    {
      memcpy (ev->bytes, hs->peer_name, hs->peer_name_len);
      ev->peer_name = (const char *) ev->bytes;
      ev->peer_creation = hs->peer_creation;
      ev->peer_flags = hs->peer_flags;
      emit_locked (ev);
    }
  frames_locked (c);
}

/* ---------------------------------------------------------------- */
/* TLS */

bool
start_tls_locked (conn *c, tls_context *ctx)
{
  if (!transport_start_tls (&c->net, ctx, c->incoming ? NULL : c->host))
    {
      tls_failed_locked (c, "cannot start a session (out of memory, or a "
                            "host name OpenSSL refuses)");
      return false;
    }
  c->ses.long_lengths = true;
  c->state = C_TLS;
  return true;
}

bool
tls_step_locked (conn *c)
{
  switch (transport_tls_step (&c->net))
    {
    case TLS_OK:
      return true;
    case TLS_FAILED:
      tls_failed_locked (c, transport_failure (&c->net, ""));
      return false;
    default:
      return false;  /* the poll loop calls again when the socket is ready */
    }
}

/* ---------------------------------------------------------------- */
/* Timers */

/* What C, whose deadline passed, was doing: the stage and where.  */
static const char *
timeout_reason (const conn *c)
{
  static __thread char text[320];
  switch (c->state)
    {
    case C_RESOLVING:
      snprintf (text, sizeof text, "looking up the host %s timed out",
                c->host ? c->host : "?");
      return text;
    case C_EPMD_CONNECT:
    case C_EPMD_WAIT:
      snprintf (text, sizeof text, "EPMD at %s port %d did not answer in "
                "time (%s): is it stalled, or behind a firewall?",
                c->host ? c->host : "?", c->epmd_port,
                c->state == C_EPMD_CONNECT ? "no TCP connection"
                : "no answer to the request");
      return text;
    case C_CONNECT:
      snprintf (text, sizeof text, "the TCP connection to %s port %u timed "
                "out: is a firewall in the way?", c->host ? c->host : "?",
                (unsigned) c->node_port);
      return text;
    case C_HANDSHAKE:
      return "the distribution handshake timed out";
    case C_TLS:
      return c->incoming ? "TLS handshake timed out"
        : "TLS handshake timed out (a plain TCP node waits without a "
          "word: is it a TLS node?)";
    case C_PARKED:
      return "the node said it was connecting to us (status nok), but "
        "did not";
    default:
      return "connection timed out";
    }
}

int64_t
conn_timers_locked (conn *c, int64_t now)
{
  if (c->state != C_UP)
    {
      if (c->deadline && now >= c->deadline)
        {
          kill_conn_locked (c, NODE_ERR_TIMEOUT, timeout_reason (c));
          return -1;
        }
      return c->deadline ? c->deadline - now : -1;
    }
  int64_t next;
  if (!session_ticks (&c->ses, now, &next))
    {
      kill_conn_locked (c, NODE_ERR_TICK, "net tick timeout");
      return -1;
    }
  return next;
}
