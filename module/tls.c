/* tls.c --- TLS over a non-blocking socket, through OpenSSL's libssl.  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#define _GNU_SOURCE
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

struct tls_context
{
  SSL_CTX *ctx;
  bool server;
};

struct tls_session
{
  SSL *ssl;
  int fd;
  int sys_errno;       /* the socket's last error */
  bool eof;            /* the peer closed its side */
  bool drained;        /* the last read took all the socket had */
  bool held_only;      /* reads serve what the session holds, no more */
  bool want_read;      /* what the last EAGAIN waits for */
  bool send_needs_read, recv_needs_write;
  bool failed;
  bool established;    /* the handshake is done */
  bool server;
  char error[400];
};

/* ---------------------------------------------------------------- */
/* A socket BIO that never raises SIGPIPE: OpenSSL's own writes with
   write (2), and the main thread (which sends too) must not get the
   signal when a peer has gone.  */

static BIO_METHOD *socket_method;
static pthread_once_t socket_method_once = PTHREAD_ONCE_INIT;

static int
bio_write (BIO *b, const char *data, int len)
{
  tls_session *s = BIO_get_data (b);
  BIO_clear_retry_flags (b);
  ssize_t n;
  do
    n = send (s->fd, data, (size_t) len, MSG_NOSIGNAL | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n >= 0)
    return (int) n;
  if (errno == EAGAIN || errno == EWOULDBLOCK)
    BIO_set_retry_write (b);
  else
    s->sys_errno = errno;
  return -1;
}

static int
bio_read (BIO *b, char *data, int len)
{
  tls_session *s = BIO_get_data (b);
  BIO_clear_retry_flags (b);
  if (s->held_only)
    {
      BIO_set_retry_read (b);
      return -1;
    }
  ssize_t n;
  do
    n = recv (s->fd, data, (size_t) len, MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n >= 0)
    {
      s->eof = n == 0;
      s->drained = n < len;
      return (int) n;
    }
  if (errno == EAGAIN || errno == EWOULDBLOCK)
    {
      s->drained = true;
      BIO_set_retry_read (b);
    }
  else
    s->sys_errno = errno;
  return -1;
}

static long
bio_ctrl (BIO *b, int cmd, long num, void *ptr)
{
  (void) num, (void) ptr;
  tls_session *s = BIO_get_data (b);
  switch (cmd)
    {
    case BIO_CTRL_FLUSH:
      return 1;
    case BIO_CTRL_EOF:
      return s && s->eof;
    default:
      return 0;
    }
}

static int
bio_create (BIO *b)
{
  BIO_set_init (b, 1);
  return 1;
}

static void
make_socket_method (void)
{
  BIO_METHOD *m = BIO_meth_new (BIO_get_new_index () | BIO_TYPE_SOURCE_SINK,
                                "derl socket");
  if (m && BIO_meth_set_write (m, bio_write) && BIO_meth_set_read (m, bio_read)
      && BIO_meth_set_ctrl (m, bio_ctrl) && BIO_meth_set_create (m, bio_create))
    socket_method = m;
  else if (m)
    BIO_meth_free (m);
}

/* ---------------------------------------------------------------- */
/* Contexts */

/* The reason OpenSSL gives for the last failure, with the queue
   cleared.  */
static const char *
openssl_reason (void)
{
  unsigned long e = ERR_peek_last_error ();
  ERR_clear_error ();
  const char *r = e ? ERR_reason_error_string (e) : NULL;
  return r ? r : "unknown error";
}

/* Keys protected by a pass phrase are refused rather than prompted
   for on a terminal that Emacs owns.  */
static int
no_pass_phrase (char *buf, int size, int rwflag, void *data)
{
  (void) buf, (void) size, (void) rwflag, (void) data;
  return 0;
}

