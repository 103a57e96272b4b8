/* node-transport.c --- a connection's bytes over plain TCP or TLS:
   sending and receiving, the TLS handshake steps that the poll loop
   drives, and the framing of the distribution handshake, which differs
   between the two.

   As in Erlang's inet_tls_dist, EPMD stays plain; the TLS session
   starts once the node's port is connected, and the distribution
   handshake runs inside it, its messages after 4-byte lengths where
   plain TCP has 2-byte ones.  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#define _GNU_SOURCE
#include "node-internal.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "digest.h"
#include "tls.h"

/* Room made for each read of held TLS records.  */
#define READ_CHUNK_HELD 16384

/* ---------------------------------------------------------------- */
/* Bytes */

ssize_t
conn_send (conn *c, const void *buf, size_t len)
{
  if (c->tls)
    return tls_send (c->tls, buf, len);
  return send (c->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
}

ssize_t
conn_recv (conn *c, void *buf, size_t len)
{
  if (c->tls)
    return tls_recv (c->tls, buf, len);
  return recv (c->fd, buf, len, MSG_DONTWAIT);
}

bool
transport_drain_held_locked (conn *c)
{
  if (!c->tls)
    return true;
  for (;;)
    {
      if (!etf_buf_reserve (&c->in, READ_CHUNK_HELD))
        return false;
      ssize_t n = tls_recv_held (c->tls, c->in.data + c->in.len,
                                 c->in.cap - c->in.len);
      if (n <= 0)
        return true;  /* a failure shows on the next read */
      c->in.len += (size_t) n;
    }
}

short
transport_poll_events (const conn *c)
{
  if (!c->tls)
    return 0;
  if (c->state == C_TLS)
    return tls_wants_read (c->tls) ? POLLIN : POLLOUT;
  return (short) ((tls_send_needs_read (c->tls) ? POLLIN : 0)
                  | (tls_recv_needs_write (c->tls) ? POLLOUT : 0));
}

const char *
transport_failure (const conn *c, const char *otherwise)
{
  const char *why = c->tls ? tls_error (c->tls) : "";
  return *why ? why : otherwise;
}

/* ---------------------------------------------------------------- */
/* The TLS handshake */

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

bool
transport_failed_locked (conn *c)
{
  if (!c->tls || !*tls_error (c->tls))
    return false;
  tls_failed_locked (c, tls_error (c->tls));
  return true;
}

void
tls_step_locked (conn *c)
{
  long id = c->id;
  switch (tls_handshake (c->tls))
    {
    case TLS_OK:
      if (c->incoming)
        c->state = C_HANDSHAKE;  /* the node sends its name first */
      else
        start_handshake_locked (c);
      /* What came with the end of the TLS handshake is not for poll to
         see again.  */
      if ((c = find_conn (id)) && c->state == C_HANDSHAKE
          && tls_has_pending (c->tls))
        read_input_locked (c);
      return;
    case TLS_FAILED:
      tls_failed_locked (c, tls_error (c->tls));
      return;
    default:
      return;  /* the poll loop calls again when the socket is ready */
    }
}

void
start_tls_locked (conn *c, struct tls_context *ctx)
{
  c->tls = tls_session_new (ctx, c->fd, c->incoming ? NULL : c->host);
  if (!c->tls)
    {
      tls_failed_locked (c, "cannot start a session (out of memory, or a "
                            "host name OpenSSL refuses)");
      return;
    }
  c->state = C_TLS;
  tls_step_locked (c);
}

/* ---------------------------------------------------------------- */
/* Handshake framing */

void
put_handshake_out (conn *c)
{
  const uint8_t *p = c->hs.out.data;
  size_t len = c->hs.out.len;
  if (!c->tls)
    etf_put_bytes (&c->early, p, len);
  else
    /* Each message after a 4-byte length instead of its 2-byte one.  */
    for (size_t pos = 0; len - pos >= 2;)
      {
        size_t n = etf_get_u16 (p + pos);
        if (len - pos - 2 < n)
          break;
        etf_put_u32 (&c->early, (uint32_t) n);
        etf_put_bytes (&c->early, p + pos + 2, n);
        pos += 2 + n;
      }
  digest_wipe (c->hs.out.data, c->hs.out.len);
  c->hs.out.len = 0;
}

/* Does DATA look like the start of a TLS record (a handshake or an
   alert)?  No distribution handshake message is that long.  */
static bool
looks_like_tls (const uint8_t *data, size_t len)
{
  return len >= 3 && (data[0] == 0x15 || data[0] == 0x16) && data[1] == 3
         && data[2] <= 4;
}

/* Feed the handshake with whole messages of a TLS connection, each
   rewritten with the 2-byte length the handshake reads.  */
static hs_status
feed_tls_framed (conn *c)
{
  hs_status st = HS_CONTINUE;
  etf_buf one;
  etf_buf_init (&one);
  while (st == HS_CONTINUE && in_len (c) >= 4)
    {
      uint32_t n = etf_get_u32 (in_data (c));
      if (n > 0xffff)
        {
          c->hs.state = HS_STATE_FAILED;
          c->hs.kind = HS_ERR_PROTOCOL;
          c->hs.error = "handshake message too long";
          st = HS_FAILED;
          break;
        }
      if (in_len (c) - 4 < n)
        break;
      one.len = 0;
      etf_put_u16 (&one, (uint16_t) n);
      etf_put_bytes (&one, in_data (c) + 4, n);
      if (one.status != ETF_OK)
        {
          c->hs.state = HS_STATE_FAILED;
          c->hs.kind = HS_ERR_PROTOCOL;
          c->hs.error = "out of memory";
          st = HS_FAILED;
          break;
        }
      size_t used = 0;
      st = hs_feed (&c->hs, one.data, one.len, &used);
      in_consume (c, 4 + n);
    }
  digest_wipe (one.data, one.len);
  etf_buf_free (&one);
  return st;
}

bool
transport_feed_locked (conn *c, hs_status *st)
{
  if (c->tls)
    {
      *st = feed_tls_framed (c);
      return true;
    }
  if (looks_like_tls (in_data (c), in_len (c)))
    {
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
  size_t used = 0;
  *st = hs_feed (&c->hs, in_data (c), in_len (c), &used);
  in_consume (c, used);
  return true;
}

void
end_tls_session (conn *c)
{
  tls_session_free (c->tls);
  c->tls = NULL;
}

void
free_transport (conn *c)
{
  end_tls_session (c);
  tls_context_free (c->tls_ctx);
  c->tls_ctx = NULL;
}
