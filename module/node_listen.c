/* node_listen.c --- Emacs as a node that others reach: the listening
   socket, our registration with EPMD, and the acceptor's side of
   connections that come in.

   The listener takes connections only once EPMD has registered our
   name (its answer gives the creation the handshake must send).  Every
   accepted socket is non-blocking and its handshake runs in the I/O
   thread like any other; a connection that stalls meets its deadline,
   and when too many handshakes are under way one is dropped (the
   oldest from the newcomer's address, else the oldest), so a flood of
   silent connections cannot keep a good node out.  Connections that
   never get in are counted by address and reported to Lisp in
   aggregate; an address that keeps failing is held back.  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#define _GNU_SOURCE
#include "node_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "epmd.h"
#include "tls.h"

/* Connections taken per wake-up: others get their turn in between.  */
#define ACCEPT_BATCH 256
/* How long the listener rests when no descriptor is left for it.  */
#define ACCEPT_PAUSE_MS 200

static conn *
find_listener (long id)
{
  conn *l = find_conn_locked (id);
  return l && l->kind == Q_LISTEN ? l : NULL;
}

/* ---------------------------------------------------------------- */
/* Refusals, counted by address */

/* A peer that has not done the handshake is known by its address
   only: whatever name it claims is not Lisp's business.  Refusals are
   counted here, by address, in a fixed table shared by every listener
   (a flood from many addresses costs no memory); each address is
   reported at most once a REPORT_MS, with its counts, in a REFUSED
   event, and no more than MAX_QUEUED_REPORTS such events wait for Lisp
   at once (reports due meanwhile wait, still counting).  When the
   table is full, the address seen longest ago makes room, its
   unreported counts going to one entry for the other addresses.  An
   address that fails too often is held back: its connections are
   closed at once, unheard, for a time that doubles each time.  What
   counts as its failure is what its peers did (a bad or wrong answer,
   a close, silence until the deadline), not a drop of ours to make
   room: that one may have been a good node that was slow.  */
#define ADDR_SLOTS 256
#define REPORT_MS 1000
#define MAX_QUEUED_REPORTS 32
/* When Lisp has not taken the reports queued, try again this soon.  */
#define REPORT_RETRY_MS 100
#define NAME_SAMPLE 64
#define REASON_ROOM 200

typedef struct
{
  long listener;          /* 0: free */
  uint8_t addr[16];       /* IPv4 in the first 4 bytes */
  uint8_t addr_len;       /* 4, or 16 for IPv6 */
  int64_t seen;           /* last refused or closed */
  /* Holding back.  */
  int64_t window_start;
  unsigned failures;      /* since WINDOW_START */
  unsigned holds;         /* times held back lately */
  int64_t last_failure;
  int64_t hold_until;
  /* Not reported yet.  */
  uint32_t refused, closed;
  int64_t reported_at;
  node_error error;
  char reason[REASON_ROOM];
  char name[NAME_SAMPLE + 4];
} addr_slot;

static addr_slot addr_slots[ADDR_SLOTS];
/* The addresses that lost their slot before they were reported.  */
static addr_slot other_addrs;

_Static_assert (offsetof (node_event, bytes) % _Alignof (node_refusal) == 0,
                "a node_refusal fits at the start of an event's bytes");

/* The key of address A: its 4 or 16 bytes (an IPv4 address mapped
   into IPv6 as IPv4); false for other families.  */
static bool
addr_key (const struct sockaddr_storage *a, uint8_t key[16], uint8_t *len)
{
  if (a->ss_family == AF_INET)
    {
      memcpy (key, &((const struct sockaddr_in *) a)->sin_addr, 4);
      *len = 4;
      return true;
    }
  if (a->ss_family == AF_INET6)
    {
      const struct in6_addr *in6
        = &((const struct sockaddr_in6 *) a)->sin6_addr;
      if (IN6_IS_ADDR_V4MAPPED (in6))
        {
          memcpy (key, in6->s6_addr + 12, 4);
          *len = 4;
        }
      else
        {
          memcpy (key, in6->s6_addr, 16);
          *len = 16;
        }
      return true;
    }
  return false;
}

static bool
slot_waits (const addr_slot *s)
{
  return s->refused || s->closed;
}

/* The slot of the address KEY (LEN bytes) under LISTENER, or NULL.  */
static addr_slot *
find_slot (long listener, const uint8_t *key, uint8_t len)
{
  for (int k = 0; k < ADDR_SLOTS; k++)
    if (addr_slots[k].listener == listener && addr_slots[k].addr_len == len
        && !memcmp (addr_slots[k].addr, key, len))
      return &addr_slots[k];
  return NULL;
}

