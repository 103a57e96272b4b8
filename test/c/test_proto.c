/* test_proto.c --- unit tests for digest.c, epmd.c and handshake.c (both
   roles).

   Built with ASan and UBSan by `make build/test_proto'.  Digests marked
   "Erlang:" were computed by erlang:md5/1 on Erlang/OTP and are pasted
   here as constants, so the tests need no Erlang at run time.  The
   handshake is driven by a scripted fake peer and checked byte by
   byte.  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#define _GNU_SOURCE  /* memmem */

#include "digest.h"
#include "dist.h"
#include "epmd.h"
#include "handshake.h"
#include "check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool
same (const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
  return alen == blen && (alen == 0 || memcmp (a, b, alen) == 0);
}

static bool
contains (const uint8_t *hay, size_t hay_len, const void *needle, size_t n)
{
  return hay_len >= n && memmem (hay, hay_len, needle, n) != NULL;
}

/* ---------------------------------------------------------------- */
/* A byte builder for the fake peer and for expected output */

typedef struct
{
  uint8_t d[8192];
  size_t n;
  size_t msg_start;  /* where the open message's length goes */
} bytes;

static void
b_u8 (bytes *b, uint8_t v)
{
  b->d[b->n++] = v;
}

static void
b_u16 (bytes *b, uint16_t v)
{
  b_u8 (b, (uint8_t) (v >> 8));
  b_u8 (b, (uint8_t) v);
}

static void
b_u32 (bytes *b, uint32_t v)
{
  b_u16 (b, (uint16_t) (v >> 16));
  b_u16 (b, (uint16_t) v);
}

static void
b_u64 (bytes *b, uint64_t v)
{
  b_u32 (b, (uint32_t) (v >> 32));
  b_u32 (b, (uint32_t) v);
}

static void
b_mem (bytes *b, const void *p, size_t n)
{
  memcpy (b->d + b->n, p, n);
  b->n += n;
}

static void
b_str (bytes *b, const char *s)
{
  b_mem (b, s, strlen (s));
}

/* Open a handshake message: room for its 2-byte length.  */
static void
b_begin (bytes *b)
{
  b->msg_start = b->n;
  b->n += 2;
}

static void
b_end (bytes *b)
{
  size_t len = b->n - b->msg_start - 2;
  b->d[b->msg_start] = (uint8_t) (len >> 8);
  b->d[b->msg_start + 1] = (uint8_t) len;
}

/* ---------------------------------------------------------------- */
/* Digest */

static void
test_digest_known (void)
{
  uint8_t d[DIGEST_LEN];
  /* Erlang: erlang:md5(["cookie", integer_to_list(12345)]) */
  static const uint8_t cookie_12345[DIGEST_LEN]
    = { 85, 99, 54, 14, 228, 127, 53, 159, 193, 203, 16, 126, 1, 5, 45, 8 };
  /* Erlang: erlang:md5(["", integer_to_list(0)]) */
  static const uint8_t empty_0[DIGEST_LEN]
    = { 207, 205, 32, 132, 149, 213, 101, 239,
        102, 231, 223, 249, 249, 135, 100, 218 };
  /* Erlang: erlang:md5(["SECRETCOOKIE", integer_to_list(4294967295)]) */
  static const uint8_t secret_max[DIGEST_LEN]
    = { 69, 226, 115, 125, 123, 24, 27, 224,
        77, 235, 73, 55, 16, 179, 24, 180 };
  /* Erlang: erlang:md5(["abc", integer_to_list(1)]) */
  static const uint8_t abc_1[DIGEST_LEN]
    = { 35, 115, 76, 213, 42, 212, 164, 251,
        135, 125, 138, 30, 38, 229, 223, 95 };

  digest_compute ((const uint8_t *) "cookie", 6, 12345, d);
  CHECK (same (d, DIGEST_LEN, cookie_12345, DIGEST_LEN));
  digest_compute ((const uint8_t *) "", 0, 0, d);
  CHECK (same (d, DIGEST_LEN, empty_0, DIGEST_LEN));
  digest_compute ((const uint8_t *) "SECRETCOOKIE", 12, 4294967295u, d);
  CHECK (same (d, DIGEST_LEN, secret_max, DIGEST_LEN));
  digest_compute ((const uint8_t *) "abc", 3, 1, d);
  CHECK (same (d, DIGEST_LEN, abc_1, DIGEST_LEN));
}

static void
test_digest_equal_and_wipe (void)
{
  uint8_t a[DIGEST_LEN], b[DIGEST_LEN];
  digest_compute ((const uint8_t *) "cookie", 6, 1, a);
  memcpy (b, a, DIGEST_LEN);
  CHECK (digest_equal (a, b));
  b[0] ^= 1;
  CHECK (!digest_equal (a, b));
  b[0] ^= 1;
  b[DIGEST_LEN - 1] ^= 0x80;
  CHECK (!digest_equal (a, b));

  digest_wipe (a, sizeof a);
  static const uint8_t zeros[DIGEST_LEN];
  CHECK (same (a, DIGEST_LEN, zeros, DIGEST_LEN));
  digest_wipe (NULL, 0);
}

static void
test_digest_random (void)
{
  uint32_t v[8];
  bool all_same = true;
  for (int i = 0; i < 8; i++)
    {
      CHECK (digest_random_u32 (&v[i]));
      if (v[i] != v[0])
        all_same = false;
    }
  CHECK (!all_same);

  uint8_t buf[64] = { 0 };
  static const uint8_t zeros[64];
  CHECK (digest_random_bytes (buf, sizeof buf));
  CHECK (!same (buf, sizeof buf, zeros, sizeof zeros));
  CHECK (digest_random_bytes (buf, 0));
}

/* ---------------------------------------------------------------- */
/* EPMD requests */

static void
test_epmd_port_please_request (void)
{
  uint8_t out[300];
  size_t n = epmd_port_please_request ("foo", 3, out, sizeof out);
  CHECK (same (out, n, BYTES (0, 4, 122, 'f', 'o', 'o')));

  CHECK (epmd_port_please_request ("", 0, out, sizeof out) == 0);
  CHECK (epmd_port_please_request ("foo", 3, out, 5) == 0);
  CHECK (epmd_port_please_request ("foo", 3, out, 6) == 6);

  char name[256];
  memset (name, 'x', sizeof name);
  CHECK (epmd_port_please_request (name, 256, out, sizeof out) == 0);
  n = epmd_port_please_request (name, 255, out, sizeof out);
  CHECK (n == 258);
  CHECK (out[0] == 1 && out[1] == 0 && out[2] == 122 && out[3] == 'x');
}

static void
test_epmd_names_request (void)
{
  uint8_t out[3];
  size_t n = epmd_names_request (out, sizeof out);
  CHECK (same (out, n, BYTES (0, 1, 110)));
  CHECK (epmd_names_request (out, 2) == 0);
}

static void
test_epmd_alive2_request (void)
{
  uint8_t out[64];
  size_t n = epmd_alive2_request (0x1234, "emacs", 5, out, sizeof out);
  CHECK (same (out, n,
               BYTES (0, 18, 120, 0x12, 0x34, 77, 0, 0, 6, 0, 5, 0, 5,
                      'e', 'm', 'a', 'c', 's', 0, 0)));
  CHECK (epmd_alive2_request (1, "emacs", 5, out, 19) == 0);
  CHECK (epmd_alive2_request (1, "emacs", 5, out, 20) == 20);
  CHECK (epmd_alive2_request (1, "", 0, out, sizeof out) == 0);
}

/* ---------------------------------------------------------------- */
/* PORT2_RESP */

/* A successful PORT2_RESP for NAME on PORT with EXTRA_LEN extra bytes. */
static void
port2_ok (bytes *b, const char *name, uint16_t port, size_t extra_len)
{
  b_u8 (b, 119);
  b_u8 (b, 0);
  b_u16 (b, port);
  b_u8 (b, 77);
  b_u8 (b, 0);
  b_u16 (b, 6);
  b_u16 (b, 5);
  b_u16 (b, (uint16_t) strlen (name));
  b_str (b, name);
  b_u16 (b, (uint16_t) extra_len);
  for (size_t i = 0; i < extra_len; i++)
    b_u8 (b, (uint8_t) i);
}

static void
test_port2_ok (void)
{
  bytes b = { .n = 0 };
  port2_ok (&b, "foo", 40000, 0);
  epmd_node_info info;
  size_t used = 99;
  const char *reason = NULL;
  CHECK (epmd_parse_port2_resp (b.d, b.n, &info, &used, &reason) == EPMD_OK);
  CHECK (used == b.n && used == 17);
  CHECK (info.port == 40000);
  CHECK (info.node_type == 77);
  CHECK (info.protocol == 0);
  CHECK (info.highest_version == 6);
  CHECK (info.lowest_version == 5);
  CHECK (info.name_len == 3 && strcmp (info.name, "foo") == 0);

  /* Bytes after the response are not taken.  */
  b_str (&b, "junk");
  CHECK (epmd_parse_port2_resp (b.d, b.n, &info, &used, &reason) == EPMD_OK);
  CHECK (used == 17);
}

static void
test_port2_extra (void)
{
  bytes b = { .n = 0 };
  port2_ok (&b, "node", 4370, 300);
  epmd_node_info info;
  size_t used = 0;
  const char *reason = NULL;
  CHECK (epmd_parse_port2_resp (b.d, b.n, &info, &used, &reason) == EPMD_OK);
  CHECK (used == b.n && used == 12 + 4 + 2 + 300);
  CHECK (info.port == 4370 && strcmp (info.name, "node") == 0);
  /* One extra byte short: wait for it.  */
  CHECK (epmd_parse_port2_resp (b.d, b.n - 1, &info, &used, &reason)
         == EPMD_INCOMPLETE);
}

static void
test_port2_not_registered (void)
{
  epmd_node_info info;
  size_t used = 0;
  const char *reason = NULL;
  CHECK (epmd_parse_port2_resp (BYTES (119, 1), &info, &used, &reason)
         == EPMD_NOT_REGISTERED);
  CHECK (used == 2);
  CHECK (epmd_parse_port2_resp (BYTES (119), &info, &used, &reason)
         == EPMD_INCOMPLETE);
  CHECK (epmd_parse_port2_resp (NULL, 0, &info, &used, &reason)
         == EPMD_INCOMPLETE);
}

