/* node_dial.c --- the connections Emacs makes, and its EPMD queries:
   EPMD, the TCP connect, TLS, the handshake as the initiator and what
   its failures mean, a parked attempt dialling again.  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#define _GNU_SOURCE
#include "node_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---------------------------------------------------------------- */
/* Steps */

/* The node's port is connected (and TLS up, if used): start the
   handshake.  */
static void
start_handshake_locked (conn *c)
{
  char *dialled = NULL;
  if (asprintf (&dialled, "%s@%s", c->alive, c->host) < 0)
    {
      kill_conn_locked (c, NODE_ERR_PROTOCOL, "out of memory");
      return;
    }
  bool ok = session_start_initiator (&c->ses, dialled,
                                     was_connected_lately_locked (c));
  free (dialled);
  if (!ok)
    {
      kill_conn_locked (c, NODE_ERR_PROTOCOL, c->ses.hs.error);
      return;
    }
  c->state = C_HANDSHAKE;
}

void
outgoing_tls_step_locked (conn *c)
{
  long id = c->id;
  if (!tls_step_locked (c))
    return;
  start_handshake_locked (c);
  /* What came with the end of the TLS handshake is not for poll to
     see again.  */
  if ((c = find_conn_locked (id)) && c->state == C_HANDSHAKE
      && transport_tls_pending (&c->net))
    {
      bool eof;
      if (receive_locked (c, &eof))
        outgoing_input_locked (c, eof);
    }
}

/* A non-blocking connect finished (or failed).  */
void
connected_locked (conn *c)
{
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt (c->net.fd, SOL_SOCKET, SO_ERROR, &err, &len);
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
      bool ok = c->kind == Q_NAMES ? session_epmd_names (&c->ses)
                : c->kind == Q_ALIVE
                  ? session_epmd_alive2 (&c->ses, c->node_port, c->alive)
                  : session_epmd_port_please (&c->ses, c->alive);
      if (!ok)
        {
          kill_conn_locked (c, NODE_ERR_EPMD, "node name too long for EPMD");
          return;
        }
      c->state = C_EPMD_WAIT;
      return;
    }
  if (!c->net.ctx)
    start_handshake_locked (c);
  else if (start_tls_locked (c, c->net.ctx))
    outgoing_tls_step_locked (c);
}

/* Start connecting to the node's port, C->node_port.  */
static void
dial_port_locked (conn *c)
{
  if (!open_socket_locked (c, c->node_port))
    {
      char reason[300];
      snprintf (reason, sizeof reason, "cannot connect to %s port %u: %s",
                c->host, c->node_port, strerror (errno));
      kill_conn_locked (c, NODE_ERR_CONNECT, reason);
      return;
    }
  c->state = C_CONNECT;
}

int64_t
outgoing_timers_locked (conn *c, int64_t now)
{
  if (c->state == C_PARKED && c->redial_at && now >= c->redial_at)
    {
      /* A parked attempt dials the node's port again.  */
      c->redial_at = 0;
      session_restart (&c->ses);
      dial_port_locked (c);
      return 1;
    }
  if (c->state == C_PARKED && c->redial_at
      && !(c->deadline && now >= c->deadline))
    {
      int64_t next = c->deadline ? c->deadline - now : -1;
      int64_t redial = c->redial_at - now;
      return next < 0 || redial < next ? redial : next;
    }
  return conn_timers_locked (c, now);
}

/* An up connection of ours, under our name, to the node C reaches
   under another host name: same alive name and port.  */
static const conn *
same_node_up (const conn *c)
{
  for (const conn *o = node_conns; o; o = o->next)
    if (o != c && o->kind == Q_NODE && o->state == C_UP
        && o->node_port == c->node_port && !strcmp (o->alive, c->alive)
        && !strcmp (o->ses.our_name, c->ses.our_name))
      return o;
  return NULL;
}

