/* node-conn.c --- a connection's life: the connection table, EPMD,
   the TCP connect, the handshake, timers, and its death, reported with
   what it took down with it.  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#define _GNU_SOURCE
#include "node-internal.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "digest.h"
#include "epmd.h"

/* ---------------------------------------------------------------- */
/* The table */

conn *
find_conn (long id)
{
  for (conn *c = node_conns; c; c = c->next)
    if (c->id == id)
      return c;
  return NULL;
}

void
free_conn (conn *c)
{
  free_transport (c);
  if (c->fd >= 0)
    close (c->fd);
  free (c->alive);
  free (c->host);
  if (c->cookie)
    {
      digest_wipe (c->cookie, c->cookie_len);
      free (c->cookie);
    }
  free (c->our_name);
  if (c->hs_started)
    hs_free (&c->hs);
  dist_atom_cache_free (c->atom_cache);
  etf_buf_free (&c->in);
  etf_buf_free (&c->early);
  etf_buf_free (&c->out);
  etf_buf_free (&c->pending);
  free (c);
}

conn *
new_conn (conn_kind kind, const char *host, int epmd_port,
          unsigned timeout_ms)
{
  conn *c = calloc (1, sizeof *c);
  if (!c)
    return NULL;
  c->kind = kind;
  c->fd = -1;
  c->state = C_RESOLVING;
  c->epmd_port = epmd_port;
  c->host = strdup (host);
  c->deadline = node_now_ms () + (timeout_ms ? timeout_ms : 10000);
  etf_buf_init (&c->in);
  etf_buf_init (&c->early);
  etf_buf_init (&c->out);
  etf_buf_init (&c->pending);
  if (!c->host)
    {
      free (c);
      return NULL;
    }
  return c;
}

/* ---------------------------------------------------------------- */
/* Nodes we were connected to lately

   When our connection to a node goes down, the node may not have
   noticed yet when we dial it again: it then says it is still connected
   to a node of our name ("alive").  That old connection is ours, and may
   be replaced; any other belongs to someone else using our name.  */

#define GONE_MAX 64

static struct
{
  char *name;        /* our name, a space, the node's as dialled */
  int64_t until;     /* ms: by then the node has noticed for sure */
} gone[GONE_MAX];

/* Who was connected to whom, as a malloc'd string.  */
static char *
gone_key (const conn *c)
{
  char *key = NULL;
  return asprintf (&key, "%s %s@%s", c->our_name, c->alive, c->host) < 0
           ? NULL
           : key;
}

static void
remember_gone (const conn *c)
{
  int64_t now = node_now_ms ();
  int slot = 0;
  for (int k = 0; k < GONE_MAX; k++)
    {
      if (!gone[k].name || gone[k].until < gone[slot].until)
        slot = k;
      if (!gone[k].name)
        break;
    }
  char *name = gone_key (c);
  if (!name)
    return;
  free (gone[slot].name);
  gone[slot].name = name;
  /* The node notices within its tick time; ours is the best guess.  */
  gone[slot].until = now + (c->ticktime_ms ? c->ticktime_ms : 60000) + 5000;
}

/* Did we, under the same name, lately have a connection to C's node?  */
static bool
was_ours (const conn *c)
{
  char *key = gone_key (c);
  if (!key)
    return false;
  int64_t now = node_now_ms ();
  bool found = false;
  for (int k = 0; k < GONE_MAX && !found; k++)
    found = gone[k].name && gone[k].until >= now
            && !strcmp (gone[k].name, key);
  free (key);
  return found;
}

/* ---------------------------------------------------------------- */
/* Death */

/* REASON, and what C still had to send when it is a node connection:
   those messages are lost, and the user must hear of it.  Returns a
   malloc'd string, or NULL when out of memory.  */
static char *
death_reason (const conn *c, const char *reason)
{
  size_t count = 0, bytes = 0;
  if (c->kind == Q_NODE)
    unsent_messages (c, &count, &bytes);
  char *text = NULL;
  int rc = count
             ? asprintf (&text, "%s; %zu message%s (%zu bytes) queued for "
                                "the node %s discarded",
                         reason, count, count == 1 ? "" : "s", bytes,
                         count == 1 ? "was" : "were")
             : asprintf (&text, "%s", reason);
  return rc < 0 ? NULL : text;
}

/* End C (node_lock held): tell Lisp why (unless ERROR is NODE_ERR_NONE:
   a finished query), unlink it and free it.  */