static void
test_port2_split (void)
{
  bytes b = { .n = 0 };
  port2_ok (&b, "splitme", 1234, 3);
  for (size_t k = 0; k < b.n; k++)
    {
      epmd_node_info info;
      size_t used = 0;
      const char *reason = NULL;
      /* A copy of just K bytes, so ASan catches any read past them.  */
      uint8_t *part = malloc (k ? k : 1);
      memcpy (part, b.d, k);
      CHECK (epmd_parse_port2_resp (part, k, &info, &used, &reason)
             == EPMD_INCOMPLETE);
      free (part);
    }
  epmd_node_info info;
  size_t used = 0;
  const char *reason = NULL;
  CHECK (epmd_parse_port2_resp (b.d, b.n, &info, &used, &reason) == EPMD_OK);
  CHECK (used == b.n && strcmp (info.name, "splitme") == 0);
}

static void
test_port2_bad (void)
{
  epmd_node_info info;
  size_t used = 0;
  const char *reason = NULL;

  CHECK (epmd_parse_port2_resp (BYTES (118, 0), &info, &used, &reason)
         == EPMD_BAD_RESPONSE);
  CHECK (reason != NULL);

  /* Port 0 is no port.  */
  bytes zero = { .n = 0 };
  port2_ok (&zero, "foo", 0, 0);
  reason = NULL;
  CHECK (epmd_parse_port2_resp (zero.d, zero.n, &info, &used, &reason)
         == EPMD_BAD_RESPONSE);
  CHECK (reason && strstr (reason, "port 0"));

  /* A name length of zero, and one past 255, refused at once.  */
  reason = NULL;
  CHECK (epmd_parse_port2_resp (BYTES (119, 0, 0, 1, 77, 0, 0, 6, 0, 5, 0, 0,
                                       0, 0),
                                &info, &used, &reason)
         == EPMD_BAD_RESPONSE);
  CHECK (reason != NULL);
  reason = NULL;
  CHECK (epmd_parse_port2_resp (BYTES (119, 0, 0, 1, 77, 0, 0, 6, 0, 5, 1, 0),
                                &info, &used, &reason)
         == EPMD_BAD_RESPONSE);
  CHECK (reason != NULL);

  /* Lengths larger than the bytes present: wait, never read past.  */
  CHECK (epmd_parse_port2_resp (BYTES (119, 0, 0, 1, 77, 0, 0, 6, 0, 5, 0,
                                       255, 'a'),
                                &info, &used, &reason)
         == EPMD_INCOMPLETE);
  CHECK (epmd_parse_port2_resp (BYTES (119, 0, 0, 1, 77, 0, 0, 6, 0, 5, 0, 1,
                                       'a', 0xff, 0xff, 1, 2),
                                &info, &used, &reason)
         == EPMD_INCOMPLETE);

  /* The longest name fits.  */
  bytes b = { .n = 0 };
  char name[256];
  memset (name, 'n', 255);
  name[255] = '\0';
  port2_ok (&b, name, 1, 0);
  CHECK (epmd_parse_port2_resp (b.d, b.n, &info, &used, &reason) == EPMD_OK);
  CHECK (info.name_len == 255 && info.name[255] == '\0');
}

/* ---------------------------------------------------------------- */
/* ALIVE2 */

static void
test_alive2 (void)
{
  uint32_t creation = 0;
  size_t used = 0;
  const char *reason = NULL;

  CHECK (epmd_parse_alive2_resp (BYTES (118, 0, 0x01, 0x02, 0x03, 0x04),
                                 &creation, &used, &reason) == EPMD_OK);
  CHECK (creation == 0x01020304 && used == 6);

  creation = 0;
  CHECK (epmd_parse_alive2_resp (BYTES (121, 0, 0x00, 0x07, 'x'),
                                 &creation, &used, &reason) == EPMD_OK);
  CHECK (creation == 7 && used == 4);

  CHECK (epmd_parse_alive2_resp (BYTES (118, 1, 0, 0, 0, 0),
                                 &creation, &used, &reason) == EPMD_REFUSED);
  CHECK (used == 6);
  CHECK (epmd_parse_alive2_resp (BYTES (121, 1, 0, 0),
                                 &creation, &used, &reason) == EPMD_REFUSED);

  static const uint8_t x[] = { 118, 0, 1, 2, 3, 4 };
  for (size_t k = 0; k < sizeof x; k++)
    CHECK (epmd_parse_alive2_resp (x, k, &creation, &used, &reason)
           == EPMD_INCOMPLETE);
  static const uint8_t o[] = { 121, 0, 1, 2 };
  for (size_t k = 0; k < sizeof o; k++)
    CHECK (epmd_parse_alive2_resp (o, k, &creation, &used, &reason)
           == EPMD_INCOMPLETE);

  reason = NULL;
  CHECK (epmd_parse_alive2_resp (BYTES (119, 0, 0, 0), &creation, &used,
                                 &reason) == EPMD_BAD_RESPONSE);
  CHECK (reason != NULL);
}

/* ---------------------------------------------------------------- */
/* NAMES */

/* Parse the names response TEXT (after a 4-byte header); the result of
   the call that stopped, the entries in E, their count in *N.  */
static epmd_result
names (const char *text, epmd_name_entry *e, size_t max, size_t *n)
{
  bytes b = { .n = 0 };
  b_u32 (&b, 4369);
  b_str (&b, text);
  size_t pos = 0;
  const char *reason = NULL;
  *n = 0;
  for (;;)
    {
      epmd_name_entry entry;
      epmd_result r = epmd_names_next (b.d, b.n, &pos, &entry, &reason);
      if (r != EPMD_OK)
        {
          CHECK (r != EPMD_BAD_RESPONSE || reason != NULL);
          return r;
        }
      CHECK (pos <= b.n);
      if (*n < max)
        e[*n] = entry;
      ++*n;
    }
}

static void
test_names (void)
{
  epmd_name_entry e[4];
  size_t n;
  CHECK (names ("name foo at port 4000\nname bar at port 65535\n", e, 4, &n)
         == EPMD_INCOMPLETE);
  CHECK (n == 2);
  CHECK (strcmp (e[0].name, "foo") == 0 && e[0].name_len == 3
         && e[0].port == 4000);
  CHECK (strcmp (e[1].name, "bar") == 0 && e[1].port == 65535);

  CHECK (names ("", e, 4, &n) == EPMD_INCOMPLETE && n == 0);

  /* A name holding " at port ": the last one ends it.  */
  CHECK (names ("name a at port b at port 7\n", e, 4, &n)
         == EPMD_INCOMPLETE);
  CHECK (n == 1 && strcmp (e[0].name, "a at port b") == 0 && e[0].port == 7);

  /* A short header.  */
  size_t pos = 0;
  epmd_name_entry entry;
  const char *reason = NULL;
  CHECK (epmd_names_next (BYTES (0, 0, 17), &pos, &entry, &reason)
         == EPMD_BAD_RESPONSE);
  CHECK (reason != NULL);
}

static void
test_names_malformed (void)
{
  epmd_name_entry e[4];
  size_t n;
  static const char *const bad[] = {
    "name foo at port 4000",          /* no newline */
    "nam foo at port 4000\n",         /* no prefix */
    "name foo at prt 4000\n",         /* no " at port " */
    "name  at port 4000\n",           /* empty name */
    "name foo at port \n",            /* empty port */
    "name foo at port 40a0\n",        /* not a number */
    "name foo at port 65536\n",       /* too large */
    "name foo at port 000001\n",      /* too many digits */
    "name foo at port -1\n",
    "name foo at port 4000 \n",       /* trailing space */
    "\n",
    "name\n",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    {
      CHECK (names (bad[i], e, 4, &n) == EPMD_BAD_RESPONSE);
      CHECK (n == 0);
    }
  /* A good line, then a bad one: the good entry comes first.  */
  CHECK (names ("name ok at port 1\ngarbage\n", e, 4, &n)
         == EPMD_BAD_RESPONSE);
  CHECK (n == 1 && e[0].port == 1);

  /* Names of 255 bytes pass, of 256 do not.  */
  char line[400];
  memset (line, 0, sizeof line);
  strcpy (line, "name ");
  memset (line + 5, 'z', 255);
  strcat (line, " at port 9\n");
  CHECK (names (line, e, 4, &n) == EPMD_INCOMPLETE && n == 1);
  CHECK (e[0].name_len == 255);
  memset (line + 5, 'z', 256);
  strcpy (line + 5 + 256, " at port 9\n");
  CHECK (names (line, e, 4, &n) == EPMD_BAD_RESPONSE && n == 0);
}

/* ---------------------------------------------------------------- */
/* Handshake: the scripted fake peer */

#define OUR_NAME "emacs@host"
#define PEER_NAME "peer@otherhost"
#define COOKIE "SECRETCOOKIE"
#define OUR_FLAGS (HS_PEER_REQUIRED | DFLAG_SPAWN | DFLAG_V4_NC \
                   | DFLAG_MANDATORY_25_DIGEST)
#define OUR_CREATION 0x11223344u
#define PEER_FLAGS (HS_PEER_REQUIRED | DFLAG_DIST_MONITOR | DFLAG_ALIAS)
#define PEER_CREATION 0xCAFEF00Du
#define PEER_CHALLENGE 4294967295u

static void
init (hs_state *hs, int peer_highest)
{
  bool ok = hs_init_initiator (hs, (const uint8_t *) OUR_NAME,
                               strlen (OUR_NAME), (const uint8_t *) COOKIE,
                               strlen (COOKIE), OUR_FLAGS, OUR_CREATION,
                               peer_highest);
  CHECK (ok);
  CHECK (hs->state == HS_AWAIT_STATUS);
}