/* The handshake failed: say why in terms the user can act on.  */
static void
handshake_failed_locked (conn *c)
{
  char reason[3 * HS_NAME_ROOM + 300];
  node_error e;
  const hs_state *hs = &c->ses.hs;
  /* Both dialled at once, and the node's connection to us is the one to
     keep (nok), or is up already (alive, which we answered false).  */
  if ((hs->kind == HS_ERR_SIMULTANEOUS || hs->kind == HS_ERR_NAME_IN_USE)
      && merge_into_incoming_locked (c))
    return;
  if (hs->kind == HS_ERR_SIMULTANEOUS)
    {
      park_locked (c);
      return;
    }
  switch (hs->kind)
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
                "other one", c->alive, c->host, c->ses.our_name);
      kill_conn_locked (c, NODE_ERR_NAME_IN_USE, reason);
      return;
    case HS_ERR_WRONG_PEER:
      snprintf (reason, sizeof reason,
                "the node at %s calls itself %s, not %s@%s: connect to it "
                "by its own name", c->host, (const char *) hs->peer_name,
                c->alive, c->host);
      kill_conn_locked (c, NODE_ERR_PROTOCOL, reason);
      return;
    default:
      e = NODE_ERR_PROTOCOL;
      break;
    }
  kill_conn_locked (c, e, hs->error);
}

/* The initiator is never asked to decide.  */
static hs_accept_decision
no_decision (void *arg)
{
  (void) arg;
  return HS_ACCEPT_NOT_ALLOWED;
}

/* What became of C's handshake.  */
static void
handshake_result_locked (conn *c, hs_status st)
{
  if (st == HS_FAILED)
    handshake_failed_locked (c);
  else if (st == HS_DONE)
    conn_up_locked (c, NODE_EV_UP);
}

/* NAMES: the whole answer, once EPMD has closed.  */
static void
names_answer_locked (conn *c, bool eof)
{
  if (!eof)
    return;
  const session *s = &c->ses;
  size_t pos = 0, count = 0, bytes = 0;
  epmd_name_entry e;
  const char *why = "malformed EPMD answer";
  epmd_result r;
  while ((r = session_epmd_names_next (s, &pos, &e, &why)) == EPMD_OK)
    {
      count++;
      bytes += e.name_len;
    }
  if (r == EPMD_BAD_RESPONSE)
    {
      kill_conn_locked (c, NODE_ERR_EPMD, why);
      return;
    }
  node_event *ev = event_new (NODE_EV_EPMD_NAMES, c->id,
                              count * sizeof (node_epmd_name) + bytes);
  if (ev)
    {
      node_epmd_name *names = (node_epmd_name *) ev->bytes;
      char *text = (char *) (names + count);
      pos = 0;
      for (size_t k = 0; k < count; k++)
        {
          session_epmd_names_next (s, &pos, &e, &why);
          memcpy (text, e.name, e.name_len);
          names[k] = (node_epmd_name) { .name = text, .len = e.name_len,
                                        .port = e.port };
          text += e.name_len;
        }
      ev->names = names;
      ev->name_count = count;
      emit_locked (ev);
    }
  kill_conn_locked (c, NODE_ERR_NONE, "done");
}

/* EPMD gave the node's port: on to the node itself.  */
static void
dial_node_locked (conn *c, const epmd_node_info *info)
{
  transport_close (&c->net);
  session_restart (&c->ses);
  c->node_port = info->port;
  c->ses.peer_version = info->highest_version;
  if (info->highest_version < 5 || info->lowest_version > 6)
    {
      kill_conn_locked (c, NODE_ERR_PROTOCOL,
                        "the node speaks no distribution version we know");
      return;
    }
  dial_port_locked (c);
}

/* PORT_PLEASE2's answer, for a connection or a query.  */
static void
port_answer_locked (conn *c, bool eof)
{
  const char *why = "malformed EPMD answer";
  epmd_node_info info;
  epmd_result r = session_epmd_port_answer (&c->ses, &info, &why);
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
  kill_conn_locked (c, NODE_ERR_NONE, "done");
}

void
outgoing_input_locked (conn *c, bool eof)
{
  if (c->state != C_EPMD_WAIT)
    conn_input_locked (c, eof, no_decision, handshake_result_locked);
  else if (c->kind == Q_NAMES)
    names_answer_locked (c, eof);
  else
    port_answer_locked (c, eof);
}