void
kill_conn_locked (conn *c, node_error error, const char *reason)
{
  if (c->close_requested)
    {
      error = NODE_ERR_LOCAL;
      reason = "closed";
    }
  if (error != NODE_ERR_NONE)
    {
      char *text = death_reason (c, reason);
      node_event *ev
        = c->kind == Q_NODE && c->listener && c->state != C_UP
            ? refusal_event (c, error, text ? text : reason)
            : event_failure (c->kind == Q_NODE ? NODE_EV_DOWN
                                               : NODE_EV_EPMD_ERROR,
                             c->id, error, text ? text : reason);
      free (text);
      if (ev)
        emit_locked (ev);
    }
  if (c->kind == Q_NODE && c->state == C_UP)
    remember_gone (c);
  if (c->kind == Q_LISTEN)
    listener_closing_locked (c);
  for (conn **p = &node_conns; *p; p = &(*p)->next)
    if (*p == c)
      {
        *p = c->next;
        break;
      }
  free_conn (c);
}

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

/* Start a non-blocking connect to C's address at PORT.  */
bool
open_socket (conn *c, uint16_t port)
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
  c->fd = fd;
  return true;
}

/* ---------------------------------------------------------------- */
/* Steps */

/* A non-blocking connect finished (or failed).  node_lock held.  */
void
connected_locked (conn *c)
{
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt (c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0)
    {
      char reason[300];
      if (c->state == C_EPMD_CONNECT)
        {
          snprintf (reason, sizeof reason,
                    "no EPMD at %s port %d (%s); is an Erlang node running "
                    "there?", c->host, c->epmd_port, strerror (err));
          kill_conn_locked (c, NODE_ERR_EPMD, reason);
        }
      else
        {
          snprintf (reason, sizeof reason, "cannot connect to %s port %u: %s",
                    c->host, c->node_port, strerror (err));
          kill_conn_locked (c, NODE_ERR_CONNECT, reason);
        }
      return;
    }
  if (c->state == C_EPMD_CONNECT)
    {
      uint8_t req[512];
      size_t n = c->kind == Q_NAMES
                   ? epmd_names_request (req, sizeof req)
                 : c->kind == Q_ALIVE
                   ? epmd_alive2_request (c->node_port, c->alive,
                                          strlen (c->alive), req, sizeof req)
                   : epmd_port_please_request (c->alive, strlen (c->alive),
                                               req, sizeof req);
      if (n == 0)
        {
          kill_conn_locked (c, NODE_ERR_EPMD, "node name too long for EPMD");
          return;
        }
      etf_put_bytes (&c->early, req, n);
      c->state = C_EPMD_WAIT;
      return;
    }
  if (c->tls_ctx)
    start_tls_locked (c, c->tls_ctx);
  else
    start_handshake_locked (c);
}

/* The node's port is connected (and TLS up, if used): start the
   handshake.  */
void
start_handshake_locked (conn *c)
{
  char *dialled = NULL;
  if (asprintf (&dialled, "%s@%s", c->alive, c->host) < 0)
    {
      kill_conn_locked (c, NODE_ERR_PROTOCOL, "out of memory");
      return;
    }
  bool ok = hs_init_initiator (&c->hs, (const uint8_t *) c->our_name,
                               strlen (c->our_name), c->cookie,
                               c->cookie_len, c->flags, c->creation,
                               c->peer_version)
            && hs_expect_peer (&c->hs, (const uint8_t *) dialled,
                               strlen (dialled));
  c->hs_started = true;
  c->hs.replace_old = was_ours (c);
  free (dialled);
  if (!ok)
    {
      kill_conn_locked (c, NODE_ERR_PROTOCOL,
                        c->hs.error ? c->hs.error : "node name too long");
      return;
    }
  put_handshake_out (c);
  c->state = C_HANDSHAKE;
}

/* Start connecting to the node's port, C->node_port.  */
static void
dial_port_locked (conn *c)
{
  if (!open_socket (c, c->node_port))
    {
      char reason[300];
      snprintf (reason, sizeof reason, "cannot connect to %s port %u: %s",
                c->host, c->node_port, strerror (errno));
      kill_conn_locked (c, NODE_ERR_CONNECT, reason);
      return;
    }
  c->state = C_CONNECT;
}

/* A parked attempt dials the node's port again.  */
static void
redial_locked (conn *c)
{
  c->redial_at = 0;
  if (c->hs_started)
    {
      hs_free (&c->hs);    /* the next handshake starts afresh */
      c->hs_started = false;
    }
  dial_port_locked (c);
}

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