/* Everything sent so far: check it is what was expected, then drain.  */
static bool
took_out (hs_state *hs, const bytes *expected)
{
  bool ok = same (hs->out.data, hs->out.len, expected->d, expected->n)
            && !contains (hs->out.data, hs->out.len, COOKIE,
                          strlen (COOKIE));
  hs->out.len = 0;
  return ok;
}

static void
peer_status (bytes *b, const char *status)
{
  b_begin (b);
  b_u8 (b, 's');
  b_str (b, status);
  b_end (b);
}

static void
peer_challenge_v6 (bytes *b, uint64_t flags, const char *name)
{
  b_begin (b);
  b_u8 (b, 'N');
  b_u64 (b, flags);
  b_u32 (b, PEER_CHALLENGE);
  b_u32 (b, PEER_CREATION);
  b_u16 (b, (uint16_t) strlen (name));
  b_str (b, name);
  b_end (b);
}

static void
peer_challenge_v5 (bytes *b, uint32_t flags, const char *name)
{
  b_begin (b);
  b_u8 (b, 'n');
  b_u16 (b, 5);
  b_u32 (b, flags);
  b_u32 (b, PEER_CHALLENGE);
  b_str (b, name);
  b_end (b);
}

static void
peer_ack (bytes *b, const hs_state *hs, bool good)
{
  uint8_t d[DIGEST_LEN];
  digest_compute ((const uint8_t *) COOKIE, strlen (COOKIE),
                  hs->our_challenge, d);
  if (!good)
    d[7] ^= 0x40;
  b_begin (b);
  b_u8 (b, 'a');
  b_mem (b, d, DIGEST_LEN);
  b_end (b);
}

/* What we must send after the peer's challenge.  */
static void
our_reply (bytes *b, const hs_state *hs)
{
  /* Erlang: erlang:md5(["SECRETCOOKIE", integer_to_list(4294967295)]) */
  static const uint8_t digest[DIGEST_LEN]
    = { 69, 226, 115, 125, 123, 24, 27, 224,
        77, 235, 73, 55, 16, 179, 24, 180 };
  b_u16 (b, 21);
  b_u8 (b, 'r');
  b_u32 (b, hs->our_challenge);
  b_mem (b, digest, DIGEST_LEN);
}

static void
our_complement (bytes *b)
{
  b_u16 (b, 9);
  b_u8 (b, 'c');
  b_u32 (b, (uint32_t) ((OUR_FLAGS | DFLAG_HANDSHAKE_23) >> 32));
  b_u32 (b, OUR_CREATION);
}

/* Feed all of B; expect status ST and that all of it was taken.  */
static hs_status
feed_all (hs_state *hs, const bytes *b)
{
  size_t consumed = 12345;
  hs_status st = hs_feed (hs, b->d, b->n, &consumed);
  CHECK (consumed == b->n);
  return st;
}

static bool
error_clean (const hs_state *hs)
{
  return hs->error && !strstr (hs->error, COOKIE);
}

static void
test_hs_v6_success (void)
{
  hs_state hs;
  init (&hs, 6);

  /* 'N', flags, creation, name length, name; exactly.  */
  uint64_t f = OUR_FLAGS | DFLAG_HANDSHAKE_23;
  CHECK (same (hs.out.data, hs.out.len,
               BYTES (0, 25, 'N',
                      (uint8_t) (f >> 56), (uint8_t) (f >> 48),
                      (uint8_t) (f >> 40), (uint8_t) (f >> 32),
                      (uint8_t) (f >> 24), (uint8_t) (f >> 16),
                      (uint8_t) (f >> 8), (uint8_t) f,
                      0x11, 0x22, 0x33, 0x44, 0, 10,
                      'e', 'm', 'a', 'c', 's', '@', 'h', 'o', 's', 't')));
  hs.out.len = 0;

  bytes in = { .n = 0 }, want = { .n = 0 };
  peer_status (&in, "ok");
  CHECK (feed_all (&hs, &in) == HS_CONTINUE);
  CHECK (hs.state == HS_AWAIT_CHALLENGE);
  CHECK (took_out (&hs, &want));

  in.n = 0;
  peer_challenge_v6 (&in, PEER_FLAGS, PEER_NAME);
  CHECK (feed_all (&hs, &in) == HS_CONTINUE);
  CHECK (hs.state == HS_AWAIT_ACK);
  our_reply (&want, &hs);
  CHECK (took_out (&hs, &want));

  in.n = 0;
  peer_ack (&in, &hs, true);
  CHECK (feed_all (&hs, &in) == HS_DONE);
  CHECK (hs.state == HS_STATE_DONE);
  CHECK (hs.kind == HS_ERR_NONE && hs.error == NULL);
  CHECK (hs.peer_flags == PEER_FLAGS);
  CHECK (hs.peer_creation == PEER_CREATION);
  CHECK (hs.peer_name_len == strlen (PEER_NAME));
  CHECK (strcmp ((const char *) hs.peer_name, PEER_NAME) == 0);
  want.n = 0;
  CHECK (took_out (&hs, &want));

  /* Done stays done and takes nothing more.  */
  size_t consumed = 1;
  CHECK (hs_feed (&hs, in.d, in.n, &consumed) == HS_DONE && consumed == 0);
  hs_free (&hs);
}

static void
test_hs_v5_complement (void)
{
  hs_state hs;
  init (&hs, 5);
  CHECK (hs.sent_old_name);

  /* 'n', version 5, the low flag bits (DFLAG_HANDSHAKE_23 set), name. */
  uint32_t f = (uint32_t) (OUR_FLAGS | DFLAG_HANDSHAKE_23);
  CHECK (f & DFLAG_HANDSHAKE_23);
  CHECK (same (hs.out.data, hs.out.len,
               BYTES (0, 17, 'n', 0, 5,
                      (uint8_t) (f >> 24), (uint8_t) (f >> 16),
                      (uint8_t) (f >> 8), (uint8_t) f,
                      'e', 'm', 'a', 'c', 's', '@', 'h', 'o', 's', 't')));
  hs.out.len = 0;

  bytes in = { .n = 0 }, want = { .n = 0 };
  peer_status (&in, "ok");
  peer_challenge_v6 (&in, PEER_FLAGS, PEER_NAME);
  CHECK (feed_all (&hs, &in) == HS_CONTINUE);
  /* The complement, then the reply.  */
  uint64_t hi = (OUR_FLAGS | DFLAG_HANDSHAKE_23) >> 32;
  CHECK (hs.out.len >= 11);
  CHECK (same (hs.out.data, 11,
               BYTES (0, 9, 'c', (uint8_t) (hi >> 24), (uint8_t) (hi >> 16),
                      (uint8_t) (hi >> 8), (uint8_t) hi,
                      0x11, 0x22, 0x33, 0x44)));
  our_complement (&want);
  our_reply (&want, &hs);
  CHECK (took_out (&hs, &want));

  in.n = 0;
  peer_ack (&in, &hs, true);
  CHECK (feed_all (&hs, &in) == HS_DONE);
  CHECK (hs.peer_creation == PEER_CREATION);
  hs_free (&hs);
}

static void
test_hs_v5_old_challenge (void)
{
  hs_state hs;
  init (&hs, 5);
  hs.out.len = 0;

  bytes in = { .n = 0 }, want = { .n = 0 };
  peer_status (&in, "ok");
  peer_challenge_v5 (&in, (uint32_t) PEER_FLAGS, PEER_NAME);
  CHECK (feed_all (&hs, &in) == HS_CONTINUE);
  /* No complement: just the reply.  */
  our_reply (&want, &hs);
  CHECK (took_out (&hs, &want));
  CHECK (hs.peer_creation == 0);
  CHECK (hs.peer_flags == (uint32_t) PEER_FLAGS);
  CHECK (strcmp ((const char *) hs.peer_name, PEER_NAME) == 0);

  in.n = 0;
  peer_ack (&in, &hs, true);
  CHECK (feed_all (&hs, &in) == HS_DONE);
  hs_free (&hs);
}

/* An old challenge answers only an old name; its version must be 5.  */
static void
test_hs_old_challenge_refused (void)
{
  hs_state hs;
  init (&hs, 6);
  bytes in = { .n = 0 };
  peer_status (&in, "ok");
  peer_challenge_v5 (&in, (uint32_t) PEER_FLAGS, PEER_NAME);
  CHECK (feed_all (&hs, &in) == HS_FAILED);
  CHECK (hs.kind == HS_ERR_PROTOCOL && error_clean (&hs));
  hs_free (&hs);

  init (&hs, 5);
  in.n = 0;
  peer_status (&in, "ok");
  peer_challenge_v5 (&in, (uint32_t) PEER_FLAGS, PEER_NAME);
  in.d[in.n - strlen (PEER_NAME) - 9] = 6;  /* the version's low byte */
  CHECK (feed_all (&hs, &in) == HS_FAILED);
  CHECK (hs.kind == HS_ERR_PROTOCOL);
  hs_free (&hs);
}

/* Run a v6 handshake whose status is STATUS: the result after it.  */
static hs_status
after_status (hs_state *hs, const char *status)
{
  init (hs, 6);
  hs->out.len = 0;
  bytes in = { .n = 0 };
  peer_status (&in, status);
  return feed_all (hs, &in);
}

