/* fuzz_proto.c --- libFuzzer target for epmd.c, handshake.c and the
   frame parser in dist.c.

   The first input byte chooses what the rest drives:

     0  epmd_parse_port2_resp
     1  epmd_parse_alive2_resp
     2  epmd_names_next, until it stops
     3  a handshake fed the rest of the input as the peer's bytes, after
        correct peer messages up to a stage the input picks
     4  a handshake fed a correct peer conversation built from the input,
        so that the success path and the splitting are explored too
     5  dist_parse_frame over a series of frames sharing an atom cache
     6  the acceptor's handshake fed the rest of the input as the
        initiator's bytes, after correct messages up to a stage the
        input picks, answering with a status the input picks
     7  the acceptor fed a correct initiator conversation built from the
        input: it must succeed, and end exactly after the reply

   In the handshake modes the next byte picks the peer's version and
   seeds the chunk sizes: bytes reach hs_feed in pieces, as from a
   socket, and what hs_feed leaves is kept for the next piece.  Our
   challenge is fixed after hs_init_initiator so that runs repeat and a
   correct ack can be made.  Any broken invariant aborts.  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#define _GNU_SOURCE  /* memmem */

#include "digest.h"
#include "dist.h"
#include "epmd.h"
#include "handshake.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COOKIE "FUZZCOOKIE"
#define OUR_NAME "fuzz@host"
#define OUR_FLAGS (HS_PEER_REQUIRED | DFLAG_SPAWN | DFLAG_V4_NC)
#define OUR_CHALLENGE 123456789u  /* fixed, so that runs repeat */