/* Add what S has not reported to the entry for the other addresses.  */
static void
fold_into_others (const addr_slot *s)
{
  if (other_addrs.listener != s->listener)
    {
      memset (&other_addrs, 0, sizeof other_addrs);
      other_addrs.listener = s->listener;
    }
  other_addrs.refused += s->refused;
  other_addrs.closed += s->closed;
  if (s->refused)
    {
      other_addrs.error = s->error;
      memcpy (other_addrs.reason, s->reason, sizeof s->reason);
      memcpy (other_addrs.name, s->name, sizeof s->name);
    }
}

/* A slot for the address KEY under listener L: its own, or a free
   one, or the one seen longest ago (idle ones first).  */
static addr_slot *
slot_for (const conn *l, const uint8_t *key, uint8_t len, int64_t now)
{
  addr_slot *s = find_slot (l->id, key, len);
  if (s)
    return s;
  addr_slot *idle = NULL, *any = NULL;
  for (int k = 0; k < ADDR_SLOTS; k++)
    {
      addr_slot *t = &addr_slots[k];
      if (!t->listener)
        {
          idle = t;
          break;
        }
      bool busy = slot_waits (t) || t->hold_until > now
                  || (t->listener == l->id
                      && now - t->window_start < l->failure_window_ms);
      if (!busy && (!idle || t->seen < idle->seen))
        idle = t;
      if (!any || t->seen < any->seen)
        any = t;
    }
  s = idle ? idle : any;
  if (slot_waits (s))
    fold_into_others (s);
  memset (s, 0, sizeof *s);
  s->listener = l->id;
  memcpy (s->addr, key, len);
  s->addr_len = len;
  return s;
}

/* The address of slot S, numeric.  */
static void
slot_address (const addr_slot *s, char *text, size_t size)
{
  if (s == &other_addrs)
    snprintf (text, size, "other addresses");
  else if (!inet_ntop (s->addr_len == 4 ? AF_INET : AF_INET6, s->addr, text,
                       (socklen_t) size))
    snprintf (text, size, "?");
}

/* Report S now: a REFUSED event with its counts, which start again.  */
static void
report_locked (const conn *l, addr_slot *s, int64_t now)
{
  char address[INET6_ADDRSTRLEN + 16];
  slot_address (s, address, sizeof address);
  size_t alen = strlen (address) + 1, nlen = strlen (s->name) + 1,
         rlen = strlen (s->reason) + 1;
  node_event *ev = event_new (NODE_EV_REFUSED, l->id,
                              sizeof (node_refusal) + alen + nlen + rlen);
  if (ev)
    {
      node_refusal *r = (node_refusal *) ev->bytes;
      char *p = (char *) (r + 1);
      memcpy (p, address, alen);
      r->address = p;
      p += alen;
      memcpy (p, s->name, nlen);
      r->name = s->name[0] ? p : NULL;
      p += nlen;
      memcpy (p, s->reason, rlen);
      ev->reason = p;
      ev->error = s->refused ? s->error : NODE_ERR_REFUSED;
      r->refused = s->refused;
      r->closed = s->closed;
      r->hold_ms = s->hold_until > now ? (uint32_t) (s->hold_until - now) : 0;
      emit_locked (ev);
    }
  s->refused = s->closed = 0;
  s->name[0] = 0;
  s->reported_at = now;
}

/* Report S if it is due and there is room; else see that the
   listener's timer comes back to it.  */
static void
report_if_due_locked (conn *l, addr_slot *s, int64_t now)
{
  if (!slot_waits (s))
    return;
  int64_t due = s->reported_at + REPORT_MS;
  if (now >= due || !s->reported_at)
    {
      if (events_refusals_queued_locked () < MAX_QUEUED_REPORTS)
        {
          report_locked (l, s, now);
          return;
        }
      due = now + REPORT_RETRY_MS;
    }
  if (!l->report_at || due < l->report_at)
    l->report_at = due;
}

/* The listener's timer went off: send the reports that are due.  */
static void
reports_locked (conn *l, int64_t now)
{
  l->report_at = 0;
  for (int k = 0; k < ADDR_SLOTS; k++)
    if (addr_slots[k].listener == l->id)
      report_if_due_locked (l, &addr_slots[k], now);
  if (other_addrs.listener == l->id)
    report_if_due_locked (l, &other_addrs, now);
}

