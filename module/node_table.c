/* node_table.c --- the connection table: records made, found, linked
   in, and ended, each death reported with what it took down with it;
   and the nodes we were lately connected to.  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#define _GNU_SOURCE
#include "node_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Under node_lock.  */
conn *node_conns;

/* ---------------------------------------------------------------- */
/* The table */

conn *
find_conn_locked (long id)
{
  for (conn *c = node_conns; c; c = c->next)
    if (c->id == id)
      return c;
  return NULL;
}

void
free_conn (conn *c)
{
  transport_free (&c->net);
  session_free (&c->ses);
  free (c->alive);
  free (c->host);
  free (c);
}

conn *
new_conn (conn_kind kind, const char *host, int epmd_port,
          const session_limits *limits)
{
  conn *c = calloc (1, sizeof *c);
  if (!c)
    return NULL;
  c->kind = kind;
  transport_init (&c->net);
  session_init (&c->ses, limits);
  c->state = C_RESOLVING;
  c->epmd_port = epmd_port;
  c->host = strdup (host);
  c->deadline = node_now_ms ()
                + (limits->timeout_ms ? limits->timeout_ms : 10000);
  if (!c->host)
    {
      free (c);
      return NULL;
    }
  return c;
}

void
link_conn_locked (conn *c)
{
  c->id = node_new_id_locked ();
  c->next = node_conns;
  node_conns = c;
}

void
unlink_conn_locked (conn *c)
{
  for (conn **p = &node_conns; *p; p = &(*p)->next)
    if (*p == c)
      {
        *p = c->next;
        break;
      }
  free_conn (c);
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
  return asprintf (&key, "%s %s@%s", c->ses.our_name, c->alive, c->host) < 0
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
  unsigned ticktime = c->ses.limits.ticktime_ms;
  gone[slot].until = now + (ticktime ? ticktime : 60000) + 5000;
}

bool
was_connected_lately_locked (const conn *c)
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
    session_unsent (&c->ses, &count, &bytes);
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
        = c->failure_event && c->state != C_UP
            ? c->failure_event (c, error, text ? text : reason)
            : event_failure (c->kind == Q_NODE ? NODE_EV_DOWN
                                               : NODE_EV_EPMD_ERROR,
                             c->id, error, text ? text : reason);
      free (text);
      if (ev)
        emit_locked (ev);
    }
  if (c->kind == Q_NODE && c->state == C_UP)
    remember_gone (c);
  if (c->closing)
    c->closing (c);
  unlink_conn_locked (c);
}