/* Timers: connect deadline, ticks.  node_lock held.  Returns the ms until
   the next one.  */
int64_t
timers_locked (conn *c, int64_t now)
{
  if (c->kind == Q_LISTEN)
    return listener_timer_locked (c, now);  /* its tick time is for the
                                               connections it takes */
  if (c->state == C_PARKED && c->redial_at && now >= c->redial_at)
    {
      redial_locked (c);
      return 1;
    }
  if (c->state != C_UP)
    {
      if (c->deadline && now >= c->deadline)
        {
          kill_conn_locked (c, NODE_ERR_TIMEOUT, timeout_reason (c));
          return -1;
        }
      int64_t next = c->deadline ? c->deadline - now : -1;
      if (c->state == C_PARKED && c->redial_at
          && (next < 0 || c->redial_at - now < next))
        next = c->redial_at - now;
      return next;
    }
  if (c->ticktime_ms == 0)
    return -1;
  if (now - c->last_recv >= c->ticktime_ms)
    {
      kill_conn_locked (c, NODE_ERR_TICK, "net tick timeout");
      return -1;
    }
  int64_t quarter = c->ticktime_ms / 4;
  if (now - c->last_send >= quarter && c->out.len == c->out_sent)
    {
      static const uint8_t tick[4];
      etf_put_bytes (&c->out, tick, 4);
      c->last_send = now;
    }
  int64_t next_send = c->last_send + quarter - now;
  int64_t next_recv = c->last_recv + c->ticktime_ms - now;
  int64_t next = next_send < next_recv ? next_send : next_recv;
  return next < 1 ? 1 : next;
}

/* An up connection of ours, under our name, to the node C reaches
   under another host name: same alive name and port.  */
static const conn *
same_node_up (const conn *c)
{
  for (const conn *o = node_conns; o; o = o->next)
    if (o != c && o->kind == Q_NODE && o->state == C_UP
        && o->node_port == c->node_port && !strcmp (o->alive, c->alive)
        && !strcmp (o->our_name, c->our_name))
      return o;
  return NULL;
}

/* The handshake failed: say why in terms the user can act on.  */
static void
handshake_failed_locked (conn *c)
{
  char reason[3 * HS_NAME_ROOM + 300];
  node_error e;
  /* Both dialled at once, and the node's connection to us is the one to
     keep (nok), or is up already (alive, which we answered false).  */
  if ((c->hs.kind == HS_ERR_SIMULTANEOUS
       || c->hs.kind == HS_ERR_NAME_IN_USE)
      && merge_into_incoming_locked (c))
    return;
  if (c->hs.kind == HS_ERR_SIMULTANEOUS)
    {
      park_locked (c);
      return;
    }
  switch (c->hs.kind)
    {
    case HS_ERR_AUTH:
      e = NODE_ERR_AUTH;
      break;
    case HS_ERR_REFUSED:
    case HS_ERR_SIMULTANEOUS:
      e = NODE_ERR_REFUSED;
      break;
    case HS_ERR_NAME_IN_USE:
      /* Let the node read our "false" before we hang up.  */
      flush_locked (c);
      const conn *twin = same_node_up (c);
      if (twin)
        {
          snprintf (reason, sizeof reason,
                    "%s@%s is the node already connected as %s@%s (same "
                    "name, same port): one node, one connection; use "
                    "that name", c->alive, c->host, twin->alive, twin->host);
          kill_conn_locked (c, NODE_ERR_PROTOCOL, reason);
          return;
        }
      snprintf (reason, sizeof reason,
                "%s@%s is already connected to a node named %s (another "
                "Emacs with the same erl-node-name?); that connection was "
                "left alone: give this Emacs another name, or stop the "
                "other one", c->alive, c->host, c->our_name);
      kill_conn_locked (c, NODE_ERR_NAME_IN_USE, reason);
      return;
    case HS_ERR_WRONG_PEER:
      snprintf (reason, sizeof reason,
                "the node at %s calls itself %s, not %s@%s: connect to it "
                "by its own name", c->host, (const char *) c->hs.peer_name,
                c->alive, c->host);
      kill_conn_locked (c, NODE_ERR_PROTOCOL, reason);
      return;
    default:
      e = NODE_ERR_PROTOCOL;
      break;
    }
  kill_conn_locked (c, e, c->hs.error);
}

/* Feed C's handshake what has come in, answering the acceptor's
   question on the way, and queue what it has to say.  False when C
   was killed (its peer speaks TLS where we don't).  */
