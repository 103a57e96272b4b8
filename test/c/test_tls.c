/* test_tls.c --- unit tests for tls.c.

   Built with ASan and UBSan by `make build/test_tls'.  The CAs and
   certificates are made here with OpenSSL's API, written to a fresh
   temporary directory; a client and a server session talk over a
   non-blocking socket pair, both driven step by step from this one
   thread, as the I/O thread's poll loop drives them.  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#define _GNU_SOURCE

#include "tls.h"
#include "check.h"

#include <errno.h>
#include <ftw.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

static char dir[] = "/tmp/derl-test-tls-XXXXXX";

static const char *
path (const char *name)
{
  static char buf[8][256];
  static int k;
  k = (k + 1) % 8;
  snprintf (buf[k], sizeof buf[k], "%s/%s", dir, name);
  return buf[k];
}

/* ---------------------------------------------------------------- */
/* Certificates */

typedef struct
{
  EVP_PKEY *key;
  X509 *cert;
} identity;

static void
add_ext (X509 *cert, X509 *issuer, int nid, const char *value)
{
  X509V3_CTX ctx;
  X509V3_set_ctx (&ctx, issuer, cert, NULL, NULL, 0);
  X509_EXTENSION *ext = X509V3_EXT_conf_nid (NULL, &ctx, nid, value);
  X509_add_ext (cert, ext, -1);
  X509_EXTENSION_free (ext);
}

/* A certificate for CN (and, unless NULL, the DNS name HOST), signed by
   ISSUER (NULL: self-signed); a CA when IS_CA.  */
static identity
make_identity (const char *cn, const char *host, const identity *issuer,
               bool is_ca)
{
  static long serial = 1;
  identity id;
  id.key = EVP_EC_gen ("P-256");
  id.cert = X509_new ();
  X509_set_version (id.cert, 2);
  ASN1_INTEGER_set (X509_get_serialNumber (id.cert), serial++);
  X509_gmtime_adj (X509_getm_notBefore (id.cert), -3600);
  X509_gmtime_adj (X509_getm_notAfter (id.cert), 86400);
  X509_set_pubkey (id.cert, id.key);
  X509_NAME *name = X509_get_subject_name (id.cert);
  X509_NAME_add_entry_by_txt (name, "CN", MBSTRING_ASC,
                              (const unsigned char *) cn, -1, -1, 0);
  X509 *issuer_cert = issuer ? issuer->cert : id.cert;
  X509_set_issuer_name (id.cert, X509_get_subject_name (issuer_cert));
  if (is_ca)
    add_ext (id.cert, issuer_cert, NID_basic_constraints,
             "critical,CA:TRUE");
  if (host)
    {
      char san[300];
      snprintf (san, sizeof san, "DNS:%s", host);
      add_ext (id.cert, issuer_cert, NID_subject_alt_name, san);
    }
  X509_sign (id.cert, issuer ? issuer->key : id.key, EVP_sha256 ());
  return id;
}

static void
write_identity (const identity *id, const char *stem,
                const char *pass_phrase)
{
  char name[64];
  snprintf (name, sizeof name, "%s.pem", stem);
  FILE *f = fopen (path (name), "w");
  PEM_write_X509 (f, id->cert);
  fclose (f);
  snprintf (name, sizeof name, "%s.key", stem);
  f = fopen (path (name), "w");
  if (pass_phrase)
    PEM_write_PrivateKey (f, id->key, EVP_aes_128_cbc (),
                          (const unsigned char *) pass_phrase,
                          (int) strlen (pass_phrase), NULL, NULL);
  else
    PEM_write_PrivateKey (f, id->key, NULL, NULL, 0, NULL, NULL);
  fclose (f);
}

static void
free_identity (identity *id)
{
  EVP_PKEY_free (id->key);
  X509_free (id->cert);
}