static bool
load_files (SSL_CTX *ctx, const tls_options *o, char *error, size_t size)
{
  if (o->certfile
      && SSL_CTX_use_certificate_chain_file (ctx, o->certfile) != 1)
    {
      snprintf (error, size, "cannot use derl-tls-certfile %s: %s",
                o->certfile, openssl_reason ());
      return false;
    }
  const char *key = o->keyfile ? o->keyfile : o->certfile;
  if (key && SSL_CTX_use_PrivateKey_file (ctx, key, SSL_FILETYPE_PEM) != 1)
    {
      if (ERR_GET_REASON (ERR_peek_last_error ()) == X509_R_KEY_VALUES_MISMATCH)
        {
          ERR_clear_error ();
          snprintf (error, size, "the private key in %s does not belong to "
                    "the certificate in %s", key, o->certfile);
        }
      else
        snprintf (error, size,
                  "cannot use the private key in %s: %s (keys protected by "
                  "a pass phrase are not supported)", key, openssl_reason ());
      return false;
    }
  if (key && SSL_CTX_check_private_key (ctx) != 1)
    {
      snprintf (error, size, "the private key in %s does not belong to the "
                "certificate in %s", key, o->certfile);
      ERR_clear_error ();
      return false;
    }
  if (o->cacertfile
      ? SSL_CTX_load_verify_locations (ctx, o->cacertfile, NULL) != 1
      : SSL_CTX_set_default_verify_paths (ctx) != 1)
    {
      snprintf (error, size, "cannot use derl-tls-cacertfile %s: %s",
                o->cacertfile ? o->cacertfile : "(the system's)",
                openssl_reason ());
      return false;
    }
  return true;
}

