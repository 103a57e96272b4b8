/* tls.h --- TLS over a non-blocking socket, through OpenSSL's libssl.

   A context holds what the user configured (certificate, key, CA,
   whether to verify the peer); a session is one connection's TLS state
   over a socket that stays the caller's.  Nothing here blocks: every
   step says whether it wants the socket readable or writable first.
   Sockets are written with MSG_NOSIGNAL.  Error texts name files and
   reasons, never a key's contents.  No Emacs here.  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#ifndef DERL_TLS_H
#define DERL_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct tls_context tls_context;
typedef struct tls_session tls_session;

typedef struct
{
  const char *certfile;    /* PEM certificate (chain); NULL for none */
  const char *keyfile;     /* PEM private key; NULL: in CERTFILE */
  const char *cacertfile;  /* PEM CAs to trust; NULL: the system's */
  bool verify_peer;        /* check the peer's certificate (and, as a
                              client, its host name) */
} tls_options;

typedef enum
{
  TLS_OK,          /* the handshake is done */
  TLS_WANT_READ,   /* call again once the socket is readable */
  TLS_WANT_WRITE,  /* ... writable */
  TLS_FAILED,      /* see tls_error */
} tls_status;

/* A context for the client (SERVER false) or the server side.  NULL on
   failure, with the reason in ERROR (ERROR_SIZE bytes).  */
tls_context *tls_context_new (bool server, const tls_options *options,
                              char *error, size_t error_size);
/* Drop a reference; sessions keep their own.  */
void tls_context_free (tls_context *ctx);

/* A session over FD.  A client checks the peer against PEER_HOST (its
   name or address, also sent as the server name); a server passes
   NULL.  NULL when out of memory.  */
tls_session *tls_session_new (tls_context *ctx, int fd,
                              const char *peer_host);
/* Free the session, first sending the peer a close notice when the
   socket takes it at once.  The socket stays open.  */
void tls_session_free (tls_session *s);

/* One step of the handshake.  */
tls_status tls_handshake (tls_session *s);

/* As send and recv on a non-blocking socket: the byte count, 0 from
   tls_recv when the peer closed, or -1 with errno EAGAIN (try again
   when the socket is ready as tls_wants says) or another errno (the
   session failed: tls_error says why).  tls_recv fills BUF as far as
   the session has data, so a short count means nothing is left.  */
ssize_t tls_send (tls_session *s, const void *buf, size_t len);
ssize_t tls_recv (tls_session *s, void *buf, size_t len);

/* As tls_recv, but only what the session already took from the socket
   (whole records), never reading the socket itself.  */
ssize_t tls_recv_held (tls_session *s, void *buf, size_t len);

/* After EAGAIN: must the socket become readable (else writable)?  */
bool tls_wants_read (const tls_session *s);
/* Did the last EAGAIN of a send (of a recv) need the other direction?
   Then the caller polls for that direction too.  */
bool tls_send_needs_read (const tls_session *s);
bool tls_recv_needs_write (const tls_session *s);

/* Has the session received bytes it has not yet handed out?  Poll
   cannot tell: read them first.  */
bool tls_has_pending (const tls_session *s);

/* Why the session failed, in words for the user; "" when it did not.  */
const char *tls_error (const tls_session *s);
#ifdef DERL_TESTING
/* The protocol agreed on ("TLSv1.3"), once the handshake is done.  For
   the tests (built with DERL_TESTING), not in the module.  */
const char *tls_version (const tls_session *s);
#endif

#endif /* DERL_TLS_H */