#define ASSERT(cond)                                                  \
  do                                                                  \
    {                                                                 \
      if (!(cond))                                                    \
        {                                                             \
          fprintf (stderr, "%s:%d: invariant broken: %s\n", __FILE__, \
                   __LINE__, #cond);                                  \
          abort ();                                                   \
        }                                                             \
    }                                                                 \
  while (0)

/* ---------------------------------------------------------------- */
/* EPMD */

static void
fuzz_port2 (const uint8_t *data, size_t len)
{
  epmd_node_info info;
  size_t used = 0;
  const char *reason = NULL;
  epmd_result r = epmd_parse_port2_resp (data, len, &info, &used, &reason);
  ASSERT (used <= len);
  if (r == EPMD_BAD_RESPONSE)
    ASSERT (reason != NULL);
  if (r == EPMD_OK)
    {
      ASSERT (info.name_len >= 1 && info.name_len <= EPMD_MAX_NAME);
      ASSERT (info.name[info.name_len] == '\0');
      ASSERT (used >= 14 + info.name_len);
      /* Exactly USED bytes make the response; one fewer is not enough. */
      epmd_node_info again;
      size_t used2 = 0;
      ASSERT (epmd_parse_port2_resp (data, used, &again, &used2, &reason)
              == EPMD_OK && used2 == used);
      ASSERT (epmd_parse_port2_resp (data, used - 1, &again, &used2, &reason)
              == EPMD_INCOMPLETE);
    }
  if (r == EPMD_NOT_REGISTERED)
    ASSERT (used == 2);
}

static void
fuzz_alive2 (const uint8_t *data, size_t len)
{
  uint32_t creation = 0;
  size_t used = 0;
  const char *reason = NULL;
  epmd_result r = epmd_parse_alive2_resp (data, len, &creation, &used,
                                          &reason);
  ASSERT (used <= len);
  ASSERT (r != EPMD_NOT_REGISTERED);
  if (r == EPMD_BAD_RESPONSE)
    ASSERT (reason != NULL);
  if (r == EPMD_OK || r == EPMD_REFUSED)
    ASSERT (used == 4 || used == 6);
  if (r == EPMD_OK && used == 4)
    ASSERT (creation <= 0xFFFF);
}

static void
fuzz_names (const uint8_t *data, size_t len)
{
  size_t pos = 0;
  for (;;)
    {
      size_t before = pos;
      epmd_name_entry entry;
      const char *reason = NULL;
      epmd_result r = epmd_names_next (data, len, &pos, &entry, &reason);
      ASSERT (pos <= len);
      if (r != EPMD_OK)
        {
          if (r == EPMD_BAD_RESPONSE)
            ASSERT (reason != NULL);
          else
            ASSERT (r == EPMD_INCOMPLETE && pos == len);
          break;
        }
      /* Each entry takes at least "name x at port 0\n".  */
      ASSERT (pos >= before + 17);
      ASSERT (entry.name_len >= 1 && entry.name_len <= EPMD_MAX_NAME);
      ASSERT (entry.name[entry.name_len] == '\0');
    }
}

/* ---------------------------------------------------------------- */
/* Handshake */

/* The state and the status must agree, and the error tell why.  */
static void
check_state (const hs_state *hs, hs_status st)
{
  switch (st)
    {
    case HS_CONTINUE:
      ASSERT (hs->state == HS_AWAIT_STATUS
              || hs->state == HS_AWAIT_CHALLENGE
              || hs->state == HS_AWAIT_ACK
              || hs->state == HS_AWAIT_NAME
              || hs->state == HS_AWAIT_ALIVE_ANSWER
              || hs->state == HS_AWAIT_COMPLEMENT
              || hs->state == HS_AWAIT_REPLY);
      ASSERT (hs->kind == HS_ERR_NONE && hs->error == NULL);
      break;
    case HS_DONE:
      ASSERT (hs->state == HS_STATE_DONE);
      ASSERT (hs->kind == HS_ERR_NONE && hs->error == NULL);
      ASSERT (hs->peer_name_len >= 1);
      ASSERT ((hs->peer_flags & HS_PEER_REQUIRED) == HS_PEER_REQUIRED);
      break;
    case HS_DECIDE:
      ASSERT (hs->state == HS_AWAIT_DECISION);
      ASSERT (hs->kind == HS_ERR_NONE && hs->error == NULL);
      ASSERT (hs->peer_name_len >= 3 && hs->out.len == 0);
      ASSERT (memchr (hs->peer_name, '@', hs->peer_name_len));
      break;
    case HS_FAILED:
      ASSERT (hs->state == HS_STATE_FAILED);
      ASSERT (hs->kind != HS_ERR_NONE && hs->error != NULL);
      ASSERT (strstr (hs->error, COOKIE) == NULL);
      break;
    default:
      ASSERT (!"unknown status");
    }
  ASSERT (hs->peer_name_len < HS_NAME_ROOM);
  ASSERT (hs->out.status == ETF_OK);
}

/* A small PRNG for chunk sizes, seeded from the input.  */
static uint32_t
next_chunk (uint32_t *seed)
{
  *seed = *seed * 1103515245u + 12345u;
  return (*seed >> 16) % 40;  /* zero-length reads happen too */
}

/* Feed STREAM to HS in chunks, answering an acceptor's HS_DECIDE with
   DECISION; the status at the end and, in *CONSUMED, what hs_feed took
   in all.  OUT is drained (checked for the cookie as it goes).  */
static hs_status
feed_stream (hs_state *hs, const uint8_t *stream, size_t len, uint32_t seed,
             hs_accept_decision decision, size_t *consumed_total)
{
  uint8_t *pending = malloc (len + 1);
  size_t npending = 0, from = 0;
  hs_status st = HS_CONTINUE;
  *consumed_total = 0;
  ASSERT (pending);
  while (st == HS_CONTINUE && (from < len || npending > 0))
    {
      size_t n = next_chunk (&seed);
      if (n > len - from)
        n = len - from;
      memcpy (pending + npending, stream + from, n);
      npending += n;
      from += n;
      size_t consumed = 0;
      st = hs_feed (hs, pending, npending, &consumed);
      ASSERT (consumed <= npending);
      check_state (hs, st);
      if (st == HS_DECIDE)
        {
          st = hs_accept_status (hs, decision);
          check_state (hs, st);
        }
      ASSERT (hs->out.len == 0
              || !memmem (hs->out.data, hs->out.len, COOKIE,
                          strlen (COOKIE)));
      hs->out.len = 0;
      memmove (pending, pending + consumed, npending - consumed);
      npending -= consumed;
      *consumed_total += consumed;
      if (from == len && consumed == 0 && st == HS_CONTINUE)
        break;  /* all delivered; the rest is not a whole message */
    }
  /* Once finished, it takes nothing more.  */
  if (st != HS_CONTINUE && npending > 0)
    {
      size_t consumed = 1;
      ASSERT (hs_feed (hs, pending, npending, &consumed) == st);
      ASSERT (consumed == 0);
    }
  free (pending);
  return st;
}

static bool
start (hs_state *hs, int version)
{
  bool ok = hs_init_initiator (hs, (const uint8_t *) OUR_NAME,
                               strlen (OUR_NAME), (const uint8_t *) COOKIE,
                               strlen (COOKIE), OUR_FLAGS, 42, version);
  ASSERT (ok);
  check_state (hs, HS_CONTINUE);
  hs->our_challenge = OUR_CHALLENGE;
  hs->out.len = 0;
  return ok;
}

static void
finish (hs_state *hs, hs_status st)
{
  hs_status closed = hs_peer_closed (hs);
  if (st == HS_CONTINUE)
    ASSERT (closed == HS_FAILED);
  else
    ASSERT (closed == st);
  check_state (hs, closed);
  hs_free (hs);
}

/* Append a handshake message of LEN bytes at P to B at AT; the new end. */
static size_t
put_msg (uint8_t *b, size_t at, const uint8_t *p, size_t len)
{
  b[at] = (uint8_t) (len >> 8);
  b[at + 1] = (uint8_t) len;
  memcpy (b + at + 2, p, len);
  return at + 2 + len;
}

static void
put32 (uint8_t *p, uint32_t v)
{
  p[0] = (uint8_t) (v >> 24);
  p[1] = (uint8_t) (v >> 16);
  p[2] = (uint8_t) (v >> 8);
  p[3] = (uint8_t) v;
}

#define PEER_FLAGS (HS_PEER_REQUIRED | DFLAG_ALIAS)
#define PEER_CREATION 99u
#define MAX_PEER_NAME 64

/* A correct peer's messages into B at AT, up to and not including
   message number UPTO (0 status, 1 challenge, 2 ack): the new end.
   STATUS picks ok, ok_simultaneous or alive; OLD the 'n' challenge.  */
static size_t
good_peer (uint8_t *b, size_t at, int upto, unsigned status, bool old,
           const uint8_t *name, size_t name_len)
{
  static const char *const statuses[] = { "ok", "ok_simultaneous", "alive" };
  const char *st = statuses[status % 3];
  uint8_t m[32 + MAX_PEER_NAME];
  if (upto > 0)
    {
      m[0] = 's';
      memcpy (m + 1, st, strlen (st));
      at = put_msg (b, at, m, 1 + strlen (st));
    }
  if (upto > 1 && old)
    {
      m[0] = 'n';
      m[1] = 0;
      m[2] = 5;
      put32 (m + 3, (uint32_t) PEER_FLAGS);
      put32 (m + 7, 777);
      memcpy (m + 11, name, name_len);
      at = put_msg (b, at, m, 11 + name_len);
    }
  else if (upto > 1)
    {
      m[0] = 'N';
      put32 (m + 1, (uint32_t) (PEER_FLAGS >> 32));
      put32 (m + 5, (uint32_t) PEER_FLAGS);
      put32 (m + 9, 777);
      put32 (m + 13, PEER_CREATION);
      m[17] = (uint8_t) (name_len >> 8);
      m[18] = (uint8_t) name_len;
      memcpy (m + 19, name, name_len);
      at = put_msg (b, at, m, 19 + name_len);
    }
  if (upto > 2)
    {
      m[0] = 'a';
      digest_compute ((const uint8_t *) COOKIE, strlen (COOKIE),
                      OUR_CHALLENGE, m + 1);
      at = put_msg (b, at, m, 1 + DIGEST_LEN);
    }
  return at;
}

/* The peer's bytes come from the input, after correct messages up to
   a stage the input picks, so that every state meets garbage.  Control
   byte: bit 0 version 6, bits 1-2 the stage, bits 3-7 the chunk seed. */
static void
fuzz_handshake (const uint8_t *data, size_t len)
{
  if (len < 1)
    return;
  int version = (data[0] & 1) ? 6 : 5;
  int stage = (data[0] >> 1) & 3;
  uint32_t seed = data[0] >> 3;
  data++;
  len--;

  uint8_t *stream = malloc (200 + len);
  ASSERT (stream);
  size_t n = good_peer (stream, 0, stage == 3 ? 0 : stage, 0,
                        version == 5, (const uint8_t *) "p@h", 3);
  memcpy (stream + n, data, len);
  n += len;

  hs_state hs;
  start (&hs, version);
  size_t consumed;
  hs_status st = feed_stream (&hs, stream, n, seed, HS_ACCEPT_OK,
                              &consumed);
  ASSERT (consumed <= n);
  finish (&hs, st);
  free (stream);
}

/* A correct conversation, then bytes of the connected phase, all from
   the input: status, challenge form, peer name and the tail.  The
   handshake must end exactly at the end of the ack.  */
static void
fuzz_good_handshake (const uint8_t *data, size_t len)
{
  if (len < 3)
    return;
  int version = (data[0] & 1) ? 6 : 5;
  uint32_t seed = data[0] >> 1;
  bool old = version == 5 && (data[1] & 0x80);
  size_t name_len = 1 + data[2] % MAX_PEER_NAME;
  if (len - 3 < name_len)
    return;
  const uint8_t *name = data + 3;
  const uint8_t *tail = name + name_len;
  size_t tail_len = len - 3 - name_len;

  uint8_t *stream = malloc (200 + name_len + tail_len);
  ASSERT (stream);
  size_t hs_len = good_peer (stream, 0, 3, data[1] & 0x7f, old, name,
                             name_len);
  memcpy (stream + hs_len, tail, tail_len);

  hs_state hs;
  start (&hs, version);
  /* A good peer: the node dialled, and a status alive (if the input
     picks it) about our own old connection.  */
  hs.replace_old = true;
  ASSERT (hs_expect_peer (&hs, name, name_len));
  size_t consumed;
  hs_status st = feed_stream (&hs, stream, hs_len + tail_len, seed,
                              HS_ACCEPT_OK, &consumed);
  ASSERT (st == HS_DONE);
  ASSERT (consumed == hs_len);
  ASSERT (hs.peer_name_len == name_len);
  ASSERT (memcmp (hs.peer_name, name, name_len) == 0);
  ASSERT (hs.peer_flags == (old ? (uint32_t) PEER_FLAGS : PEER_FLAGS));
  ASSERT (hs.peer_creation == (old ? 0 : PEER_CREATION));
  finish (&hs, st);
  free (stream);
}

/* A frame as the I/O thread sees it; what passes must be sound.  The
   input may hold several frames, each after a 2-byte length, all over
   one atom cache, as on one connection.  */
/* Every fun in the checked term at BUF copies, with its atom cache
   references written out, to bytes that read as one fun on their own.  */
static void
check_fun_copies (const uint8_t *buf, size_t len, const etf_atom *refs,
                  size_t ref_count)
{
  etf_reader r;
  etf_reader_init (&r, buf, len);
  r.atom_refs = refs;
  r.atom_ref_count = ref_count;
  while (r.pos < r.len)
    {
      etf_item it;
      if (etf_read_item (&r, &it) != ETF_OK)
        abort ();
      if (it.kind != ETF_FUN)
        continue;
      etf_buf copy;
      etf_buf_init (&copy);
      if (etf_copy_fun (&r, &it, &copy) != ETF_OK)
        abort ();
      etf_reader alone;
      etf_item fun;
      etf_reader_init (&alone, copy.data, copy.len);
      if (etf_read_item (&alone, &fun) != ETF_OK || fun.kind != ETF_FUN
          || etf_skip_fun_body (&alone, &fun) != ETF_OK
          || etf_expect_end (&alone) != ETF_OK)
        abort ();
      etf_buf_free (&copy);
    }
}

static void
fuzz_frames (const uint8_t *data, size_t len)
{
  dist_atom_cache *cache = calloc (1, sizeof *cache);
  etf_atom refs[DIST_MAX_ATOM_REFS];
  if (!cache)
    return;
  while (len >= 2)
    {
      size_t n = ((size_t) data[0] << 8) | data[1];
      data += 2;
      len -= 2;
      if (n > len)
        n = len;
      const uint8_t *frame = data;
      data += n;
      len -= n;

      dist_frame f;
      const char *why = NULL;
      if (!dist_parse_frame (frame, n, cache, refs, 64, &f, &why))
        {
          if (!why)
            abort ();
          continue;
        }
      unsigned arity;
      bool has_message;
      size_t skip = f.versioned ? 1 : 0;
      if (!dist_op_shape (f.op, &arity, &has_message)
          || f.control_offset + f.control_len > n
          || (f.message_len > 0) != has_message
          || f.message_offset + f.message_len > n
          || (f.versioned && frame[f.control_offset] != ETF_VERSION)
          || f.atom_ref_count > DIST_MAX_ATOM_REFS)
        abort ();
      /* Each term must read on its own, as the main thread will.  */
      etf_reader r;
      etf_reader_init (&r, frame + f.control_offset + skip,
                       f.control_len - skip);
      r.atom_refs = refs;
      r.atom_ref_count = f.atom_ref_count;
      if (etf_skip_terms (&r, 1) != ETF_OK || etf_expect_end (&r) != ETF_OK)
        abort ();
      if (has_message)
        {
          etf_reader_init (&r, frame + f.message_offset + skip,
                           f.message_len - skip);
          r.atom_refs = refs;
          r.atom_ref_count = f.atom_ref_count;
          if (etf_skip_terms (&r, 1) != ETF_OK
              || etf_expect_end (&r) != ETF_OK)
            abort ();
          check_fun_copies (frame + f.message_offset + skip,
                            f.message_len - skip, refs, f.atom_ref_count);
        }
    }
  dist_atom_cache_free (cache);
}

/* ---------------------------------------------------------------- */
/* The acceptor */

static void
acc_start (hs_state *hs)
{
  bool ok = hs_init_acceptor (hs, (const uint8_t *) OUR_NAME,
                              strlen (OUR_NAME), (const uint8_t *) COOKIE,
                              strlen (COOKIE), OUR_FLAGS, 42);
  ASSERT (ok);
  check_state (hs, HS_CONTINUE);
  hs->our_challenge = OUR_CHALLENGE;
}

/* A correct initiator up to UPTO messages (0 none, 1 the name, 2 the
   answer to alive or the complement, 3 the reply): at B from AT, the
   new end.  */
static size_t
good_initiator (uint8_t *b, size_t at, int upto, bool old, bool alive,
                const uint8_t *name, size_t name_len)
{
  uint8_t m[400];
  uint64_t flags = HS_PEER_REQUIRED | DFLAG_DIST_MONITOR | DFLAG_ALIAS;
  if (upto >= 1)
    {
      size_t n;
      if (old)
        {
          m[0] = 'n';
          m[1] = 0;
          m[2] = 5;
          put32 (m + 3, (uint32_t) flags);
          memcpy (m + 7, name, name_len);
          n = 7 + name_len;
        }
      else
        {
          m[0] = 'N';
          put32 (m + 1, (uint32_t) (flags >> 32));
          put32 (m + 5, (uint32_t) flags);
          put32 (m + 9, 7);
          m[13] = (uint8_t) (name_len >> 8);
          m[14] = (uint8_t) name_len;
          memcpy (m + 15, name, name_len);
          n = 15 + name_len;
        }
      at = put_msg (b, at, m, n);
    }
  if (upto >= 2 && alive)
    at = put_msg (b, at, (const uint8_t *) "strue", 5);
  if (upto >= 2 && old)
    {
      m[0] = 'c';
      put32 (m + 1, (uint32_t) (flags >> 32));
      put32 (m + 5, 7);
      at = put_msg (b, at, m, 9);
    }
  if (upto >= 3)
    {
      m[0] = 'r';
      put32 (m + 1, 99);
      digest_compute ((const uint8_t *) COOKIE, strlen (COOKIE),
                      OUR_CHALLENGE, m + 5);
      at = put_msg (b, at, m, 1 + 4 + DIGEST_LEN);
    }
  return at;
}

static const hs_accept_decision decisions[] = {
  HS_ACCEPT_OK, HS_ACCEPT_SIMULTANEOUS, HS_ACCEPT_ALIVE, HS_ACCEPT_NOK,
  HS_ACCEPT_NOT_ALLOWED,
};

/* Control byte: bit 0 the old name form, bits 1-2 the stage, bits 3-5
   the decision, bits 6-7 the chunk seed.  */
static void
fuzz_acceptor (const uint8_t *data, size_t len)
{
  if (len < 1)
    return;
  bool old = data[0] & 1;
  int stage = (data[0] >> 1) & 3;
  hs_accept_decision decision = decisions[((data[0] >> 3) & 7) % 5];
  uint32_t seed = data[0] >> 6;
  data++;
  len--;
  uint8_t *stream = malloc (200 + len);
  ASSERT (stream);
  size_t n = good_initiator (stream, 0, stage, old,
                             decision == HS_ACCEPT_ALIVE,
                             (const uint8_t *) "p@h", 3);
  memcpy (stream + n, data, len);
  n += len;
  hs_state hs;
  acc_start (&hs);
  size_t consumed;
  hs_status st = feed_stream (&hs, stream, n, seed, decision,
                                  &consumed);
  ASSERT (consumed <= n);
  hs_status closed = hs_peer_closed (&hs);
  ASSERT (st == HS_CONTINUE || closed == st);
  hs_free (&hs);
  free (stream);
}

/* A correct initiator, with a name and a tail from the input.  */
static void
fuzz_good_acceptor (const uint8_t *data, size_t len)
{
  if (len < 2)
    return;
  bool old = data[0] & 1;
  hs_accept_decision decision = decisions[((data[0] >> 1) & 3) % 3];
  uint32_t seed = data[0] >> 3;
  size_t name_len = 1 + data[1] % 100;
  data += 2;
  len -= 2;
  if (len < name_len)
    return;
  /* Make it a name: alive@host, no other '@', no NUL.  */
  uint8_t name[128];
  memcpy (name, data, name_len);
  for (size_t k = 0; k < name_len; k++)
    if (name[k] == '@' || name[k] == 0)
      name[k] = 'x';
  name[0] = 'a';
  name[name_len] = '@';
  name[name_len + 1] = 'h';
  data += name_len;
  len -= name_len;
  uint8_t *stream = malloc (600 + len);
  ASSERT (stream);
  size_t n = good_initiator (stream, 0, 3, old, decision == HS_ACCEPT_ALIVE,
                             name, name_len + 2);
  size_t hs_len = n;
  memcpy (stream + n, data, len);
  n += len;
  hs_state hs;
  acc_start (&hs);
  size_t consumed;
  hs_status st = feed_stream (&hs, stream, n, seed, decision,
                                  &consumed);
  ASSERT (st == HS_DONE && consumed == hs_len);
  ASSERT (hs.peer_name_len == name_len + 2);
  ASSERT (hs.replaces_old == (decision == HS_ACCEPT_ALIVE));
  hs_free (&hs);
  free (stream);
}

/* ---------------------------------------------------------------- */
int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  const uint8_t *rest = data + 1;
  size_t len = size - 1;
  switch (data[0] % 8)
    {
    case 0:
      fuzz_port2 (rest, len);
      break;
    case 1:
      fuzz_alive2 (rest, len);
      break;
    case 2:
      fuzz_names (rest, len);
      break;
    case 3:
      fuzz_handshake (rest, len);
      break;
    case 4:
      fuzz_good_handshake (rest, len);
      break;
    case 5:
      fuzz_frames (rest, len);
      break;
    case 6:
      fuzz_acceptor (rest, len);
      break;
    default:
      fuzz_good_acceptor (rest, len);
      break;
    }
  return 0;
}