/* A failure of address S under L: held back when it fails too often.  */
static void
count_failure (const conn *l, addr_slot *s, int64_t now)
{
  if (!l->max_failures)
    return;
  /* Quiet for long enough: forgiven.  */
  if (s->last_failure
      && now - s->last_failure
           > (int64_t) l->max_hold_back_ms + l->failure_window_ms)
    s->holds = 0;
  s->last_failure = now;
  /* Held back already: this one was under way when the hold began.  */
  if (s->hold_until > now)
    return;
  if (now - s->window_start >= l->failure_window_ms)
    {
      s->window_start = now;
      s->failures = 0;
    }
  if (++s->failures < l->max_failures)
    return;
  int64_t hold = (int64_t) l->hold_back_ms << (s->holds < 20 ? s->holds : 20);
  if (hold > l->max_hold_back_ms)
    hold = l->max_hold_back_ms;
  s->hold_until = now + hold;
  s->holds++;
  s->failures = 0;
  s->window_start = now;
}

/* TEXT, a name a peer claims, as printable ASCII of at most NAME_SAMPLE
   bytes (and "..." when cut) in SAMPLE.  */
static void
sample_name (const uint8_t *text, size_t len, char *sample)
{
  size_t n = len < NAME_SAMPLE ? len : NAME_SAMPLE;
  for (size_t k = 0; k < n; k++)
    sample[k] = text[k] > 0x20 && text[k] < 0x7f ? (char) text[k] : '?';
  strcpy (sample + n, len > NAME_SAMPLE ? "..." : "");
}

/* C, an incoming connection, is dropped before it came up: count it
   against its address, which may be held back, and report it in a
   REFUSED event when one is due.  Returns the event Lisp needs about C
   itself, if any (a DOWN when an attempt of ours goes on as C).  */
static node_event *
refusal_event (const conn *c, node_error error, const char *reason)
{
  conn *l = find_listener (c->listener);
  uint8_t key[16], len;
  if (l && error != NODE_ERR_LOCAL && addr_key (&c->addr, key, &len))
    {
      int64_t now = node_now_ms ();
      addr_slot *s = slot_for (l, key, len, now);
      s->seen = now;
      s->refused++;
      s->error = error;
      snprintf (s->reason, sizeof s->reason, "%s", reason);
      if (c->ses.hs_started && c->ses.hs.peer_name_len)
        sample_name (c->ses.hs.peer_name, c->ses.hs.peer_name_len, s->name);
      else
        s->name[0] = 0;
      if (!c->dropped)
        count_failure (l, s, now);
      report_if_due_locked (l, s, now);
    }
  return c->merged ? event_failure (NODE_EV_DOWN, c->id, error, reason)
                   : NULL;
}

/* Is the address of a connection L is taking held back?  Then count
   it as closed.  */
static bool
held_back_locked (conn *l, const struct sockaddr_storage *addr, int64_t now)
{
  uint8_t key[16], len;
  addr_slot *s = addr_key (addr, key, &len) ? find_slot (l->id, key, len)
                                            : NULL;
  if (!s || s->hold_until <= now)
    return false;
  s->seen = now;
  s->closed++;
  report_if_due_locked (l, s, now);
  return true;
}

