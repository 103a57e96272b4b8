/* node-listen.c --- Emacs as a node that others reach: the listening
   socket, our registration with EPMD, and the acceptor's side of
   connections that come in.

   The listener takes connections only once EPMD has registered our
   name (its answer gives the creation the handshake must send).  Every
   accepted socket is non-blocking and its handshake runs in the I/O
   thread like any other; a connection that stalls meets its deadline,
   and when too many handshakes are under way the oldest is dropped, so
   a flood of silent connections cannot keep a good node out.  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#define _GNU_SOURCE
#include "node-internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "digest.h"
#include "epmd.h"
#include "tls.h"

/* Connections taken per wake-up: others get their turn in between.  */
#define ACCEPT_BATCH 256
/* How long the listener rests when no descriptor is left for it.  */
#define ACCEPT_PAUSE_MS 200

/* ---------------------------------------------------------------- */
/* Refusals */

/* Who is at the other end of C: its name once it gave one, else its
   address (kept in HOST until then).  */
static const char *
peer_of (const conn *c)
{
  return c->hs_started && c->hs.peer_name_len
           ? (const char *) c->hs.peer_name
           : c->host;
}

node_event *
refusal_event (const conn *c, node_error error, const char *reason)
{
  const char *peer = peer_of (c);
  size_t plen = strlen (peer), rlen = strlen (reason);
  node_event *ev = event_new (NODE_EV_REFUSED, c->id, plen + rlen + 2);
  if (ev)
    {
      char *p = (char *) ev->bytes;
      memcpy (p, peer, plen + 1);
      memcpy (p + plen + 1, reason, rlen + 1);
      ev->error = error;
      ev->peer_name = p;
      ev->reason = p + plen + 1;
    }
  return ev;
}

/* Drop C, an incoming connection, after sending what it has queued (a
   status the node should read).  */
static void
refuse_locked (conn *c, node_error error, const char *reason)
{
  flush_locked (c);
  kill_conn_locked (c, error, reason);
}

/* ---------------------------------------------------------------- */
/* Accepting */

static conn *
find_listener (long id)
{
  conn *l = find_conn (id);
  return l && l->kind == Q_LISTEN ? l : NULL;
}

/* Handshakes under way through L, and the oldest of them.  */
static size_t
pending_handshakes (const conn *l, conn **oldest)
{
  size_t n = 0;
  *oldest = NULL;
  for (conn *c = node_conns; c; c = c->next)
    if (c->incoming && c->listener == l->id
        && (c->state == C_HANDSHAKE || c->state == C_TLS))
      {
        n++;
        if (!*oldest || c->id < (*oldest)->id)
          *oldest = c;
      }
  return n;
}

/* "ADDRESS port PORT" of a peer, as a malloc'd string.  */
static char *
address_text (const struct sockaddr_storage *a)
{
  char host[INET6_ADDRSTRLEN] = "?";
  unsigned port = 0;
  if (a->ss_family == AF_INET)
    {
      const struct sockaddr_in *in = (const struct sockaddr_in *) a;
      inet_ntop (AF_INET, &in->sin_addr, host, sizeof host);
      port = ntohs (in->sin_port);
    }
  else if (a->ss_family == AF_INET6)
    {
      const struct sockaddr_in6 *in = (const struct sockaddr_in6 *) a;
      inet_ntop (AF_INET6, &in->sin6_addr, host, sizeof host);
      port = ntohs (in->sin6_port);
    }
  char *text = NULL;
  return asprintf (&text, "%s port %u", host, port) < 0 ? NULL : text;
}