tls_context *
tls_context_new (bool server, const tls_options *o, char *error,
                 size_t size)
{
  pthread_once (&socket_method_once, make_socket_method);
  if (!socket_method)
    {
      snprintf (error, size, "cannot set up TLS sockets");
      return NULL;
    }
  if (server && !o->certfile)
    {
      snprintf (error, size, "a TLS node needs derl-tls-certfile (and "
                "derl-tls-keyfile) to accept connections");
      return NULL;
    }
  tls_context *t = calloc (1, sizeof *t);
  SSL_CTX *ctx = t ? SSL_CTX_new (server ? TLS_server_method ()
                                         : TLS_client_method ())
                   : NULL;
  if (!ctx)
    {
      free (t);
      snprintf (error, size, "cannot make a TLS context: %s",
                openssl_reason ());
      return NULL;
    }
  t->ctx = ctx;
  t->server = server;
  SSL_CTX_set_min_proto_version (ctx, TLS1_2_VERSION);
  SSL_CTX_set_default_passwd_cb (ctx, no_pass_phrase);
  /* Writes go out as the socket takes them, from a buffer that may
     move (and grow) between tries.  */
  SSL_CTX_set_mode (ctx, SSL_MODE_ENABLE_PARTIAL_WRITE
                           | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_session_cache_mode (ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets (ctx, 0);
  /* Read what the socket has in one go, not a record header and then
     its body: fewer system calls per message.  */
  SSL_CTX_set_read_ahead (ctx, 1);
  SSL_CTX_set_default_read_buffer_len (ctx, 1 << 16);
  int verify = SSL_VERIFY_NONE;
  if (o->verify_peer)
    verify = SSL_VERIFY_PEER
             | (server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0);
  SSL_CTX_set_verify (ctx, verify, NULL);
  if (!load_files (ctx, o, error, size))
    {
      tls_context_free (t);
      return NULL;
    }
  return t;
}

void
tls_context_free (tls_context *t)
{
  if (!t)
    return;
  SSL_CTX_free (t->ctx);
  free (t);
}

/* ---------------------------------------------------------------- */
/* Sessions */

tls_session *
tls_session_new (tls_context *t, int fd, const char *peer_host)
{
  tls_session *s = calloc (1, sizeof *s);
  if (!s)
    return NULL;
  s->fd = fd;
  s->server = t->server;
  s->ssl = SSL_new (t->ctx);
  BIO *bio = s->ssl ? BIO_new (socket_method) : NULL;
  if (!bio)
    {
      SSL_free (s->ssl);
      free (s);
      ERR_clear_error ();
      return NULL;
    }
  BIO_set_data (bio, s);
  SSL_set_bio (s->ssl, bio, bio);
  if (t->server)
    SSL_set_accept_state (s->ssl);
  else
    {
      SSL_set_connect_state (s->ssl);
      unsigned char addr[16];
      bool literal = inet_pton (AF_INET, peer_host, addr) == 1
                     || inet_pton (AF_INET6, peer_host, addr) == 1;
      /* Server names are host names only, never addresses.  */
      if (!literal)
        SSL_set_tlsext_host_name (s->ssl, peer_host);
      X509_VERIFY_PARAM *param = SSL_get0_param (s->ssl);
      X509_VERIFY_PARAM_set_hostflags (param,
                                       X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      if (literal ? X509_VERIFY_PARAM_set1_ip_asc (param, peer_host) != 1
                  : X509_VERIFY_PARAM_set1_host (param, peer_host, 0) != 1)
        {
          tls_session_free (s);
          ERR_clear_error ();
          return NULL;
        }
    }
  return s;
}

void
tls_session_free (tls_session *s)
{
  if (!s)
    return;
  if (!s->failed && s->established)
    SSL_shutdown (s->ssl);  /* one try: the close notice, if it fits */
  ERR_clear_error ();
  SSL_free (s->ssl);
  free (s);
}

/* The peer's certificate failed our check: say how.  */
static void
describe_verify_failure (tls_session *s, long result)
{
  const char *who = s->server ? "the connecting node's" : "the node's";
  const char *what = X509_verify_cert_error_string (result);
  switch (result)
    {
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
      snprintf (s->error, sizeof s->error,
                "%s certificate is not for the host dialled (server name "
                "check failed: %s)", who, what);
      break;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
      snprintf (s->error, sizeof s->error,
                "%s certificate is not signed by a CA in "
                "derl-tls-cacertfile (unknown CA: %s)", who, what);
      break;
    default:
      snprintf (s->error, sizeof s->error, "%s certificate was refused: %s",
                who, what);
      break;
    }
}

/* PEER closed the connection.  */
static void
describe_close (tls_session *s, const char *peer)
{
  snprintf (s->error, sizeof s->error, "%s closed the connection %s", peer,
            s->established ? "without a TLS close notice"
                           : "during the TLS handshake: is it a TLS node "
                             "(-proto_dist inet_tls), and does it trust "
                             "us?");
}

/* The session failed (SSL_get_error gave KIND): note why.  */
static void
describe_failure (tls_session *s, int kind)
{
  s->failed = true;
  long result = SSL_get_verify_result (s->ssl);
  unsigned long e = ERR_peek_error ();
  int reason = ERR_GET_REASON (e);
  const char *text = e ? ERR_reason_error_string (e) : NULL;
  ERR_clear_error ();
  if (result != X509_V_OK && reason == SSL_R_CERTIFICATE_VERIFY_FAILED)
    {
      describe_verify_failure (s, result);
      return;
    }
  const char *peer = s->server ? "the connecting node" : "the node";
  switch (reason)
    {
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
      snprintf (s->error, sizeof s->error,
                "%s does not trust our certificate (alert: unknown CA): "
                "its CA file lacks the CA that signed derl-tls-certfile",
                peer);
      return;
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
      snprintf (s->error, sizeof s->error,
                "%s refused our certificate (alert: %s)", peer, text);
      return;
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
    case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
      snprintf (s->error, sizeof s->error,
                "%s refused the TLS handshake (alert: %s); does it require "
                "a client certificate (derl-tls-certfile, "
                "derl-tls-keyfile)?", peer, text);
      return;
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
      snprintf (s->error, sizeof s->error,
                "%s sent no certificate, and derl-tls-verify-peer asks for "
                "one", peer);
      return;
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_PACKET_LENGTH_TOO_LONG:
    case SSL_R_UNKNOWN_PROTOCOL:
    case SSL_R_HTTP_REQUEST:
      snprintf (s->error, sizeof s->error,
                "%s does not speak TLS (%s): is it a plain TCP node "
                "(no -proto_dist inet_tls)?", peer, text);
      return;
    case SSL_R_UNEXPECTED_EOF_WHILE_READING:
      describe_close (s, peer);
      return;
    default:
      break;
    }
  bool closed = s->eof || s->sys_errno == EPIPE || s->sys_errno == ECONNRESET;
  if (text)
    snprintf (s->error, sizeof s->error, "TLS failed: %s", text);
  else if (kind == SSL_ERROR_SYSCALL && closed)
    describe_close (s, peer);
  else if (kind == SSL_ERROR_SYSCALL && s->sys_errno)
    snprintf (s->error, sizeof s->error, "TLS failed: %s",
              strerror (s->sys_errno));
  else
    snprintf (s->error, sizeof s->error, "TLS failed (error %d)", kind);
}

/* Map the outcome RC of an SSL call: a status, noting the failure.  */
static tls_status
outcome (tls_session *s, int rc)
{
  int kind = SSL_get_error (s->ssl, rc);
  switch (kind)
    {
    case SSL_ERROR_WANT_READ:
      s->want_read = true;
      return TLS_WANT_READ;
    case SSL_ERROR_WANT_WRITE:
      s->want_read = false;
      return TLS_WANT_WRITE;
    default:
      describe_failure (s, kind);
      return TLS_FAILED;
    }
}

tls_status
tls_handshake (tls_session *s)
{
  if (s->failed)
    return TLS_FAILED;
  ERR_clear_error ();
  int rc = SSL_do_handshake (s->ssl);
  if (rc != 1)
    return outcome (s, rc);
  s->established = true;
  /* From now on a close without a close notice is just a close, as
     on a plain socket: every frame has its length, so nothing can be
     cut short unnoticed, and Erlang nodes that halt send none.  */
  SSL_set_options (s->ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
  return TLS_OK;
}

ssize_t
tls_send (tls_session *s, const void *buf, size_t len)
{
  if (s->failed)
    {
      errno = EPIPE;
      return -1;
    }
  ERR_clear_error ();
  int n = SSL_write (s->ssl, buf, len > INT_MAX ? INT_MAX : (int) len);
  s->send_needs_read = false;
  if (n > 0)
    return n;
  switch (outcome (s, n))
    {
    case TLS_WANT_READ:
      s->send_needs_read = true;
      /* Fall through.  */
    case TLS_WANT_WRITE:
      errno = EAGAIN;
      return -1;
    default:
      errno = EPIPE;
      return -1;
    }
}

ssize_t
tls_recv (tls_session *s, void *buf, size_t len)
{
  if (s->failed)
    {
      errno = EPIPE;
      return -1;
    }
  size_t got = 0;
  s->recv_needs_write = false;
  while (got < len)
    {
      size_t want = len - got > INT_MAX ? INT_MAX : len - got;
      ERR_clear_error ();
      int n = SSL_read (s->ssl, (char *) buf + got, (int) want);
      if (n > 0)
        {
          got += (size_t) n;
          /* Nothing held back, and the socket gave all it had: done,
             without another read to hear it say so.  (Poll sees what
             the socket gets from now on; it cannot see what the session
             holds.)  */
          if (s->drained && !SSL_has_pending (s->ssl))
            break;
          continue;
        }
      if (SSL_get_error (s->ssl, n) == SSL_ERROR_ZERO_RETURN)
        return (ssize_t) got;  /* a close notice: 0 once all is read */
      tls_status st = outcome (s, n);
      if (got)
        {
          /* Report the data now; a failure shows again on the next
             call.  */
          if (st == TLS_FAILED)
            s->failed = true;
          return (ssize_t) got;
        }
      if (st == TLS_FAILED)
        {
          errno = EPIPE;
          return -1;
        }
      s->recv_needs_write = st == TLS_WANT_WRITE;
      errno = EAGAIN;
      return -1;
    }
  return (ssize_t) got;
}

ssize_t
tls_recv_held (tls_session *s, void *buf, size_t len)
{
  s->held_only = true;
  ssize_t n = tls_recv (s, buf, len);
  s->held_only = false;
  return n;
}

bool
tls_wants_read (const tls_session *s)
{
  return s->want_read;
}

bool
tls_send_needs_read (const tls_session *s)
{
  return s->send_needs_read;
}

bool
tls_recv_needs_write (const tls_session *s)
{
  return s->recv_needs_write;
}

bool
tls_has_pending (const tls_session *s)
{
  return SSL_has_pending (s->ssl) == 1;
}

const char *
tls_error (const tls_session *s)
{
  return s->error;
}

#ifdef DERL_TESTING
const char *
tls_version (const tls_session *s)
{
  return SSL_get_version (s->ssl);
}
#endif