static bool
make_files (void)
{
  if (!mkdtemp (dir))
    return false;
  identity ca = make_identity ("test ca", NULL, NULL, true);
  identity other = make_identity ("other ca", NULL, NULL, true);
  identity server = make_identity ("localhost", "localhost", &ca, false);
  identity client = make_identity ("localhost", "localhost", &ca, false);
  identity stranger = make_identity ("localhost", "localhost", &other, false);
  identity self = make_identity ("localhost", "localhost", NULL, false);
  write_identity (&ca, "ca", NULL);
  write_identity (&other, "other", NULL);
  write_identity (&server, "server", NULL);
  write_identity (&client, "client", NULL);
  write_identity (&stranger, "stranger", NULL);
  write_identity (&self, "self", NULL);
  write_identity (&client, "locked", "secret");
  free_identity (&ca);
  free_identity (&other);
  free_identity (&server);
  free_identity (&client);
  free_identity (&stranger);
  free_identity (&self);
  return true;
}

static int
remove_one (const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
  (void) sb, (void) flag, (void) ftw;
  return remove (p);
}

/* ---------------------------------------------------------------- */
/* Sessions over a socket pair */

typedef struct
{
  int fds[2];
  tls_context *client_ctx, *server_ctx;
  tls_session *client, *server;
  tls_status client_st, server_st;
} pair;

static tls_options
opts (const char *cert, const char *ca, bool verify)
{
  char certfile[64], keyfile[64];
  snprintf (certfile, sizeof certfile, "%s.pem", cert ? cert : "");
  snprintf (keyfile, sizeof keyfile, "%s.key", cert ? cert : "");
  char cafile[64];
  snprintf (cafile, sizeof cafile, "%s.pem", ca ? ca : "");
  return (tls_options) {
    .certfile = cert ? strdup (path (certfile)) : NULL,
    .keyfile = cert ? strdup (path (keyfile)) : NULL,
    .cacertfile = ca ? strdup (path (cafile)) : NULL,
    .verify_peer = verify,
  };
}

static void
free_opts (tls_options *o)
{
  free ((char *) o->certfile);
  free ((char *) o->keyfile);
  free ((char *) o->cacertfile);
}

/* Has the socket FD something to read, as poll sees it?  */
static bool
readable (int fd)
{
  struct pollfd pfd = { .fd = fd, .events = POLLIN };
  return poll (&pfd, 1, 0) == 1 && (pfd.revents & POLLIN);
}

/* Open a pair: the client dials HOST.  */
static bool
open_pair (pair *p, tls_options client, tls_options server, const char *host)
{
  char error[600];
  memset (p, 0, sizeof *p);
  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p->fds) < 0)
    return false;
  p->client_ctx = tls_context_new (false, &client, error, sizeof error);
  if (!p->client_ctx)
    fprintf (stderr, "client context: %s\n", error);
  p->server_ctx = tls_context_new (true, &server, error, sizeof error);
  if (!p->server_ctx)
    fprintf (stderr, "server context: %s\n", error);
  free_opts (&client);
  free_opts (&server);
  if (!p->client_ctx || !p->server_ctx)
    return false;
  p->client = tls_session_new (p->client_ctx, p->fds[0], host);
  p->server = tls_session_new (p->server_ctx, p->fds[1], NULL);
  return p->client && p->server;
}

static void
close_pair (pair *p)
{
  tls_session_free (p->client);
  tls_session_free (p->server);
  tls_context_free (p->client_ctx);
  tls_context_free (p->server_ctx);
  close (p->fds[0]);
  close (p->fds[1]);
}

static bool
pending (tls_status st)
{
  return st == TLS_WANT_READ || st == TLS_WANT_WRITE;
}

/* Step both handshakes until neither can move.  */
static void
handshake (pair *p)
{
  p->client_st = p->server_st = TLS_WANT_READ;
  for (int round = 0; round < 100; round++)
    {
      if (pending (p->client_st))
        p->client_st = tls_handshake (p->client);
      if (pending (p->server_st))
        p->server_st = tls_handshake (p->server);
      if (!pending (p->client_st) && !pending (p->server_st))
        return;
      if (p->client_st == TLS_FAILED || p->server_st == TLS_FAILED)
        {
          /* Let the other side read the alert.  */
          if (pending (p->client_st))
            p->client_st = tls_handshake (p->client);
          if (pending (p->server_st))
            p->server_st = tls_handshake (p->server);
          return;
        }
    }
}