/* A connection for socket FD, accepted by L from ADDR.  */
static void
take_connection_locked (conn *l, int fd, const struct sockaddr_storage *addr)
{
  char *where = address_text (addr);
  conn *c = where ? new_conn (Q_NODE, where, 0, l->handshake_timeout_ms)
                  : NULL;
  free (where);
  if (!c)
    {
      close (fd);
      return;
    }
  c->fd = fd;
  c->incoming = true;
  c->listener = l->id;
  c->state = C_HANDSHAKE;
  c->our_name = strdup (l->our_name);
  c->cookie = malloc (l->cookie_len ? l->cookie_len : 1);
  c->creation = l->creation;
  c->flags = l->flags;
  c->ticktime_ms = l->ticktime_ms;
  c->max_message = l->max_message;
  c->max_depth = l->max_depth;
  c->max_send_queue = l->max_send_queue;
  c->id = node_new_id_locked ();
  c->next = node_conns;
  node_conns = c;
  if (!c->our_name || !c->cookie)
    {
      kill_conn_locked (c, NODE_ERR_PROTOCOL, "out of memory");
      return;
    }
  memcpy (c->cookie, l->cookie, l->cookie_len);
  c->cookie_len = l->cookie_len;
  int one = 1;
  setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  bool ok = hs_init_acceptor (&c->hs, (const uint8_t *) c->our_name,
                              strlen (c->our_name), c->cookie, c->cookie_len,
                              c->flags, c->creation);
  c->hs_started = true;
  if (!ok)
    kill_conn_locked (c, NODE_ERR_PROTOCOL, c->hs.error);
  else if (l->tls_ctx)
    start_tls_locked (c, l->tls_ctx);
}

void
accept_locked (conn *l)
{
  long id = l->id;
  for (int k = 0; k < ACCEPT_BATCH && (l = find_listener (id)); k++)
    {
      struct sockaddr_storage addr;
      socklen_t len = sizeof addr;
      int fd = accept4 (l->fd, (struct sockaddr *) &addr, &len,
                        SOCK_NONBLOCK | SOCK_CLOEXEC);
      conn *oldest;
      size_t pending = pending_handshakes (l, &oldest);
      if (fd < 0)
        {
          if (errno == EINTR || errno == ECONNABORTED)
            continue;
          /* Out of descriptors: the oldest handshake makes room.  */
          if ((errno == EMFILE || errno == ENFILE) && oldest)
            {
              kill_conn_locked (oldest, NODE_ERR_REFUSED,
                                "dropped: no file descriptors left for "
                                "new connections");
              continue;
            }
          if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS
              || errno == ENOMEM)
            l->deadline = node_now_ms () + ACCEPT_PAUSE_MS;
          return;
        }
      if (pending >= l->max_pending && oldest)
        kill_conn_locked (oldest, NODE_ERR_REFUSED,
                          "dropped: too many handshakes under way "
                          "(derl-listen-max-pending)");
      take_connection_locked (l, fd, &addr);
    }
}

int64_t
listener_timer_locked (conn *l, int64_t now)
{
  if (l->deadline && now >= l->deadline)
    l->deadline = 0;
  return l->deadline ? l->deadline - now : -1;
}

/* ---------------------------------------------------------------- */
/* The acceptor's handshake */

/* Another connection of ours to the node named NAME (alive@host), under
   our name OUR: dialled, or come in earlier.  */
static conn *
other_conn_to (const conn *c, const char *name)
{
  for (conn *o = node_conns; o; o = o->next)
    {
      if (o == c || o->kind != Q_NODE || !o->alive || !o->host
          || !o->our_name || strcmp (o->our_name, c->our_name))
        continue;
      size_t alen = strlen (o->alive);
      if (!strncmp (name, o->alive, alen) && name[alen] == '@'
          && !strcmp (name + alen + 1, o->host))
        return o;
    }
  return NULL;
}

/* Erlang compares node names as atoms: by their characters, which for
   UTF-8 is their bytes.  */
static int
compare_names (const char *a, const char *b)
{
  return strcmp (a, b);
}

/* C, an incoming connection, takes over O, our own attempt to reach
   the same node (a simultaneous connect we give up): O's id, and what
   was queued on it, so the connection Lisp knows simply comes up.  */
static void
take_over_locked (conn *c, conn *o)
{
  etf_buf pending = o->pending;
  o->pending = c->pending;
  c->pending = pending;
  long id = o->id;
  for (conn **p = &node_conns; *p; p = &(*p)->next)
    if (*p == o)
      {
        *p = o->next;
        break;
      }
  free_conn (o);
  c->id = id;
  c->listener = 0;
}