static void
test_hs_status (void)
{
  hs_state hs;
  bytes none = { .n = 0 };

  CHECK (after_status (&hs, "ok") == HS_CONTINUE);
  CHECK (hs.state == HS_AWAIT_CHALLENGE && took_out (&hs, &none));
  hs_free (&hs);

  CHECK (after_status (&hs, "ok_simultaneous") == HS_CONTINUE);
  CHECK (hs.state == HS_AWAIT_CHALLENGE && took_out (&hs, &none));
  hs_free (&hs);

  static const char *const refused[] = { "nok", "not_allowed" };
  for (int i = 0; i < 2; i++)
    {
      CHECK (after_status (&hs, refused[i]) == HS_FAILED);
      CHECK (hs.state == HS_STATE_FAILED);
      CHECK (hs.kind == (i == 0 ? HS_ERR_SIMULTANEOUS : HS_ERR_REFUSED)
             && error_clean (&hs));
      CHECK (took_out (&hs, &none));
      hs_free (&hs);
    }

  static const char *const garbage[]
    = { "", "o", "okay", "OK", "ok\n", "nokk", "named:", "alive!", "true" };
  for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++)
    {
      CHECK (after_status (&hs, garbage[i]) == HS_FAILED);
      CHECK (hs.kind == HS_ERR_PROTOCOL && error_clean (&hs));
      hs_free (&hs);
    }

  /* Not a status message at all.  */
  init (&hs, 6);
  bytes in = { .n = 0 };
  peer_challenge_v6 (&in, PEER_FLAGS, PEER_NAME);
  CHECK (feed_all (&hs, &in) == HS_FAILED && hs.kind == HS_ERR_PROTOCOL);
  hs_free (&hs);

  /* An empty message.  */
  init (&hs, 6);
  CHECK (hs_feed (&hs, BYTES (0, 0), &(size_t) { 0 }) == HS_FAILED);
  CHECK (hs.kind == HS_ERR_PROTOCOL);
  hs_free (&hs);
}

/* Status alive: the node holds a connection from our name.  Unless it
   is known to be our own, now gone, answer false and give up.  */
static void
test_hs_status_alive (void)
{
  hs_state hs;
  CHECK (after_status (&hs, "alive") == HS_FAILED);
  CHECK (hs.kind == HS_ERR_NAME_IN_USE && error_clean (&hs));
  CHECK (same (hs.out.data, hs.out.len,
               BYTES (0, 6, 's', 'f', 'a', 'l', 's', 'e')));
  hs_free (&hs);

  init (&hs, 6);
  hs.replace_old = true;
  hs.out.len = 0;
  bytes st = { .n = 0 };
  peer_status (&st, "alive");
  CHECK (feed_all (&hs, &st) == HS_CONTINUE);
  CHECK (hs.state == HS_AWAIT_CHALLENGE);
  CHECK (same (hs.out.data, hs.out.len,
               BYTES (0, 5, 's', 't', 'r', 'u', 'e')));
  hs.out.len = 0;

  bytes in = { .n = 0 }, want = { .n = 0 };
  peer_challenge_v6 (&in, PEER_FLAGS, PEER_NAME);
  peer_ack (&in, &hs, true);
  CHECK (feed_all (&hs, &in) == HS_DONE);
  our_reply (&want, &hs);
  CHECK (took_out (&hs, &want));
  hs_free (&hs);
}

/* The challenge must name the node dialled.  */
static void
test_hs_wrong_peer (void)
{
  hs_state hs;
  init (&hs, 6);
  CHECK (hs_expect_peer (&hs, (const uint8_t *) PEER_NAME,
                         strlen (PEER_NAME)));
  CHECK (!hs_expect_peer (&hs, (const uint8_t *) "", 0));
  bytes in = { .n = 0 };
  peer_status (&in, "ok");
  peer_challenge_v6 (&in, PEER_FLAGS, "peer@elsewhere");
  CHECK (feed_all (&hs, &in) == HS_FAILED);
  CHECK (hs.kind == HS_ERR_WRONG_PEER && error_clean (&hs));
  hs_free (&hs);

  /* A prefix of the name is not the name.  */
  init (&hs, 6);
  hs_expect_peer (&hs, (const uint8_t *) PEER_NAME, strlen (PEER_NAME));
  in.n = 0;
  peer_status (&in, "ok");
  peer_challenge_v6 (&in, PEER_FLAGS, "peer@other");
  CHECK (feed_all (&hs, &in) == HS_FAILED && hs.kind == HS_ERR_WRONG_PEER);
  hs_free (&hs);

  /* The right name goes on.  */
  init (&hs, 6);
  hs_expect_peer (&hs, (const uint8_t *) PEER_NAME, strlen (PEER_NAME));
  hs.out.len = 0;
  in.n = 0;
  peer_status (&in, "ok");
  peer_challenge_v6 (&in, PEER_FLAGS, PEER_NAME);
  peer_ack (&in, &hs, true);
  CHECK (feed_all (&hs, &in) == HS_DONE);
  hs_free (&hs);
}

static void
test_hs_wrong_ack (void)
{
  hs_state hs;
  init (&hs, 6);
  bytes in = { .n = 0 };
  peer_status (&in, "ok");
  peer_challenge_v6 (&in, PEER_FLAGS, PEER_NAME);
  peer_ack (&in, &hs, false);
  CHECK (feed_all (&hs, &in) == HS_FAILED);
  CHECK (hs.state == HS_STATE_FAILED);
  CHECK (hs.kind == HS_ERR_AUTH && error_clean (&hs));
  CHECK (hs.error && strstr (hs.error, "cookie") != NULL);
  /* Failed stays failed, takes nothing, keeps its reason.  */
  size_t consumed = 1;
  CHECK (hs_feed (&hs, in.d, in.n, &consumed) == HS_FAILED && consumed == 0);
  CHECK (hs.kind == HS_ERR_AUTH);
  hs_free (&hs);

  /* An ack of the wrong size, or with the wrong tag.  */
  for (int i = 0; i < 3; i++)
    {
      init (&hs, 6);
      in.n = 0;
      peer_status (&in, "ok");
      peer_challenge_v6 (&in, PEER_FLAGS, PEER_NAME);
      b_begin (&in);
      b_u8 (&in, i == 2 ? 'A' : 'a');
      uint8_t d[DIGEST_LEN];
      digest_compute ((const uint8_t *) COOKIE, strlen (COOKIE),
                      hs.our_challenge, d);
      b_mem (&in, d, i == 0 ? DIGEST_LEN - 1 : DIGEST_LEN);
      if (i == 1)
        b_u8 (&in, 0);
      b_end (&in);
      CHECK (feed_all (&hs, &in) == HS_FAILED);
      CHECK (hs.kind == HS_ERR_PROTOCOL);
      hs_free (&hs);
    }
}

static void
test_hs_peer_closed (void)
{
  hs_state hs;
  bytes in = { .n = 0 };

  /* Closed before any answer to our name: as an OTP 23 TLS node does
     to a plain connection.  */
  init (&hs, 6);
  CHECK (hs_peer_closed (&hs) == HS_FAILED);
  CHECK (hs.kind == HS_ERR_PROTOCOL && error_clean (&hs));
  CHECK (hs.error
         && strstr (hs.error, "connection closed during handshake") == hs.error
         && strstr (hs.error, "before the node answered our name: is it "
                              "a TLS node"));
  hs_free (&hs);

  CHECK (after_status (&hs, "ok") == HS_CONTINUE);
  CHECK (hs_peer_closed (&hs) == HS_FAILED);
  CHECK (hs.kind == HS_ERR_PROTOCOL && error_clean (&hs));
  CHECK (hs.error
         && strcmp (hs.error, "connection closed during handshake") == 0);
  hs_free (&hs);

  CHECK (after_status (&hs, "ok") == HS_CONTINUE);
  peer_challenge_v6 (&in, PEER_FLAGS, PEER_NAME);
  CHECK (feed_all (&hs, &in) == HS_CONTINUE && hs.state == HS_AWAIT_ACK);
  CHECK (hs_peer_closed (&hs) == HS_FAILED);
  CHECK (hs.state == HS_STATE_FAILED);
  CHECK (hs.kind == HS_ERR_AUTH && error_clean (&hs));
  CHECK (hs.error && strstr (hs.error, "cookie mismatch") != NULL);
  hs_free (&hs);

  /* After the end, a close changes nothing.  */
  init (&hs, 6);
  in.n = 0;
  peer_status (&in, "ok");
  peer_challenge_v6 (&in, PEER_FLAGS, PEER_NAME);
  peer_ack (&in, &hs, true);
  CHECK (feed_all (&hs, &in) == HS_DONE);
  CHECK (hs_peer_closed (&hs) == HS_DONE && hs.state == HS_STATE_DONE);
  hs_free (&hs);

  CHECK (after_status (&hs, "nok") == HS_FAILED);
  CHECK (hs_peer_closed (&hs) == HS_FAILED && hs.kind == HS_ERR_SIMULTANEOUS);
  hs_free (&hs);
}

static void
test_hs_missing_flags (void)
{
  static const uint64_t lacking[]
    = { DFLAG_UTF8_ATOMS, DFLAG_HANDSHAKE_23, DFLAG_BIG_CREATION,
        DFLAG_EXTENDED_REFERENCES, HS_PEER_REQUIRED };
  for (size_t i = 0; i < sizeof lacking / sizeof lacking[0]; i++)
    {
      hs_state hs;
      CHECK (after_status (&hs, "ok") == HS_CONTINUE);
      bytes in = { .n = 0 }, none = { .n = 0 };
      peer_challenge_v6 (&in, PEER_FLAGS & ~lacking[i], PEER_NAME);
      CHECK (feed_all (&hs, &in) == HS_FAILED);
      CHECK (hs.kind == HS_ERR_FLAGS && error_clean (&hs));
      /* No reply was sent to a node we refuse.  */
      CHECK (took_out (&hs, &none));
      hs_free (&hs);
    }

  /* The old challenge too.  */
  hs_state hs;
  init (&hs, 5);
  bytes in = { .n = 0 };
  peer_status (&in, "ok");
  peer_challenge_v5 (&in, (uint32_t) (PEER_FLAGS & ~DFLAG_MAP_TAG), PEER_NAME);
  CHECK (feed_all (&hs, &in) == HS_FAILED && hs.kind == HS_ERR_FLAGS);
  hs_free (&hs);
}

/* Feed a challenge message BODY (after the status ok): the result.  */
static hs_status
challenge_body (hs_state *hs, const bytes *body)
{
  CHECK (after_status (hs, "ok") == HS_CONTINUE);
  bytes in = { .n = 0 };
  b_begin (&in);
  b_mem (&in, body->d, body->n);
  b_end (&in);
  return feed_all (hs, &in);
}