/* L closes: forget its addresses.  */
static void
forget_addresses (long listener)
{
  for (int k = 0; k < ADDR_SLOTS; k++)
    if (addr_slots[k].listener == listener)
      memset (&addr_slots[k], 0, sizeof addr_slots[k]);
  if (other_addrs.listener == listener)
    memset (&other_addrs, 0, sizeof other_addrs);
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

/* Handshakes under way through L, and the one to drop when there are
   too many: the oldest from ADDR, the address of the connection to
   take, when it has one under way (a flood from one address takes its
   own turns), else the oldest.  */
static size_t
pending_handshakes (const conn *l, const struct sockaddr_storage *addr,
                    conn **victim)
{
  size_t n = 0;
  conn *oldest = NULL, *oldest_same = NULL;
  uint8_t key[16], len = 0, other[16], olen;
  if (addr && !addr_key (addr, key, &len))
    len = 0;
  for (conn *c = node_conns; c; c = c->next)
    if (c->incoming && c->listener == l->id
        && (c->state == C_HANDSHAKE || c->state == C_TLS))
      {
        n++;
        if (!oldest || c->id < oldest->id)
          oldest = c;
        if (len && (!oldest_same || c->id < oldest_same->id)
            && addr_key (&c->addr, other, &olen) && olen == len
            && !memcmp (key, other, len))
          oldest_same = c;
      }
  *victim = oldest_same ? oldest_same : oldest;
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
  conn *c = where ? new_conn (Q_NODE, where, 0, &l->ses.limits) : NULL;
  free (where);
  if (!c)
    {
      close (fd);
      return;
    }
  c->net.fd = fd;
  c->net.ctx = NULL;
  c->addr = *addr;
  c->addr_len = sizeof *addr;
  c->incoming = true;
  c->listener = l->id;
  c->failure_event = refusal_event;
  c->state = C_HANDSHAKE;
  link_conn_locked (c);
  const session *ls = &l->ses;
  if (!session_set_identity (&c->ses, ls->our_name, ls->cookie,
                             ls->cookie_len, ls->creation, ls->flags))
    {
      kill_conn_locked (c, NODE_ERR_PROTOCOL, "out of memory");
      return;
    }
  int one = 1;
  setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (!session_start_acceptor (&c->ses))
    kill_conn_locked (c, NODE_ERR_PROTOCOL, c->ses.hs.error);
  else if (l->net.ctx && start_tls_locked (c, l->net.ctx))
    incoming_tls_step_locked (c);
}

void
accept_locked (conn *l)
{
  long id = l->id;
  for (int k = 0; k < ACCEPT_BATCH && (l = find_listener (id)); k++)
    {
      struct sockaddr_storage addr;
      socklen_t len = sizeof addr;
      int fd = accept4 (l->net.fd, (struct sockaddr *) &addr, &len,
                        SOCK_NONBLOCK | SOCK_CLOEXEC);
      conn *victim;
      if (fd < 0)
        {
          if (errno == EINTR || errno == ECONNABORTED)
            continue;
          /* Out of descriptors: the oldest handshake makes room.  */
          if ((errno == EMFILE || errno == ENFILE)
              && pending_handshakes (l, NULL, &victim) && victim)
            {
              victim->dropped = true;
              kill_conn_locked (victim, NODE_ERR_REFUSED,
                                "dropped: no file descriptors left for "
                                "new connections");
              continue;
            }
          if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS
              || errno == ENOMEM)
            l->deadline = node_now_ms () + ACCEPT_PAUSE_MS;
          return;
        }
      if (held_back_locked (l, &addr, node_now_ms ()))
        {
          close (fd);
          continue;
        }
      if (pending_handshakes (l, &addr, &victim) >= l->max_pending && victim)
        {
          victim->dropped = true;
          kill_conn_locked (victim, NODE_ERR_REFUSED,
                            "dropped: too many handshakes under way "
                            "(derl-listen-max-pending)");
        }
      take_connection_locked (l, fd, &addr);
    }
}

int64_t
listener_timer_locked (conn *l, int64_t now)
{
  if (l->deadline && now >= l->deadline)
    l->deadline = 0;
  if (l->report_at && now >= l->report_at)
    reports_locked (l, now);
  int64_t next = l->deadline ? l->deadline - now : -1;
  if (l->report_at && (next < 0 || l->report_at - now < next))
    next = l->report_at - now;
  return next;
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
          || !o->ses.our_name || strcmp (o->ses.our_name, c->ses.our_name))
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
  session_swap_pending (&o->ses, &c->ses);
  long id = o->id;
  unlink_conn_locked (o);
  c->id = id;
  c->listener = 0;
  c->failure_event = NULL;
}

/* An incoming connection, past its name, from the node C dials.  */
static conn *
incoming_from (const conn *c)
{
  for (conn *o = node_conns; o; o = o->next)
    if (o != c && o->incoming && o->kind == Q_NODE && o->alive && o->host
        && (o->state == C_UP || o->ses.hs.state != HS_AWAIT_NAME)
        && !strcmp (o->alive, c->alive) && !strcmp (o->host, c->host)
        && !strcmp (o->ses.our_name, c->ses.our_name))
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
  session_move_queue (&c->ses, &in->ses);
  if (in->state == C_UP)
    node_wake_io_thread ();
  else
    in->merged = true;
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
  transport_close (&c->net);
  session_restart (&c->ses);
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

/* The peer's name is known: the answer net_kernel would give.  */
static hs_accept_decision
incoming_decision_locked (void *arg)
{
  conn *c = arg;
  const char *name = (const char *) c->ses.hs.peer_name;
  const char *at = strchr (name, '@');
  free (c->alive);
  free (c->host);
  c->alive = strndup (name, (size_t) (at - name));
  c->host = strdup (at + 1);
  if (!c->alive || !c->host)
    return not_allowed (c, "out of memory");
  if (!strcmp (name, c->ses.our_name))
    return not_allowed (c, "the node calls itself by Emacs's own name "
                           "(status not_allowed)");
  /* Long names (host.domain) and short ones never meet, as in Erlang. */
  const char *our_host = strchr (c->ses.our_name, '@');
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
  if (o->state != C_PARKED && compare_names (c->ses.our_name, name) > 0)
    return HS_ACCEPT_NOK;
  take_over_locked (c, o);
  return HS_ACCEPT_SIMULTANEOUS;
}

/* Why the handshake of C failed, for the user.  */
static void
incoming_failed_locked (conn *c)
{
  node_error e;
  switch (c->ses.hs.kind)
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
                      : c->ses.hs.error ? c->ses.hs.error
                                    : "handshake failed");
}