/* An incoming connection, past its name, from the node C dials.  */
static conn *
incoming_from (const conn *c)
{
  for (conn *o = node_conns; o; o = o->next)
    if (o != c && o->incoming && o->kind == Q_NODE && o->alive && o->host
        && (o->state == C_UP || o->hs.state != HS_AWAIT_NAME)
        && !strcmp (o->alive, c->alive) && !strcmp (o->host, c->host)
        && !strcmp (o->our_name, c->our_name))
      return o;
  return NULL;
}

bool
merge_into_incoming_locked (conn *c)
{
  conn *in = incoming_from (c);
  if (!in)
    return false;
  flush_locked (c);  /* our answer to status alive */
  if (in->state == C_UP)
    {
      /* Frame what waited for C as IN frames, and queue it there.  */
      c->use_header = in->use_header;
      frame_pending_locked (c);
      etf_put_bytes (&in->out, c->out.data, c->out.len);
      node_wake_io_thread ();
    }
  else
    etf_put_bytes (&in->pending, c->pending.data, c->pending.len);
  node_event *ev = event_new (NODE_EV_MERGED, c->id, 0);
  if (ev)
    {
      ev->into = in->id;
      emit_locked (ev);
    }
  kill_conn_locked (c, NODE_ERR_NONE, "merged");
  return true;
}

/* How long a parked attempt waits before dialling again when Emacs
   listens nowhere: the node's own attempt to reach us then fails at
   once (we are in no EPMD), and its half-open entry for us soon goes.  */
#define REDIAL_MS 200

static bool
listening_locked (void)
{
  for (const conn *o = node_conns; o; o = o->next)
    if (o->kind == Q_LISTEN && o->accepting)
      return true;
  return false;
}

void
park_locked (conn *c)
{
  end_tls_session (c);
  close (c->fd);
  c->fd = -1;
  c->in.len = c->in_start = 0;
  c->early.len = 0;
  c->state = C_PARKED;
  c->redial_at = listening_locked () ? 0 : node_now_ms () + REDIAL_MS;
}

/* Refuse C with status not_allowed, for reason WHY.  */
static hs_accept_decision
not_allowed (conn *c, const char *why)
{
  c->why_not = why;
  return HS_ACCEPT_NOT_ALLOWED;
}

hs_accept_decision
incoming_decision_locked (conn *c)
{
  const char *name = (const char *) c->hs.peer_name;
  const char *at = strchr (name, '@');
  free (c->alive);
  free (c->host);
  c->alive = strndup (name, (size_t) (at - name));
  c->host = strdup (at + 1);
  if (!c->alive || !c->host)
    return not_allowed (c, "out of memory");
  if (!strcmp (name, c->our_name))
    return not_allowed (c, "the node calls itself by Emacs's own name "
                           "(status not_allowed)");
  /* Long names (host.domain) and short ones never meet, as in Erlang. */
  const char *our_host = strchr (c->our_name, '@');
  if (our_host
      && (strchr (c->host, '.') == NULL) != (strchr (our_host, '.') == NULL))
    return not_allowed (c, "the node's name is long and Emacs's short, or "
                           "the other way round (status not_allowed)");
  conn *o = other_conn_to (c, name);
  if (!o)
    return HS_ACCEPT_OK;
  if (o->state == C_UP)
    {
      /* It reaches us again while we think the old connection up: it
         restarted, or lost that one without our noticing.  It says.  */
      c->replaces = o->id;
      return HS_ACCEPT_ALIVE;
    }
  if (o->incoming)
    return HS_ACCEPT_NOK;  /* one handshake from a node at a time */
  /* Both dial at once: the node with the greater name keeps its own
     attempt.  An attempt of ours that the node already answered with
     nok waits for this very connection.  */
  if (o->state != C_PARKED && compare_names (c->our_name, name) > 0)
    return HS_ACCEPT_NOK;
  take_over_locked (c, o);
  return HS_ACCEPT_SIMULTANEOUS;
}