static void
test_hs_bad_challenge (void)
{
  hs_state hs;
  bytes body;

  /* Too short for its fixed fields.  */
  body.n = 0;
  b_u8 (&body, 'N');
  b_u64 (&body, PEER_FLAGS);
  b_u32 (&body, 1);
  b_u32 (&body, 2);
  b_u8 (&body, 0);
  CHECK (challenge_body (&hs, &body) == HS_FAILED);
  CHECK (hs.kind == HS_ERR_PROTOCOL);
  hs_free (&hs);

  /* A name length past the message.  */
  body.n = 0;
  b_u8 (&body, 'N');
  b_u64 (&body, PEER_FLAGS);
  b_u32 (&body, 1);
  b_u32 (&body, 2);
  b_u16 (&body, 5);
  b_str (&body, "abcd");
  CHECK (challenge_body (&hs, &body) == HS_FAILED);
  CHECK (hs.kind == HS_ERR_PROTOCOL);
  hs_free (&hs);

  /* An empty name.  */
  body.n = 0;
  b_u8 (&body, 'N');
  b_u64 (&body, PEER_FLAGS);
  b_u32 (&body, 1);
  b_u32 (&body, 2);
  b_u16 (&body, 0);
  CHECK (challenge_body (&hs, &body) == HS_FAILED);
  CHECK (hs.kind == HS_ERR_PROTOCOL);
  hs_free (&hs);

  /* Names up to HS_NAME_ROOM - 1 bytes, and data after the name.  */
  for (size_t name_len = HS_NAME_ROOM - 1; name_len <= HS_NAME_ROOM;
       name_len++)
    {
      body.n = 0;
      b_u8 (&body, 'N');
      b_u64 (&body, PEER_FLAGS);
      b_u32 (&body, 1);
      b_u32 (&body, 2);
      b_u16 (&body, (uint16_t) name_len);
      for (size_t i = 0; i < name_len; i++)
        b_u8 (&body, 'p');
      b_str (&body, "extra data, ignored");
      hs_status st = challenge_body (&hs, &body);
      if (name_len < HS_NAME_ROOM)
        {
          CHECK (st == HS_CONTINUE);
          CHECK (hs.peer_name_len == name_len);
          CHECK (hs.peer_name[name_len] == '\0');
        }
      else
        CHECK (st == HS_FAILED && hs.kind == HS_ERR_PROTOCOL);
      hs_free (&hs);
    }

  /* Old challenges: too short, name too long.  */
  init (&hs, 5);
  bytes in = { .n = 0 };
  peer_status (&in, "ok");
  b_begin (&in);
  b_u8 (&in, 'n');
  b_u16 (&in, 5);
  b_u32 (&in, (uint32_t) PEER_FLAGS);
  b_u8 (&in, 0);
  b_end (&in);
  CHECK (feed_all (&hs, &in) == HS_FAILED && hs.kind == HS_ERR_PROTOCOL);
  hs_free (&hs);

  init (&hs, 5);
  in.n = 0;
  peer_status (&in, "ok");
  char big[HS_NAME_ROOM + 1];
  memset (big, 'q', HS_NAME_ROOM);
  big[HS_NAME_ROOM] = '\0';
  peer_challenge_v5 (&in, (uint32_t) PEER_FLAGS, big);
  CHECK (feed_all (&hs, &in) == HS_FAILED && hs.kind == HS_ERR_PROTOCOL);
  hs_free (&hs);
}

/* The whole v6 (or v5 complement) conversation as one byte stream, our
   expected output, and TAIL bytes of the connected phase after it.  */
static void
script (hs_state *hs, int version, bytes *in, bytes *want, size_t *hs_len)
{
  init (hs, version);
  hs->replace_old = true;
  in->n = 0;
  want->n = 0;
  b_mem (want, hs->out.data, hs->out.len);
  peer_status (in, "alive");
  b_u16 (want, 5);
  b_str (want, "strue");
  peer_challenge_v6 (in, PEER_FLAGS, PEER_NAME);
  if (version == 5)
    our_complement (want);
  our_reply (want, hs);
  peer_ack (in, hs, true);
  *hs_len = in->n;
  /* A tick and a message of the connected phase: not ours.  */
  b_mem (in, "\0\0\0\0\0\0\0\3abc", 11);
}

/* Feed IN like a socket reader would: chunk boundaries at CUTS[0..NCUTS),
   unconsumed bytes kept for the next read.  Checks the outcome.  */
static void
feed_chunks (hs_state *hs, const bytes *in, size_t hs_len, const bytes *want,
             const size_t *cuts, size_t ncuts)
{
  uint8_t *pending = malloc (in->n + 1);
  size_t npending = 0, taken = 0, from = 0;
  uint8_t *sent = malloc (want->n + 256);
  size_t nsent = 0;
  hs_status st = HS_CONTINUE;
  for (size_t c = 0; c <= ncuts && st == HS_CONTINUE; c++)
    {
      size_t to = c < ncuts ? cuts[c] : in->n;
      memcpy (pending + npending, in->d + from, to - from);
      npending += to - from;
      from = to;
      size_t consumed = 0;
      st = hs_feed (hs, pending, npending, &consumed);
      CHECK (consumed <= npending);
      memmove (pending, pending + consumed, npending - consumed);
      npending -= consumed;
      taken += consumed;
      if (nsent + hs->out.len <= want->n + 256)
        {
          memcpy (sent + nsent, hs->out.data, hs->out.len);
          nsent += hs->out.len;
        }
      hs->out.len = 0;
    }
  CHECK (st == HS_DONE);
  CHECK (taken == hs_len);
  CHECK (same (sent, nsent, want->d, want->n));
  free (pending);
  free (sent);
}

static void
test_hs_split_everywhere (void)
{
  for (int version = 5; version <= 6; version++)
    {
      hs_state hs;
      bytes in, want;
      size_t hs_len;
      script (&hs, version, &in, &want, &hs_len);
      hs_free (&hs);

      /* Two reads, cut at every byte.  */
      for (size_t k = 0; k <= in.n; k++)
        {
          bytes in2, want2;
          size_t hs_len2;
          script (&hs, version, &in2, &want2, &hs_len2);
          feed_chunks (&hs, &in2, hs_len2, &want2, &k, 1);
          hs_free (&hs);
        }

      /* One byte a read.  */
      size_t cuts[sizeof in.d];
      script (&hs, version, &in, &want, &hs_len);
      for (size_t k = 0; k < in.n; k++)
        cuts[k] = k + 1;
      feed_chunks (&hs, &in, hs_len, &want, cuts, in.n);
      hs_free (&hs);
    }
}

static void
test_hs_bytes_after_ack (void)
{
  hs_state hs;
  bytes in, want;
  size_t hs_len;
  script (&hs, 6, &in, &want, &hs_len);
  hs.out.len = 0;
  size_t consumed = 0;
  CHECK (hs_feed (&hs, in.d, in.n, &consumed) == HS_DONE);
  CHECK (consumed == hs_len && consumed < in.n);
  CHECK (memcmp (in.d + consumed, "\0\0\0\0", 4) == 0);
  hs_free (&hs);
}

static void
test_hs_cookie_never_shown (void)
{
  /* Every outcome above checks its error string; here, the bytes sent
     over a full conversation of each form.  */
  for (int version = 5; version <= 6; version++)
    {
      hs_state hs;
      bytes in, want;
      size_t hs_len;
      script (&hs, version, &in, &want, &hs_len);
      size_t consumed;
      CHECK (hs_feed (&hs, in.d, in.n, &consumed) == HS_DONE);
      CHECK (!contains (hs.out.data, hs.out.len, COOKIE, strlen (COOKIE)));
      CHECK (!contains (hs.out.data, hs.out.len, "SECRET", 6));
      hs_free (&hs);
      CHECK (hs.cookie == NULL && hs.out.data == NULL);
    }
}

static void
test_hs_init_limits (void)
{
  hs_state hs;
  uint8_t name[HS_NAME_ROOM];
  memset (name, 'a', sizeof name);

  CHECK (!hs_init_initiator (&hs, name, HS_NAME_ROOM, (const uint8_t *) "c",
                             1, OUR_FLAGS, 1, 6));
  CHECK (hs.error != NULL && hs.state == HS_STATE_FAILED);
  hs_free (&hs);

  CHECK (!hs_init_initiator (&hs, name, 0, (const uint8_t *) "c", 1,
                             OUR_FLAGS, 1, 6));
  hs_free (&hs);

  CHECK (hs_init_initiator (&hs, name, HS_NAME_ROOM - 1,
                            (const uint8_t *) "c", 1, OUR_FLAGS, 1, 6));
  CHECK (hs.out.len == 2 + 1 + 8 + 4 + 2 + HS_NAME_ROOM - 1);
  CHECK (hs.out.data[0] == (uint8_t) ((hs.out.len - 2) >> 8));
  CHECK (hs.out.data[1] == (uint8_t) (hs.out.len - 2));
  hs_free (&hs);
  hs_free (&hs);  /* twice is harmless */

  /* An empty cookie is still a cookie.  */
  CHECK (hs_init_initiator (&hs, name, 5, (const uint8_t *) "", 0,
                            OUR_FLAGS, 1, 6));
  hs_free (&hs);
}

/* Both name forms say we speak version 6, whatever flags we are given. */
static void
test_hs_handshake_23_always (void)
{
  hs_state hs;
  CHECK (hs_init_initiator (&hs, (const uint8_t *) "a@b", 3,
                            (const uint8_t *) "c", 1, 0, 7, 6));
  CHECK (same (hs.out.data, hs.out.len,
               BYTES (0, 18, 'N', 0, 0, 0, 0, 0x01, 0, 0, 0,
                      0, 0, 0, 7, 0, 3, 'a', '@', 'b')));
  hs_free (&hs);

  CHECK (hs_init_initiator (&hs, (const uint8_t *) "a@b", 3,
                            (const uint8_t *) "c", 1, DFLAG_SPAWN, 7, 5));
  CHECK (same (hs.out.data, hs.out.len,
               BYTES (0, 10, 'n', 0, 5, 0x01, 0, 0, 0, 'a', '@', 'b')));
  hs_free (&hs);
}

/* ---------------------------------------------------------------- */
/* Handshake, the acceptor's side: a scripted initiator */

