/* transport.c --- bytes on a socket, plain TCP or TLS.  See
   transport.h.  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#define _GNU_SOURCE
#include "transport.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

void
transport_init (transport *t)
{
  t->fd = -1;
  t->ctx = NULL;
  t->tls = NULL;
}

ssize_t
transport_send (transport *t, const void *buf, size_t len)
{
  if (t->tls)
    return tls_send (t->tls, buf, len);
  return send (t->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
}

ssize_t
transport_recv (transport *t, void *buf, size_t len)
{
  if (t->tls)
    return tls_recv (t->tls, buf, len);
  return recv (t->fd, buf, len, MSG_DONTWAIT);
}

ssize_t
transport_recv_held (transport *t, void *buf, size_t len)
{
  return t->tls ? tls_recv_held (t->tls, buf, len) : 0;
}

short
transport_poll_events (const transport *t, bool handshaking)
{
  if (!t->tls)
    return 0;
  if (handshaking)
    return tls_wants_read (t->tls) ? POLLIN : POLLOUT;
  return (short) ((tls_send_needs_read (t->tls) ? POLLIN : 0)
                  | (tls_recv_needs_write (t->tls) ? POLLOUT : 0));
}

const char *
transport_failure (const transport *t, const char *otherwise)
{
  const char *why = t->tls ? tls_error (t->tls) : "";
  return *why ? why : otherwise;
}

bool
transport_failed (const transport *t)
{
  return t->tls && *tls_error (t->tls);
}

bool
transport_start_tls (transport *t, tls_context *ctx, const char *host)
{
  t->tls = tls_session_new (ctx, t->fd, host);
  return t->tls != NULL;
}

tls_status
transport_tls_step (transport *t)
{
  return tls_handshake (t->tls);
}

bool
transport_tls_pending (const transport *t)
{
  return t->tls && tls_has_pending (t->tls);
}

void
transport_close (transport *t)
{
  tls_session_free (t->tls);
  t->tls = NULL;
  if (t->fd >= 0)
    close (t->fd);
  t->fd = -1;
}

void
transport_free (transport *t)
{
  transport_close (t);
  tls_context_free (t->ctx);
  t->ctx = NULL;
}