/* Why the handshake of C failed, for the user.  */
static void
incoming_failed_locked (conn *c)
{
  node_error e;
  switch (c->hs.kind)
    {
    case HS_ERR_AUTH:
      e = NODE_ERR_AUTH;
      break;
    case HS_ERR_REFUSED:
    case HS_ERR_NAME_IN_USE:
      e = NODE_ERR_REFUSED;
      break;
    default:
      e = NODE_ERR_PROTOCOL;
      break;
    }
  refuse_locked (c, e, c->why_not ? c->why_not
                      : c->hs.error ? c->hs.error
                                    : "handshake failed");
}

void
incoming_handshake_result_locked (conn *c, hs_status st)
{
  long id = c->id;
  if (st == HS_FAILED)
    {
      incoming_failed_locked (c);
      return;
    }
  if (st != HS_DONE)
    return;
  if (c->hs.replaces_old && c->replaces)
    {
      conn *old = find_conn (c->replaces);
      if (old && old != c)
        kill_conn_locked (old, NODE_ERR_CLOSED,
                          "the node connected again (it restarted, or lost "
                          "this connection): replaced by the new one");
    }
  if ((c = find_conn (id)))
    conn_up_locked (c, c->listener ? NODE_EV_ACCEPTED : NODE_EV_UP);
}

/* ---------------------------------------------------------------- */
/* Registration with EPMD */

void
alive_input_locked (conn *c, bool eof)
{
  conn *l = find_listener (c->listener);
  if (l && l->accepting)
    {
      /* Registered: EPMD has nothing more to say until it closes, and
         then our name is gone from it.  */
      in_consume (c, in_len (c));
      if (eof)
        kill_conn_locked (c, NODE_ERR_EPMD,
                          "EPMD closed our registration: other nodes can "
                          "no longer look Emacs up (is EPMD still "
                          "running?)");
      return;
    }
  uint32_t creation = 0;
  size_t used;
  const char *why = "malformed EPMD answer";
  epmd_result r = epmd_parse_alive2_resp (in_data (c), in_len (c),
                                          &creation, &used, &why);
  if (r == EPMD_INCOMPLETE)
    {
      if (eof)
        kill_conn_locked (c, NODE_ERR_EPMD,
                          "EPMD closed without answering our registration");
      return;
    }
  if (r == EPMD_REFUSED)
    {
      char reason[400];
      snprintf (reason, sizeof reason,
                "EPMD refused to register the name %s: another node (or "
                "Emacs) already uses it; choose another name",
                c->alive);
      kill_conn_locked (c, NODE_ERR_NAME_IN_USE, reason);
      return;
    }
  if (r != EPMD_OK || !l)
    {
      kill_conn_locked (c, NODE_ERR_EPMD, l ? why : "the listener is gone");
      return;
    }
  in_consume (c, used);
  c->deadline = 0;  /* the registration stays open */
  l->creation = creation;
  l->accepting = true;
  node_event *ev = event_new (NODE_EV_LISTENING, l->id, 0);
  if (ev)
    {
      ev->port = c->node_port;
      ev->peer_creation = creation;
      emit_locked (ev);
    }
}

void
listener_closing_locked (conn *l)
{
  /* No kills from here (the caller may be walking the list): they go
     at their deadline, now past.  */
  conn *alive = find_conn (l->alive_id);
  if (alive && alive->kind == Q_ALIVE)
    {
      alive->close_requested = true;
      alive->deadline = 1;
    }
  for (conn *c = node_conns; c; c = c->next)
    if (c->incoming && c->listener == l->id
        && (c->state == C_HANDSHAKE || c->state == C_TLS))
      {
        c->close_requested = true;
        c->deadline = 1;
      }
  node_wake_io_thread ();
}

/* ---------------------------------------------------------------- */
/* The main thread's side */