static void
acc_init (hs_state *hs)
{
  bool ok = hs_init_acceptor (hs, (const uint8_t *) OUR_NAME,
                              strlen (OUR_NAME), (const uint8_t *) COOKIE,
                              strlen (COOKIE), OUR_FLAGS, OUR_CREATION);
  CHECK (ok);
  CHECK (hs->state == HS_AWAIT_NAME && hs->out.len == 0);
}

static void
peer_name_v6 (bytes *b, uint64_t flags, const char *name)
{
  b_begin (b);
  b_u8 (b, 'N');
  b_u64 (b, flags);
  b_u32 (b, PEER_CREATION);
  b_u16 (b, (uint16_t) strlen (name));
  b_str (b, name);
  b_end (b);
}

static void
peer_name_v5 (bytes *b, uint32_t flags, const char *name)
{
  b_begin (b);
  b_u8 (b, 'n');
  b_u16 (b, 5);
  b_u32 (b, flags);
  b_str (b, name);
  b_end (b);
}

static void
peer_complement (bytes *b, uint32_t high, uint32_t creation)
{
  b_begin (b);
  b_u8 (b, 'c');
  b_u32 (b, high);
  b_u32 (b, creation);
  b_end (b);
}

/* 'r', the peer's challenge, its digest of ours (spoilt unless GOOD).  */
static void
peer_reply (bytes *b, const hs_state *hs, bool good)
{
  uint8_t d[DIGEST_LEN];
  digest_compute ((const uint8_t *) COOKIE, strlen (COOKIE),
                  hs->our_challenge, d);
  if (!good)
    d[0] ^= 1;
  b_begin (b);
  b_u8 (b, 'r');
  b_u32 (b, PEER_CHALLENGE);
  b_mem (b, d, DIGEST_LEN);
  b_end (b);
}

static void
our_status (bytes *b, const char *text)
{
  b_u16 (b, (uint16_t) (1 + strlen (text)));
  b_u8 (b, 's');
  b_str (b, text);
}

/* 'N', our flags, our challenge, creation, name: exactly.  */
static void
our_challenge (bytes *b, const hs_state *hs)
{
  b_u16 (b, (uint16_t) (1 + 8 + 4 + 4 + 2 + strlen (OUR_NAME)));
  b_u8 (b, 'N');
  b_u64 (b, OUR_FLAGS | DFLAG_HANDSHAKE_23);
  b_u32 (b, hs->our_challenge);
  b_u32 (b, OUR_CREATION);
  b_u16 (b, (uint16_t) strlen (OUR_NAME));
  b_str (b, OUR_NAME);
}

/* 'a' and our digest of PEER_CHALLENGE.  */
static void
our_ack (bytes *b)
{
  /* Erlang: erlang:md5(["SECRETCOOKIE", integer_to_list(4294967295)]) */
  static const uint8_t digest[DIGEST_LEN]
    = { 69, 226, 115, 125, 123, 24, 27, 224,
        77, 235, 73, 55, 16, 179, 24, 180 };
  b_u16 (b, 17);
  b_u8 (b, 'a');
  b_mem (b, digest, DIGEST_LEN);
}

/* An acceptor that took a version-6 name and must decide.  */
static void
acc_named (hs_state *hs)
{
  acc_init (hs);
  bytes in = { .n = 0 };
  peer_name_v6 (&in, PEER_FLAGS, PEER_NAME);
  CHECK (feed_all (hs, &in) == HS_DECIDE);
  CHECK (hs->state == HS_AWAIT_DECISION && hs->out.len == 0);
}

static void
test_acc_v6_success (void)
{
  hs_state hs;
  acc_named (&hs);
  CHECK (hs.peer_flags == PEER_FLAGS);
  CHECK (hs.peer_creation == PEER_CREATION);
  CHECK (strcmp ((const char *) hs.peer_name, PEER_NAME) == 0);
  /* Asked again, it still waits for the decision.  */
  size_t consumed = 1;
  CHECK (hs_feed (&hs, NULL, 0, &consumed) == HS_DECIDE && consumed == 0);

  bytes want = { .n = 0 }, in = { .n = 0 };
  CHECK (hs_accept_status (&hs, HS_ACCEPT_OK) == HS_CONTINUE);
  our_status (&want, "ok");
  our_challenge (&want, &hs);
  CHECK (took_out (&hs, &want));
  CHECK (hs.state == HS_AWAIT_REPLY);

  peer_reply (&in, &hs, true);
  CHECK (feed_all (&hs, &in) == HS_DONE);
  want.n = 0;
  our_ack (&want);
  CHECK (took_out (&hs, &want));
  CHECK (hs.state == HS_STATE_DONE && hs.kind == HS_ERR_NONE);
  CHECK (!hs.replaces_old);
  hs_free (&hs);
}

static void
test_acc_v5_complement (void)
{
  hs_state hs;
  acc_init (&hs);
  bytes in = { .n = 0 }, want = { .n = 0 };
  peer_name_v5 (&in, (uint32_t) PEER_FLAGS, PEER_NAME);
  CHECK (feed_all (&hs, &in) == HS_DECIDE);
  CHECK (hs.peer_sent_old_name && hs.peer_creation == 0);
  CHECK (hs_accept_status (&hs, HS_ACCEPT_OK) == HS_CONTINUE);
  our_status (&want, "ok");
  our_challenge (&want, &hs);
  CHECK (took_out (&hs, &want));
  CHECK (hs.state == HS_AWAIT_COMPLEMENT);

  /* The reply before the complement is out of turn.  */
  hs_state early;
  acc_init (&early);
  in.n = 0;
  peer_name_v5 (&in, (uint32_t) PEER_FLAGS, PEER_NAME);
  CHECK (feed_all (&early, &in) == HS_DECIDE);
  CHECK (hs_accept_status (&early, HS_ACCEPT_OK) == HS_CONTINUE);
  in.n = 0;
  peer_reply (&in, &early, true);
  CHECK (feed_all (&early, &in) == HS_FAILED);
  CHECK (early.kind == HS_ERR_PROTOCOL && error_clean (&early));
  hs_free (&early);

  in.n = 0;
  peer_complement (&in, (uint32_t) (PEER_FLAGS >> 32), PEER_CREATION);
  peer_reply (&in, &hs, true);
  CHECK (feed_all (&hs, &in) == HS_DONE);
  CHECK (hs.peer_flags == PEER_FLAGS && hs.peer_creation == PEER_CREATION);
  want.n = 0;
  our_ack (&want);
  CHECK (took_out (&hs, &want));
  hs_free (&hs);

  /* A node of version 5 only (no HANDSHAKE_23) cannot send the
     complement: not_allowed.  */
  acc_init (&hs);
  in.n = 0;
  peer_name_v5 (&in, (uint32_t) (PEER_FLAGS & ~DFLAG_HANDSHAKE_23),
                PEER_NAME);
  CHECK (feed_all (&hs, &in) == HS_FAILED && hs.kind == HS_ERR_FLAGS);
  want.n = 0;
  our_status (&want, "not_allowed");
  CHECK (took_out (&hs, &want));
  hs_free (&hs);

  /* A complement of the wrong size, or lacking what we need.  */
  static const uint32_t highs[] = { 0, 0 };
  for (int k = 0; k < 2; k++)
    {
      acc_init (&hs);
      in.n = 0;
      peer_name_v5 (&in, (uint32_t) (PEER_FLAGS & ~DFLAG_MAP_TAG),
                    PEER_NAME);
      CHECK (feed_all (&hs, &in) == HS_DECIDE);
      CHECK (hs_accept_status (&hs, HS_ACCEPT_OK) == HS_CONTINUE);
      in.n = 0;
      if (k == 0)
        peer_complement (&in, highs[k], PEER_CREATION);
      else
        {
          b_begin (&in);
          b_u8 (&in, 'c');
          b_u32 (&in, 0);
          b_end (&in);
        }
      CHECK (feed_all (&hs, &in) == HS_FAILED);
      CHECK (hs.kind == (k == 0 ? HS_ERR_FLAGS : HS_ERR_PROTOCOL));
      hs_free (&hs);
    }
}

static void
test_acc_decisions (void)
{
  hs_state hs;
  bytes want = { .n = 0 }, in = { .n = 0 };

  acc_named (&hs);
  CHECK (hs_accept_status (&hs, HS_ACCEPT_SIMULTANEOUS) == HS_CONTINUE);
  our_status (&want, "ok_simultaneous");
  our_challenge (&want, &hs);
  CHECK (took_out (&hs, &want));
  hs_free (&hs);

  static const struct
  {
    hs_accept_decision d;
    const char *status;
  } refusals[] = { { HS_ACCEPT_NOK, "nok" },
                   { HS_ACCEPT_NOT_ALLOWED, "not_allowed" } };
  for (int k = 0; k < 2; k++)
    {
      acc_named (&hs);
      CHECK (hs_accept_status (&hs, refusals[k].d) == HS_FAILED);
      CHECK (hs.kind == HS_ERR_REFUSED && error_clean (&hs));
      want.n = 0;
      our_status (&want, refusals[k].status);
      CHECK (took_out (&hs, &want));
      /* Nothing more is taken.  */
      size_t consumed = 1;
      CHECK (hs_feed (&hs, BYTES (0, 1, 's'), &consumed) == HS_FAILED);
      CHECK (consumed == 0);
      hs_free (&hs);
    }

  /* Alive: the node says whether our old connection to it is dead.  */
  acc_named (&hs);
  CHECK (hs_accept_status (&hs, HS_ACCEPT_ALIVE) == HS_CONTINUE);
  want.n = 0;
  our_status (&want, "alive");
  CHECK (took_out (&hs, &want));
  CHECK (hs.state == HS_AWAIT_ALIVE_ANSWER);
  in.n = 0;
  peer_status (&in, "true");
  CHECK (feed_all (&hs, &in) == HS_CONTINUE && hs.replaces_old);
  want.n = 0;
  our_challenge (&want, &hs);
  CHECK (took_out (&hs, &want));
  in.n = 0;
  peer_reply (&in, &hs, true);
  CHECK (feed_all (&hs, &in) == HS_DONE);
  hs_free (&hs);

  static const struct
  {
    const char *answer;
    hs_error_kind kind;
  } answers[] = { { "false", HS_ERR_NAME_IN_USE },
                  { "maybe", HS_ERR_PROTOCOL },
                  { "", HS_ERR_PROTOCOL } };
  for (int k = 0; k < 3; k++)
    {
      acc_named (&hs);
      CHECK (hs_accept_status (&hs, HS_ACCEPT_ALIVE) == HS_CONTINUE);
      hs.out.len = 0;
      in.n = 0;
      peer_status (&in, answers[k].answer);
      CHECK (feed_all (&hs, &in) == HS_FAILED);
      CHECK (hs.kind == answers[k].kind && error_clean (&hs));
      CHECK (hs.out.len == 0 && !hs.replaces_old);
      hs_free (&hs);
    }

  /* A decision out of turn.  */
  acc_init (&hs);
  CHECK (hs_accept_status (&hs, HS_ACCEPT_OK) == HS_FAILED);
  CHECK (hs.kind == HS_ERR_PROTOCOL && hs.out.len == 0);
  hs_free (&hs);
}