/* In TLS 1.3 the client is done before the server has checked its
   certificate: the server's alert comes with the first read.  */
static void
client_hears_alert (pair *p)
{
  if (p->client_st == TLS_OK)
    {
      char buf[16];
      CHECK (tls_recv (p->client, buf, sizeof buf) < 0 && errno == EPIPE);
    }
  else
    CHECK (p->client_st == TLS_FAILED);
}

static bool
has (const char *text, const char *part)
{
  if (!strstr (text, part))
    {
      fprintf (stderr, "  %s\n  lacks \"%s\"\n", text, part);
      return false;
    }
  return true;
}

/* ---------------------------------------------------------------- */
/* Tests */

/* Verified both ways; then 2 MB each way through small socket buffers,
   the sender's buffer moving and growing between tries as the
   connection's output buffer does.  */
static void
test_tls_transfer (void)
{
  pair p;
  CHECK (open_pair (&p, opts ("client", "ca", true),
                    opts ("server", "ca", true), "localhost"));
  int small = 4096;
  setsockopt (p.fds[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  setsockopt (p.fds[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  handshake (&p);
  CHECK (p.client_st == TLS_OK && p.server_st == TLS_OK);
  CHECK (!strcmp (tls_version (p.client), "TLSv1.3"));

  size_t total = 2 << 20, sent = 0, got = 0, cap = 1 << 16;
  uint8_t *out = NULL, *in = malloc (total);
  size_t out_len = 0;
  uint32_t seed = 7;
  int stalls = 0;
  while (got < total && stalls < 100000)
    {
      /* Add to what waits, in a fresh block each time.  */
      size_t add = sent + out_len < total ? 5000 : 0;
      if (sent + out_len + add > total)
        add = total - sent - out_len;
      uint8_t *moved = malloc (out_len + add + 1);
      if (out_len)
        memcpy (moved, out, out_len);
      for (size_t k = 0; k < add; k++)
        {
          seed = seed * 1103515245 + 12345;
          moved[out_len + k] = (uint8_t) (seed >> 16);
        }
      free (out);
      out = moved;
      out_len += add;
      if (out_len)
        {
          ssize_t n = tls_send (p.client, out, out_len);
          if (n > 0)
            {
              memmove (out, out + n, out_len - (size_t) n);
              out_len -= (size_t) n;
              sent += (size_t) n;
            }
          else
            CHECK (errno == EAGAIN);
        }
      ssize_t n = tls_recv (p.server, in + got,
                            total - got < cap ? total - got : cap);
      if (n > 0)
        got += (size_t) n;
      else
        {
          CHECK (n < 0 && errno == EAGAIN);
          stalls++;
        }
    }
  CHECK (got == total);
  seed = 7;
  bool same = true;
  for (size_t k = 0; k < got && same; k++)
    {
      seed = seed * 1103515245 + 12345;
      same = in[k] == (uint8_t) (seed >> 16);
    }
  CHECK (same);
  /* And back: a short answer.  */
  CHECK (tls_send (p.server, "pong", 4) == 4);
  char answer[8];
  CHECK (tls_recv (p.client, answer, sizeof answer) == 4);
  CHECK (!memcmp (answer, "pong", 4));
  /* Nothing more: EAGAIN, wanting to read.  */
  CHECK (tls_recv (p.client, answer, sizeof answer) < 0 && errno == EAGAIN);
  CHECK (tls_wants_read (p.client));
  /* The server closes: the client reads the end.  */
  tls_session_free (p.server);
  p.server = NULL;
  close (p.fds[1]);
  p.fds[1] = -1;
  CHECK (tls_recv (p.client, answer, sizeof answer) == 0);
  free (out);
  free (in);
  close_pair (&p);
}

static void
test_tls_unknown_ca (void)
{
  pair p;
  CHECK (open_pair (&p, opts ("client", "other", true),
                    opts ("server", "ca", true), "localhost"));
  handshake (&p);
  CHECK (p.client_st == TLS_FAILED);
  CHECK (has (tls_error (p.client), "unknown CA"));
  CHECK (has (tls_error (p.client), "derl-tls-cacertfile"));
  close_pair (&p);
}

static void
test_tls_server_refuses_client (void)
{
  pair p;
  CHECK (open_pair (&p, opts ("stranger", "ca", true),
                    opts ("server", "ca", true), "localhost"));
  handshake (&p);
  CHECK (p.server_st == TLS_FAILED);
  CHECK (has (tls_error (p.server), "connecting node's certificate"));
  client_hears_alert (&p);
  CHECK (has (tls_error (p.client), "does not trust our certificate"));
  close_pair (&p);
}

static void
test_tls_hostname_mismatch (void)
{
  pair p;
  CHECK (open_pair (&p, opts ("client", "ca", true),
                    opts ("server", "ca", true), "otherhost"));
  handshake (&p);
  CHECK (p.client_st == TLS_FAILED);
  CHECK (has (tls_error (p.client), "not for the host"));
  close_pair (&p);
  /* An address is checked as one.  */
  CHECK (open_pair (&p, opts ("client", "ca", true),
                    opts ("server", "ca", true), "127.0.0.1"));
  handshake (&p);
  CHECK (p.client_st == TLS_FAILED);
  CHECK (has (tls_error (p.client), "not for the host"));
  close_pair (&p);
}

static void
test_tls_verify_off (void)
{
  pair p;
  CHECK (open_pair (&p, opts (NULL, NULL, false),
                    opts ("self", NULL, false), "elsewhere"));
  handshake (&p);
  CHECK (p.client_st == TLS_OK && p.server_st == TLS_OK);
  close_pair (&p);
  /* On, the same server is refused.  */
  CHECK (open_pair (&p, opts (NULL, "ca", true), opts ("self", NULL, false),
                    "localhost"));
  handshake (&p);
  CHECK (p.client_st == TLS_FAILED);
  CHECK (has (tls_error (p.client), "self-signed"));
  close_pair (&p);
}

static void
test_tls_client_certificate_required (void)
{
  pair p;
  CHECK (open_pair (&p, opts (NULL, "ca", true), opts ("server", "ca", true),
                    "localhost"));
  handshake (&p);
  CHECK (p.server_st == TLS_FAILED);
  CHECK (has (tls_error (p.server), "sent no certificate"));
  client_hears_alert (&p);
  CHECK (has (tls_error (p.client), "client certificate"));
  close_pair (&p);
}

/* A plain distribution handshake reaches a TLS server, and a TLS
   client meets a peer that closes.  */
static void
test_tls_not_tls (void)
{
  pair p;
  CHECK (open_pair (&p, opts ("client", "ca", true),
                    opts ("server", "ca", true), "localhost"));
  static const char name_msg[] = "\0\x15N\0\0\0\0\0\0\0\0\0\0\0\0\0\0a@b";
  CHECK (write (p.fds[0], name_msg, sizeof name_msg - 1) > 0);
  CHECK (tls_handshake (p.server) == TLS_FAILED);
  CHECK (has (tls_error (p.server), "does not speak TLS"));
  close (p.fds[1]);
  p.fds[1] = -1;
  CHECK (tls_handshake (p.client) == TLS_FAILED);
  CHECK (has (tls_error (p.client), "closed the connection during the TLS "
                                    "handshake"));
  close_pair (&p);
}

/* Data that came with the end of the handshake is never hidden: either
   the session holds it, where poll cannot see it, and tls_has_pending
   says so (OpenSSL 3.0 reads it ahead with the handshake), or it is
   still in the socket, for poll to see (OpenSSL 3.5 reads no further
   than the handshake).  */
static void
test_tls_pending_after_handshake (void)
{
  pair p;
  CHECK (open_pair (&p, opts ("client", "ca", true),
                    opts ("server", "ca", true), "localhost"));
  tls_status c = TLS_WANT_READ, sv = TLS_WANT_READ;
  /* Until the client is done; the server has yet to read its end.  */
  for (int round = 0; round < 50 && c != TLS_OK; round++)
    {
      c = tls_handshake (p.client);
      if (c != TLS_OK)
        sv = tls_handshake (p.server);
    }
  CHECK (c == TLS_OK && sv == TLS_WANT_READ);
  CHECK (tls_send (p.client, "early", 5) == 5);
  CHECK (tls_handshake (p.server) == TLS_OK);
  CHECK (tls_has_pending (p.server) || readable (p.fds[1]));
  char buf[16];
  CHECK (tls_recv (p.server, buf, sizeof buf) == 5);
  CHECK (!memcmp (buf, "early", 5));
  CHECK (!tls_has_pending (p.server) && !readable (p.fds[1]));
  close_pair (&p);
}

/* Held records come out without a read of the socket.  */
static void
test_tls_recv_held (void)
{
  pair p;
  CHECK (open_pair (&p, opts ("client", "ca", true),
                    opts ("server", "ca", true), "localhost"));
  handshake (&p);
  CHECK (p.client_st == TLS_OK && p.server_st == TLS_OK);
  for (int k = 0; k < 10; k++)
    CHECK (tls_send (p.client, "0123456789", 10) == 10);
  /* One small read takes every record into the session.  */
  char buf[128];
  CHECK (tls_recv (p.server, buf, 10) == 10);
  CHECK (tls_has_pending (p.server));
  /* More on the socket, which a held read must leave there.  */
  CHECK (tls_send (p.client, "ABCDEFGHIJ", 10) == 10);
  CHECK (tls_recv_held (p.server, buf, sizeof buf) == 90);
  CHECK (!tls_has_pending (p.server));
  CHECK (tls_recv_held (p.server, buf, sizeof buf) < 0 && errno == EAGAIN);
  CHECK (tls_recv (p.server, buf, sizeof buf) == 10);
  CHECK (!memcmp (buf, "ABCDEFGHIJ", 10));
  close_pair (&p);
}

static void
test_tls_bad_files (void)
{
  char error[600];
  tls_options o = opts ("client", "ca", true);
  free ((char *) o.keyfile);
  o.keyfile = strdup (path ("server.key"));
  CHECK (!tls_context_new (false, &o, error, sizeof error));
  CHECK (has (error, "does not belong"));
  free ((char *) o.keyfile);
  /* Never a prompt for a pass phrase: refused.  */
  o.keyfile = strdup (path ("locked.key"));
  CHECK (!tls_context_new (false, &o, error, sizeof error));
  CHECK (has (error, "pass phrase"));
  CHECK (!strstr (error, "secret"));
  free ((char *) o.cacertfile);
  o.cacertfile = strdup (path ("missing.pem"));
  free ((char *) o.keyfile);
  o.keyfile = strdup (path ("client.key"));
  CHECK (!tls_context_new (false, &o, error, sizeof error));
  CHECK (has (error, "derl-tls-cacertfile"));
  free_opts (&o);
  /* A server needs a certificate.  */
  o = opts (NULL, "ca", true);
  CHECK (!tls_context_new (true, &o, error, sizeof error));
  CHECK (has (error, "derl-tls-certfile"));
  free_opts (&o);
}

/* ---------------------------------------------------------------- */

static const test_case tests[] = {
  TEST (test_tls_transfer),
  TEST (test_tls_unknown_ca),
  TEST (test_tls_server_refuses_client),
  TEST (test_tls_hostname_mismatch),
  TEST (test_tls_verify_off),
  TEST (test_tls_client_certificate_required),
  TEST (test_tls_not_tls),
  TEST (test_tls_pending_after_handshake),
  TEST (test_tls_recv_held),
  TEST (test_tls_bad_files),
};

int
main (void)
{
  if (!make_files ())
    {
      fprintf (stderr, "cannot make the test certificates\n");
      return 1;
    }
  int status = run_tests (tests, sizeof tests / sizeof tests[0]);
  nftw (dir, remove_one, 8, FTW_DEPTH | FTW_PHYS);
  return status;
}