/* What became of the handshake of C, an incoming connection.  */
static void
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
  if (c->ses.hs.replaces_old && c->replaces)
    {
      conn *old = find_conn_locked (c->replaces);
      if (old && old != c)
        kill_conn_locked (old, NODE_ERR_CLOSED,
                          "the node connected again (it restarted, or lost "
                          "this connection): replaced by the new one");
    }
  if ((c = find_conn_locked (id)))
    conn_up_locked (c, c->listener ? NODE_EV_ACCEPTED : NODE_EV_UP);
}

void
incoming_input_locked (conn *c, bool eof)
{
  conn_input_locked (c, eof, incoming_decision_locked,
                     incoming_handshake_result_locked);
}

void
incoming_tls_step_locked (conn *c)
{
  if (!tls_step_locked (c))
    return;
  c->state = C_HANDSHAKE;  /* the node sends its name first */
  /* What came with the end of the TLS handshake is not for poll to
     see again.  */
  if (transport_tls_pending (&c->net))
    {
      bool eof;
      if (receive_locked (c, &eof))
        incoming_input_locked (c, eof);
    }
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
      session_discard_input (&c->ses);
      if (eof)
        kill_conn_locked (c, NODE_ERR_EPMD,
                          "EPMD closed our registration: other nodes can "
                          "no longer look Emacs up (is EPMD still "
                          "running?)");
      return;
    }
  uint32_t creation = 0;
  const char *why = "malformed EPMD answer";
  epmd_result r = session_epmd_alive_answer (&c->ses, &creation, &why);
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
  c->deadline = 0;  /* the registration stays open */
  l->ses.creation = creation;
  l->accepting = true;
  node_event *ev = event_new (NODE_EV_LISTENING, l->id, 0);
  if (ev)
    {
      ev->port = c->node_port;
      ev->peer_creation = creation;
      emit_locked (ev);
    }
}

/* A listener goes: its registration and pending handshakes follow.  */
static void
listener_closing_locked (conn *l)
{
  /* What was not reported yet goes now, before the addresses go.  */
  int64_t now = node_now_ms ();
  for (int k = 0; k < ADDR_SLOTS; k++)
    if (addr_slots[k].listener == l->id && slot_waits (&addr_slots[k]))
      report_locked (l, &addr_slots[k], now);
  if (other_addrs.listener == l->id && slot_waits (&other_addrs))
    report_locked (l, &other_addrs, now);
  forget_addresses (l->id);
  /* No kills from here (the caller may be walking the list): they go
     at their deadline, now past.  */
  conn *alive = find_conn_locked (l->alive_id);
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
  conn *l = new_conn (Q_LISTEN, a->address, a->epmd_port, &a->limits);
  if (l)
    l->net.ctx = a->tls;
  else
    tls_context_free (a->tls);
  session_limits registration = { .timeout_ms = a->limits.timeout_ms };
  conn *r = new_conn (Q_ALIVE, "localhost", a->epmd_port, &registration);
  bool known = false;
  if (l)
    {
      l->net.fd = fd;
      known = session_set_identity (&l->ses, a->our_name, a->cookie,
                                    a->cookie_len, 0,
                                    HS_FLAGS (a->published));
    }
  if (r)
    r->alive = strdup (a->alive);
  if (!l || !r || !known || !r->alive)
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
  l->state = C_UP;  /* no deadline, no ticks */
  l->deadline = 0;
  l->closing = listener_closing_locked;
  l->max_pending = a->max_pending ? a->max_pending : 1;
  l->max_failures = a->max_failures;
  l->failure_window_ms = a->failure_window_ms;
  l->hold_back_ms = a->hold_back_ms;
  l->max_hold_back_ms = a->max_hold_back_ms;
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
  if (!start_resolver_locked (r))
    kill_conn_locked (r, NODE_ERR_HOST, "cannot start a resolver thread");
  node_wake_io_thread ();
  pthread_mutex_unlock (&node_lock);
  return id;
}