static void
test_acc_wrong_cookie (void)
{
  hs_state hs;
  bytes in = { .n = 0 };
  acc_named (&hs);
  CHECK (hs_accept_status (&hs, HS_ACCEPT_OK) == HS_CONTINUE);
  hs.out.len = 0;
  peer_reply (&in, &hs, false);
  CHECK (feed_all (&hs, &in) == HS_FAILED);
  CHECK (hs.kind == HS_ERR_AUTH && error_clean (&hs));
  CHECK (strstr (hs.error, "cookie mismatch") != NULL);
  /* No acknowledgement: the node learns nothing it could use.  */
  CHECK (hs.out.len == 0);
  hs_free (&hs);

  /* A reply of the wrong size, or another message.  */
  static const uint8_t bad[][4] = { { 0, 2, 'r', 0 }, { 0, 2, 'a', 0 } };
  for (int k = 0; k < 2; k++)
    {
      acc_named (&hs);
      CHECK (hs_accept_status (&hs, HS_ACCEPT_OK) == HS_CONTINUE);
      hs.out.len = 0;
      size_t consumed;
      CHECK (hs_feed (&hs, bad[k], 4, &consumed) == HS_FAILED);
      CHECK (hs.kind == HS_ERR_PROTOCOL && hs.out.len == 0);
      hs_free (&hs);
    }
}

/* A name message the acceptor must refuse: with a protocol error and
   nothing sent, or (NOT_ALLOWED) with status not_allowed.  */
static void
acc_refuses (const bytes *in, hs_error_kind kind, bool not_allowed)
{
  hs_state hs;
  acc_init (&hs);
  size_t consumed;
  CHECK (hs_feed (&hs, in->d, in->n, &consumed) == HS_FAILED);
  CHECK (hs.kind == kind && error_clean (&hs));
  bytes want = { .n = 0 };
  if (not_allowed)
    our_status (&want, "not_allowed");
  CHECK (took_out (&hs, &want));
  hs_free (&hs);
}

static void
test_acc_bad_names (void)
{
  static const char *const names[]
    = { "nohost", "@host", "alive@", "a@b@c", "@", "" };
  for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
    {
      bytes in = { .n = 0 };
      peer_name_v6 (&in, PEER_FLAGS, names[k]);
      acc_refuses (&in, HS_ERR_PROTOCOL, false);
      in.n = 0;
      peer_name_v5 (&in, (uint32_t) PEER_FLAGS, names[k]);
      acc_refuses (&in, HS_ERR_PROTOCOL, false);
    }

  /* A NUL inside; a name longer than its message; too short; another
     message; version 4; empty.  */
  acc_refuses (&(bytes) { .d = { 0, 18, 'N', 0, 0, 0, 0, 0x01, 0x07, 0xdf,
                                 0x94, 0, 0, 0, 1, 0, 3, 'a', 0, 'b' },
                          .n = 20 },
               HS_ERR_PROTOCOL, false);
  acc_refuses (&(bytes) { .d = { 0, 18, 'N', 0, 0, 0, 0, 0x01, 0x07, 0xdf,
                                 0x94, 0, 0, 0, 1, 0, 9, 'a', '@', 'b' },
                          .n = 20 },
               HS_ERR_PROTOCOL, false);
  acc_refuses (&(bytes) { .d = { 0, 3, 'N', 0, 0 }, .n = 5 },
               HS_ERR_PROTOCOL, false);
  acc_refuses (&(bytes) { .d = { 0, 3, 's', 'o', 'k' }, .n = 5 },
               HS_ERR_PROTOCOL, false);
  acc_refuses (&(bytes) { .d = { 0, 10, 'n', 0, 4, 0, 0, 0, 0, 'a', '@',
                                 'b' },
                          .n = 12 },
               HS_ERR_PROTOCOL, false);
  acc_refuses (&(bytes) { .d = { 0, 0 }, .n = 2 }, HS_ERR_PROTOCOL, false);

  /* It lacks what we need, or asks for a name of us: not_allowed.  */
  bytes in = { .n = 0 };
  peer_name_v6 (&in, PEER_FLAGS & ~DFLAG_BIG_CREATION, PEER_NAME);
  acc_refuses (&in, HS_ERR_FLAGS, true);
  in.n = 0;
  peer_name_v6 (&in, PEER_FLAGS | DFLAG_NAME_ME, "host");
  acc_refuses (&in, HS_ERR_FLAGS, true);
  in.n = 0;
  peer_name_v6 (&in, PEER_FLAGS | DFLAG_NAME_ME, PEER_NAME);
  acc_refuses (&in, HS_ERR_FLAGS, true);

  /* The longest name we take, and one byte more.  */
  static bytes big;
  char name[HS_NAME_ROOM + 1];
  memset (name, 'a', sizeof name);
  name[1] = '@';
  name[HS_NAME_ROOM] = '\0';
  big.n = 0;
  peer_name_v6 (&big, PEER_FLAGS, name);
  acc_refuses (&big, HS_ERR_PROTOCOL, false);
  name[HS_NAME_ROOM - 1] = '\0';
  big.n = 0;
  peer_name_v6 (&big, PEER_FLAGS, name);
  hs_state hs;
  acc_init (&hs);
  CHECK (feed_all (&hs, &big) == HS_DECIDE);
  CHECK (hs.peer_name_len == HS_NAME_ROOM - 1);
  hs_free (&hs);
}

/* Since OTP 25, DFLAG_MANDATORY_25_DIGEST stands for all we require.  */
static void
test_acc_mandatory_25 (void)
{
  hs_state hs;
  acc_init (&hs);
  bytes in = { .n = 0 };
  peer_name_v6 (&in, DFLAG_MANDATORY_25_DIGEST, PEER_NAME);
  CHECK (feed_all (&hs, &in) == HS_DECIDE);
  CHECK ((hs.peer_flags & HS_PEER_REQUIRED) == HS_PEER_REQUIRED);
  hs_free (&hs);
}

/* The initiator's whole conversation, fed at every split: the same
   bytes come out, and bytes after the last message are left alone.  */
static void
test_acc_split_everywhere (void)
{
  for (int version = 5; version <= 6; version++)
    for (size_t cut = 0; cut < 200; cut++)
      {
        hs_state hs;
        acc_init (&hs);
        bytes in = { .n = 0 }, want = { .n = 0 };
        if (version == 6)
          peer_name_v6 (&in, PEER_FLAGS, PEER_NAME);
        else
          {
            peer_name_v5 (&in, (uint32_t) PEER_FLAGS, PEER_NAME);
            peer_complement (&in, (uint32_t) (PEER_FLAGS >> 32),
                             PEER_CREATION);
          }
        peer_reply (&in, &hs, true);
        size_t hs_len = in.n;
        b_mem (&in, "\0\0\0\0", 4);
        our_status (&want, "ok");
        our_challenge (&want, &hs);
        our_ack (&want);
        if (cut > in.n)
          {
            hs_free (&hs);
            break;
          }
        bytes sent = { .n = 0 };
        size_t from = 0, pending = 0, taken = 0;
        uint8_t buf[512];
        hs_status st = HS_CONTINUE;
        const size_t cuts[2] = { cut, in.n };
        for (int c = 0; c < 2; c++)
          {
            memcpy (buf + pending, in.d + from, cuts[c] - from);
            pending += cuts[c] - from;
            from = cuts[c];
            for (;;)
              {
                size_t used = 0;
                st = hs_feed (&hs, buf, pending, &used);
                memmove (buf, buf + used, pending - used);
                pending -= used;
                taken += used;
                if (st != HS_DECIDE)
                  break;
                st = hs_accept_status (&hs, HS_ACCEPT_OK);
                if (st != HS_CONTINUE)
                  break;
              }
            if (hs.out.len)
              b_mem (&sent, hs.out.data, hs.out.len);
            hs.out.len = 0;
          }
        CHECK (st == HS_DONE && taken == hs_len && pending == 4);
        CHECK (same (sent.d, sent.n, want.d, want.n));
        CHECK (!contains (sent.d, sent.n, COOKIE, strlen (COOKIE)));
        hs_free (&hs);
        CHECK (hs.cookie == NULL);
      }
}

/* ---------------------------------------------------------------- */
/* Frames (dist.c) */

/* A pass-through frame body: 112, {6, Pid, '', echo}, hello.  */
static size_t
make_reg_send (uint8_t *out, size_t cap)
{
  etf_buf b;
  etf_buf_init (&b);
  etf_put_u8 (&b, DIST_PASS_THROUGH);
  etf_put_version (&b);
  etf_put_tuple_header (&b, 4);
  etf_put_int (&b, DOP_REG_SEND);
  etf_put_pid (&b, (const uint8_t *) "a@b", 3, 1, 0, 7);
  etf_put_atom (&b, (const uint8_t *) "", 0);
  etf_put_atom (&b, (const uint8_t *) "echo", 4);
  etf_put_version (&b);
  etf_put_atom (&b, (const uint8_t *) "hello", 5);
  size_t n = b.len <= cap ? b.len : 0;
  memcpy (out, b.data, n);
  etf_buf_free (&b);
  return n;
}