/* A socket listening at ADDRESS (numeric) and PORT; -1 with ERROR.  */
static int
listen_socket (const char *address, int port, int *bound, char *error,
               size_t error_len)
{
  struct addrinfo hints, *res = NULL;
  memset (&hints, 0, sizeof hints);
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
  char service[16];
  snprintf (service, sizeof service, "%d", port);
  int rc = getaddrinfo (address, service, &hints, &res);
  if (rc != 0)
    {
      snprintf (error, error_len,
                "cannot listen at %s: not a numeric IP address (%s)",
                address, gai_strerror (rc));
      return -1;
    }
  int fd = socket (res->ai_family,
                   SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  if (fd >= 0)
    setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (fd < 0 || bind (fd, res->ai_addr, res->ai_addrlen) < 0
      || listen (fd, SOMAXCONN) < 0)
    {
      snprintf (error, error_len, "cannot listen at %s port %d: %s",
                address, port, strerror (errno));
      if (fd >= 0)
        close (fd);
      freeaddrinfo (res);
      return -1;
    }
  freeaddrinfo (res);
  struct sockaddr_storage a;
  socklen_t alen = sizeof a;
  getsockname (fd, (struct sockaddr *) &a, &alen);
  *bound = ntohs (a.ss_family == AF_INET6
                    ? ((struct sockaddr_in6 *) &a)->sin6_port
                    : ((struct sockaddr_in *) &a)->sin_port);
  return fd;
}

long
node_listen (const node_listen_args *a, int *port, long *alive_id,
             char *error, size_t error_len)
{
  if (a->epmd_port < 1 || a->epmd_port > 65535 || a->port < 0
      || a->port > 65535)
    {
      snprintf (error, error_len, "port numbers go from 1 to 65535");
      tls_context_free (a->tls);
      return -1;
    }
  if (!a->alive[0] || strlen (a->alive) > EPMD_MAX_NAME)
    {
      snprintf (error, error_len,
                "the node name before the @ must have 1 to %d bytes",
                EPMD_MAX_NAME);
      tls_context_free (a->tls);
      return -1;
    }
  int fd = listen_socket (a->address, a->port, port, error, error_len);
  if (fd < 0)
    {
      tls_context_free (a->tls);
      return -1;
    }
  conn *l = new_conn (Q_LISTEN, a->address, a->epmd_port, 0);
  if (l)
    l->tls_ctx = a->tls;
  else
    tls_context_free (a->tls);
  conn *r = new_conn (Q_ALIVE, "localhost", a->epmd_port,
                      a->handshake_timeout_ms);
  if (l)
    {
      l->fd = fd;
      l->our_name = strdup (a->our_name);
      l->cookie = malloc (a->cookie_len ? a->cookie_len : 1);
    }
  if (r)
    r->alive = strdup (a->alive);
  if (!l || !r || !l->our_name || !l->cookie || !r->alive)
    {
      if (l)
        free_conn (l);
      else
        close (fd);
      if (r)
        free_conn (r);
      snprintf (error, error_len, "out of memory");
      return -1;
    }
  memcpy (l->cookie, a->cookie, a->cookie_len);
  l->cookie_len = a->cookie_len;
  l->state = C_UP;  /* no deadline, no ticks */
  l->deadline = 0;
  l->flags = a->flags;
  l->ticktime_ms = a->ticktime_ms;
  l->handshake_timeout_ms = a->handshake_timeout_ms;
  l->max_message = a->max_message;
  l->max_depth = a->max_depth;
  l->max_send_queue = a->max_send_queue;
  l->max_pending = a->max_pending ? a->max_pending : 1;
  r->node_port = (uint16_t) *port;

  pthread_mutex_lock (&node_lock);
  if (!node_is_running)
    {
      pthread_mutex_unlock (&node_lock);
      free_conn (l);
      free_conn (r);
      snprintf (error, error_len, "the derl I/O thread is not running");
      return -1;
    }
  l->id = node_new_id_locked ();
  r->id = node_new_id_locked ();
  l->alive_id = r->id;
  r->listener = l->id;
  l->next = node_conns;
  r->next = l;
  node_conns = r;
  long id = l->id;
  *alive_id = r->id;
  if (!start_resolver (r))
    kill_conn_locked (r, NODE_ERR_HOST, "cannot start a resolver thread");
  node_wake_io_thread ();
  pthread_mutex_unlock (&node_lock);
  return id;
}
