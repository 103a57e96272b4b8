/* transport.h --- bytes on a socket, plain TCP or TLS.

   A transport is a socket, and when TLS is used its session and the
   context it came from.  As in Erlang's inet_tls_dist, EPMD stays
   plain; TLS starts once the node's port is connected.  Nothing here
   knows what the bytes mean.  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#ifndef DERL_TRANSPORT_H
#define DERL_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "tls.h"

typedef struct
{
  int fd;                 /* -1: none */
  tls_context *ctx;       /* a TLS context T owns: the client's, or a
                             listener's; NULL: none */
  tls_session *tls;       /* the TLS session, once started */
} transport;

void transport_init (transport *t);
/* As send and recv (non-blocking), over TLS when T has it.  */
ssize_t transport_send (transport *t, const void *buf, size_t len);
ssize_t transport_recv (transport *t, void *buf, size_t len);
/* Records the TLS session took from the socket but has not handed out:
   poll cannot see them.  As tls_recv_held; 0 when plain.  */
ssize_t transport_recv_held (transport *t, void *buf, size_t len);
/* What else to poll the socket for, for TLS's sake; HANDSHAKING: the
   TLS handshake is under way.  */
short transport_poll_events (const transport *t, bool handshaking);
/* Why T failed, or OTHERWISE when it says nothing.  */
const char *transport_failure (const transport *t, const char *otherwise);
/* T's TLS session failed (an alert from the peer): true.  */
bool transport_failed (const transport *t);
/* Start TLS with CTX on the connected socket, as the client of HOST,
   or as the server when HOST is NULL.  False when OpenSSL cannot.  */
bool transport_start_tls (transport *t, tls_context *ctx, const char *host);
/* A step of the TLS handshake.  */
tls_status transport_tls_step (transport *t);
/* The TLS session holds bytes already read from the socket.  */
bool transport_tls_pending (const transport *t);
/* End the TLS session (before the socket closes) and close the socket;
   the context stays for the next.  */
void transport_close (transport *t);
/* ... and the context too.  */
void transport_free (transport *t);

#endif /* DERL_TRANSPORT_H */