/* SEND {2, '', ''} and a message of DEPTH nested 1-tuples.  */
static size_t
make_deep_send (uint8_t *out, size_t cap, size_t depth)
{
  static const uint8_t control[] = { 112, 131, 104, 3, 97, 2,
                                     119, 0, 119, 0, 131 };
  size_t n = sizeof control + 2 * depth + 1;
  if (n > cap)
    return 0;
  memcpy (out, control, sizeof control);
  for (size_t k = 0; k < depth; k++)
    {
      out[sizeof control + 2 * k] = 104;
      out[sizeof control + 2 * k + 1] = 1;
    }
  out[n - 1] = 106;
  return n;
}

static void
test_frame_depth (void)
{
  static uint8_t f[4096];
  dist_frame fr;
  const char *why = NULL;
  size_t n = make_deep_send (f, sizeof f, 1000);
  CHECK (n > 0);
  CHECK (dist_parse_frame (f, n, NULL, NULL, 0, &fr, &why));
  CHECK (dist_parse_frame (f, n, NULL, NULL, 1001, &fr, &why));
  CHECK (!dist_parse_frame (f, n, NULL, NULL, 100, &fr, &why));
  CHECK (why && strstr (why, "deep"));
  /* Wide is not deep.  */
  static const uint8_t wide[] = { 112, 131, 104, 3, 97, 2, 119, 0, 119, 0,
                                  131, 104, 6, 97, 1, 97, 2, 97, 3, 97, 4,
                                  97, 5, 106 };
  CHECK (dist_parse_frame (wide, sizeof wide, NULL, NULL, 2, &fr, &why));
}

static void
test_frame_reg_send (void)
{
  uint8_t f[128];
  size_t n = make_reg_send (f, sizeof f);
  dist_frame fr;
  const char *why = NULL;
  CHECK (n > 0);
  CHECK (dist_parse_frame (f, n, NULL, NULL, 0, &fr, &why));
  CHECK (fr.op == DOP_REG_SEND);
  CHECK (fr.control_offset == 1);
  CHECK (f[fr.message_offset] == ETF_VERSION);
  CHECK (fr.message_offset + fr.message_len == n);
  /* Every truncation is refused, with a reason.  */
  for (size_t k = 0; k < n; k++)
    {
      why = NULL;
      CHECK (!dist_parse_frame (f, k, NULL, NULL, 0, &fr, &why) && why);
    }
  /* Trailing bytes too.  */
  f[n] = 0;
  CHECK (!dist_parse_frame (f, n + 1, NULL, NULL, 0, &fr, &why));
}

static void
test_frame_bad_controls (void)
{
  dist_frame fr;
  const char *why;
  /* Not pass-through.  */
  CHECK (!dist_parse_frame (BYTES (1, 131, 106), NULL, NULL, 0, &fr, &why));
  /* A distribution header, which we do not negotiate.  */
  CHECK (!dist_parse_frame (BYTES (131, 68, 0), NULL, NULL, 0, &fr, &why));
  /* Control not a tuple; op not an integer; unknown op; too short.  */
  CHECK (!dist_parse_frame (BYTES (112, 131, 106), NULL, NULL, 0, &fr, &why));
  CHECK (!dist_parse_frame (BYTES (112, 131, 104, 1, 106), NULL, NULL, 0, &fr, &why));
  CHECK (!dist_parse_frame (BYTES (112, 131, 104, 1, 97, 99), NULL, NULL, 0, &fr, &why));
  CHECK (!dist_parse_frame (BYTES (112, 131, 104, 1, 97, 2), NULL, NULL, 0, &fr, &why));
  /* SEND without its message.  */
  CHECK (!dist_parse_frame (BYTES (112, 131, 104, 3, 97, 2, 106, 106), NULL, NULL, 0, &fr,
                            &why));
  /* NODE_LINK {5}: no message, fine.  */
  CHECK (dist_parse_frame (BYTES (112, 131, 104, 1, 97, 5), NULL, NULL, 0, &fr, &why));
  CHECK (fr.op == DOP_NODE_LINK && fr.message_len == 0);
}

static void
test_frame_atom_cache (void)
{
  dist_atom_cache *cache = calloc (1, sizeof *cache);
  etf_atom refs[DIST_MAX_ATOM_REFS];
  dist_frame fr;
  const char *why;
  /* Two new entries: foo at 5 (segment 0), bar at 256 + 7; then
     {7, foo, bar} by reference.  */
  CHECK (dist_parse_frame (BYTES (131, 68, 2, 0x98, 0x00,
                                  5, 3, 'f', 'o', 'o', 7, 3, 'b', 'a', 'r',
                                  104, 3, 97, 7, 82, 0, 82, 1),
                           cache, refs, 0, &fr, &why));
  CHECK (fr.atom_ref_count == 2 && !fr.versioned && fr.op == 7);
  CHECK (refs[1].len == 3 && memcmp (refs[1].name, "bar", 3) == 0);
  /* Later: bar from the cache, no text.  */
  CHECK (dist_parse_frame (BYTES (131, 68, 1, 0x01, 7,
                                  104, 3, 97, 7, 82, 0, 82, 0),
                           cache, refs, 0, &fr, &why));
  CHECK (refs[0].len == 3 && memcmp (refs[0].name, "bar", 3) == 0);
  /* Long atoms: 2-byte lengths.  */
  CHECK (dist_parse_frame (BYTES (131, 68, 1, 0x18, 9, 0, 2, 'h', 'i',
                                  104, 1, 97, 5),
                           cache, refs, 0, &fr, &why));
  CHECK (refs[0].len == 2);
  /* An empty entry; a reference out of range; one entry twice.  */
  CHECK (!dist_parse_frame (BYTES (131, 68, 1, 0x02, 9, 104, 1, 97, 5),
                            cache, refs, 0, &fr, &why));
  CHECK (!dist_parse_frame (BYTES (131, 68, 1, 0x01, 7,
                                   104, 3, 97, 7, 82, 0, 82, 1),
                            cache, refs, 0, &fr, &why));
  CHECK (!dist_parse_frame (BYTES (131, 68, 2, 0x11, 0x00, 7, 7,
                                   104, 1, 97, 5),
                            cache, refs, 0, &fr, &why));
  /* Without a cache (not negotiated) a header is refused.  */
  CHECK (!dist_parse_frame (BYTES (131, 68, 0, 104, 1, 97, 5), NULL, NULL,
                            0, &fr, &why));
  dist_atom_cache_free (cache);
}

static void
test_frame_put (void)
{
  etf_buf b;
  etf_buf_init (&b);
  const uint8_t ctl[] = { 104, 1, 97, 5 };
  dist_put_frame (&b, false, ctl, sizeof ctl, NULL, 0);
  CHECK (b.len == 4 + 2 + sizeof ctl);
  CHECK (b.data[3] == 2 + sizeof ctl && b.data[4] == DIST_PASS_THROUGH);
  dist_frame fr;
  const char *why;
  CHECK (dist_parse_frame (b.data + 4, b.len - 4, NULL, NULL, 0, &fr, &why));
  CHECK (fr.versioned && fr.op == DOP_NODE_LINK);
  /* After a header: 131 68 0, then the terms bare.  */
  b.len = 0;
  const uint8_t msg[] = { 106 };
  dist_put_frame (&b, true, ctl, sizeof ctl, msg, sizeof msg);
  CHECK (b.len == 4 + 3 + sizeof ctl + sizeof msg);
  CHECK (b.data[4] == ETF_VERSION && b.data[5] == DIST_HEADER
         && b.data[6] == 0);
  dist_atom_cache *cache = calloc (1, sizeof *cache);
  etf_atom refs[DIST_MAX_ATOM_REFS];
  /* NODE_LINK has no message: the extra term is trailing garbage.  */
  CHECK (!dist_parse_frame (b.data + 4, b.len - 4, cache, refs, 0, &fr, &why));
  CHECK (dist_parse_frame (b.data + 4, b.len - 5, cache, refs, 0, &fr, &why));
  CHECK (!fr.versioned && fr.atom_ref_count == 0);
  dist_atom_cache_free (cache);
  etf_buf_free (&b);
}

/* ---------------------------------------------------------------- */

static const test_case tests[] = {
  TEST (test_digest_known),
  TEST (test_frame_reg_send),
  TEST (test_frame_depth),
  TEST (test_frame_bad_controls),
  TEST (test_frame_put),
  TEST (test_frame_atom_cache),
  TEST (test_digest_equal_and_wipe),
  TEST (test_digest_random),
  TEST (test_epmd_port_please_request),
  TEST (test_epmd_names_request),
  TEST (test_epmd_alive2_request),
  TEST (test_port2_ok),
  TEST (test_port2_extra),
  TEST (test_port2_not_registered),
  TEST (test_port2_split),
  TEST (test_port2_bad),
  TEST (test_alive2),
  TEST (test_names),
  TEST (test_names_malformed),
  TEST (test_hs_v6_success),
  TEST (test_hs_v5_complement),
  TEST (test_hs_v5_old_challenge),
  TEST (test_hs_old_challenge_refused),
  TEST (test_hs_status),
  TEST (test_hs_status_alive),
  TEST (test_hs_wrong_peer),
  TEST (test_hs_wrong_ack),
  TEST (test_hs_peer_closed),
  TEST (test_hs_missing_flags),
  TEST (test_hs_bad_challenge),
  TEST (test_hs_split_everywhere),
  TEST (test_hs_bytes_after_ack),
  TEST (test_hs_cookie_never_shown),
  TEST (test_hs_init_limits),
  TEST (test_hs_handshake_23_always),
  TEST (test_acc_v6_success),
  TEST (test_acc_v5_complement),
  TEST (test_acc_decisions),
  TEST (test_acc_wrong_cookie),
  TEST (test_acc_bad_names),
  TEST (test_acc_mandatory_25),
  TEST (test_acc_split_everywhere),
};

int
main (void)
{
  return run_tests (tests, sizeof tests / sizeof tests[0]);
}