static bool
feed_handshake_locked (conn *c, hs_status *status)
{
  hs_status st;
  for (;;)
    {
      if (!transport_feed_locked (c, &st))
        return false;
      if (st != HS_DECIDE)
        break;
      /* Deciding may give C the id of our own attempt it takes over.  */
      st = hs_accept_status (&c->hs, incoming_decision_locked (c));
      if (st != HS_CONTINUE)
        break;
    }
  if (c->hs.out.len)
    put_handshake_out (c);
  *status = st;
  return true;
}

void
handshake_input_locked (conn *c)
{
  hs_status st;
  if (!feed_handshake_locked (c, &st))
    return;
  if (c->incoming)
    incoming_handshake_result_locked (c, st);
  else if (st == HS_FAILED)
    handshake_failed_locked (c);
  else if (st == HS_DONE)
    conn_up_locked (c, NODE_EV_UP);
}

void
conn_up_locked (conn *c, node_event_kind kind)
{
  c->state = C_UP;
  c->deadline = 0;
  c->use_header = (c->hs.peer_flags & c->flags
                   & DFLAG_DIST_HDR_ATOM_CACHE) != 0;
  frame_pending_locked (c);
  if (c->use_header)
    {
      c->atom_cache = calloc (1, sizeof *c->atom_cache);
      if (!c->atom_cache)
        {
          kill_conn_locked (c, NODE_ERR_PROTOCOL, "out of memory");
          return;
        }
    }
  c->last_recv = c->last_send = node_now_ms ();
  node_event *ev = event_new (kind, c->id, c->hs.peer_name_len + 1);
  if (ev)
    {
      memcpy (ev->bytes, c->hs.peer_name, c->hs.peer_name_len);
      ev->peer_name = (const char *) ev->bytes;
      ev->peer_creation = c->hs.peer_creation;
      ev->peer_flags = c->hs.peer_flags;
      emit_locked (ev);
    }
  /* The cookie is no longer needed.  */
  digest_wipe (c->cookie, c->cookie_len);
  process_frames_locked (c);
}

/* NAMES: the whole answer, once EPMD has closed.  */
static void
names_answer_locked (conn *c, bool eof)
{
  if (!eof)
    return;
  node_event *ev = event_new (NODE_EV_EPMD_NAMES, c->id, in_len (c));
  if (ev)
    {
      memcpy (ev->bytes, in_data (c), in_len (c));
      ev->data = ev->bytes;
      ev->len = in_len (c);
      emit_locked (ev);
    }
  c->state = C_DEAD;
}

/* EPMD gave the node's port: on to the node itself.  */
static void
dial_node_locked (conn *c, const epmd_node_info *info)
{
  close (c->fd);
  c->fd = -1;
  c->in.len = c->in_start = 0;
  c->node_port = info->port;
  c->peer_version = info->highest_version;
  if (info->highest_version < 5 || info->lowest_version > 6)
    {
      kill_conn_locked (c, NODE_ERR_PROTOCOL,
                        "the node speaks no distribution version we know");
      return;
    }
  dial_port_locked (c);
}

void
epmd_input_locked (conn *c, bool eof)
{
  if (c->kind == Q_NAMES)
    {
      names_answer_locked (c, eof);
      return;
    }
  if (c->kind == Q_ALIVE)
    {
      alive_input_locked (c, eof);
      return;
    }
  const char *why = "malformed EPMD answer";
  epmd_node_info info;
  size_t used;
  epmd_result r = epmd_parse_port2_resp (in_data (c), in_len (c), &info,
                                         &used, &why);
  if (r == EPMD_INCOMPLETE)
    {
      if (eof)
        kill_conn_locked (c, NODE_ERR_EPMD, "EPMD closed without answering");
      return;
    }
  if (r == EPMD_NOT_REGISTERED)
    {
      char reason[300];
      snprintf (reason, sizeof reason,
                "node name %s is not registered with EPMD on %s", c->alive,
                c->host);
      kill_conn_locked (c, NODE_ERR_NOT_REGISTERED, reason);
      return;
    }
  if (r != EPMD_OK)
    {
      kill_conn_locked (c, NODE_ERR_EPMD, why);
      return;
    }
  if (c->kind == Q_NODE)
    {
      dial_node_locked (c, &info);
      return;
    }
  node_event *ev = event_new (NODE_EV_EPMD_PORT, c->id, 0);
  if (ev)
    {
      ev->port = info.port;
      ev->version = info.highest_version;
      emit_locked (ev);
    }
  c->state = C_DEAD;
}
