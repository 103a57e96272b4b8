/* handshake.c --- the distribution handshake as a state machine, bytes
   in / bytes out, no sockets.

   The initiator's steps, after Erlang's erl_dist_protocol guide:

     send_name ('N', or 'n' for a version-5 peer)
     recv_status ('s'; answer "alive" with 's' "true" or "false")
     recv_challenge ('N', or 'n' from a version-5 peer)
     send_complement ('c', only after an 'n' name and an 'N' challenge)
     send_challenge_reply ('r')
     recv_challenge_ack ('a')

   The acceptor's, after dist_util's handshake_other_started:

     recv_name ('N', or 'n' from a node that speaks version 6 too)
     send_status (the caller decides: ok, ok_simultaneous, nok,
                  not_allowed, or alive and recv its answer)
     send_challenge ('N')
     recv_complement ('c', only after an 'n' name)
     recv_challenge_reply ('r')
     send_challenge_ack ('a')

   Every message has a 2-byte big-endian length.  Errors are static
   strings; the cookie never leaves the digest computation.  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#include "handshake.h"

#include "digest.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- */
/* Small helpers */

static hs_status
fail (hs_state *hs, hs_error_kind kind, const char *why)
{
  hs->state = HS_STATE_FAILED;
  hs->kind = kind;
  hs->error = why;
  return HS_FAILED;
}

static hs_status
protocol_error (hs_state *hs, const char *why)
{
  return fail (hs, HS_ERR_PROTOCOL, why);
}

/* What we just queued in OUT, or a failure if it could not be.  */
static hs_status
queued (hs_state *hs)
{
  if (hs->out.status != ETF_OK)
    return protocol_error (hs, "out of memory for a handshake message");
  return HS_CONTINUE;
}

static bool
status_is (const uint8_t *s, size_t len, const char *text)
{
  return len == strlen (text) && memcmp (s, text, len) == 0;
}

/* Keep the peer's node name: 1 to HS_NAME_ROOM - 1 bytes.  */
static bool
take_peer_name (hs_state *hs, const uint8_t *name, size_t len)
{
  if (len == 0 || len > HS_NAME_ROOM - 1)
    return false;
  memcpy (hs->peer_name, name, len);
  hs->peer_name[len] = '\0';
  hs->peer_name_len = len;
  return true;
}

/* Since OTP 25 one flag may stand for all the flags we require.  */
static uint64_t
expand_flags (uint64_t flags)
{
  return flags & DFLAG_MANDATORY_25_DIGEST ? flags | HS_PEER_REQUIRED : flags;
}

bool
hs_peer_flags_ok (uint64_t flags)
{
  return (expand_flags (flags) & HS_PEER_REQUIRED) == HS_PEER_REQUIRED;
}

/* Copy the cookie, draw our challenge: what both roles start with.  */
static bool
init_common (hs_state *hs, hs_state_id first, const uint8_t *name,
             size_t name_len, const uint8_t *cookie, size_t cookie_len,
             uint64_t flags, uint32_t creation)
{
  memset (hs, 0, sizeof *hs);
  etf_buf_init (&hs->out);
  hs->state = first;

  if (name_len == 0 || name_len > HS_NAME_ROOM - 1)
    {
      fail (hs, HS_ERR_PROTOCOL, "node name empty or too long");
      return false;
    }
  memcpy (hs->name, name, name_len);
  hs->name_len = name_len;

  /* malloc (0) may answer NULL: keep at least a byte for empty cookies. */
  hs->cookie = malloc (cookie_len ? cookie_len : 1);
  if (!hs->cookie)
    {
      fail (hs, HS_ERR_PROTOCOL, "out of memory for the cookie");
      return false;
    }
  if (cookie_len)
    memcpy (hs->cookie, cookie, cookie_len);
  hs->cookie_len = cookie_len;

  if (!digest_random_u32 (&hs->our_challenge))
    {
      fail (hs, HS_ERR_PROTOCOL, "no random numbers for the challenge");
      return false;
    }
  /* Both roles must say we speak version 6.  */
  hs->flags = flags | DFLAG_HANDSHAKE_23;
  hs->creation = creation;
  return true;
}

/* ---------------------------------------------------------------- */
/* Messages we send, each with its 2-byte length */

/* 'N', flags (64), creation (32), name length (16), name.  */
static void
send_name_v6 (hs_state *hs)
{
  etf_put_u16 (&hs->out, (uint16_t) (1 + 8 + 4 + 2 + hs->name_len));
  etf_put_u8 (&hs->out, 'N');
  etf_put_u64 (&hs->out, hs->flags);
  etf_put_u32 (&hs->out, hs->creation);
  etf_put_u16 (&hs->out, (uint16_t) hs->name_len);
  etf_put_bytes (&hs->out, hs->name, hs->name_len);
}

/* 'n', version 5 (16), the low 32 flag bits, name up to the end.  */
static void
send_name_v5 (hs_state *hs)
{
  etf_put_u16 (&hs->out, (uint16_t) (1 + 2 + 4 + hs->name_len));
  etf_put_u8 (&hs->out, 'n');
  etf_put_u16 (&hs->out, 5);
  etf_put_u32 (&hs->out, (uint32_t) hs->flags);
  etf_put_bytes (&hs->out, hs->name, hs->name_len);
}

/* 's' and a status text.  */
static void
send_status (hs_state *hs, const char *text)
{
  size_t len = strlen (text);
  etf_put_u16 (&hs->out, (uint16_t) (1 + len));
  etf_put_u8 (&hs->out, 's');
  etf_put_bytes (&hs->out, text, len);
}

/* 'c', the high 32 flag bits, creation: what an 'n' name left out.  */
static void
send_complement (hs_state *hs)
{
  etf_put_u16 (&hs->out, 1 + 4 + 4);
  etf_put_u8 (&hs->out, 'c');
  etf_put_u32 (&hs->out, (uint32_t) (hs->flags >> 32));
  etf_put_u32 (&hs->out, hs->creation);
}

/* 'r', our challenge, the digest of theirs.  False when no digest can
   be made.  */
static bool
send_challenge_reply (hs_state *hs, uint32_t peer_challenge)
{
  uint8_t digest[DIGEST_LEN];
  if (!digest_compute (hs->cookie, hs->cookie_len, peer_challenge, digest))
    return false;
  etf_put_u16 (&hs->out, 1 + 4 + DIGEST_LEN);
  etf_put_u8 (&hs->out, 'r');
  etf_put_u32 (&hs->out, hs->our_challenge);
  etf_put_bytes (&hs->out, digest, DIGEST_LEN);
  digest_wipe (digest, sizeof digest);
  return true;
}

/* ---------------------------------------------------------------- */
/* Messages we receive (M: the message without its length, LEN > 0) */

static hs_status
recv_status (hs_state *hs, const uint8_t *m, size_t len)
{
  if (m[0] != 's')
    return protocol_error (hs, "expected a status message from the node");
  const uint8_t *s = m + 1;
  size_t slen = len - 1;
  if (status_is (s, slen, "ok") || status_is (s, slen, "ok_simultaneous"))
    {
      hs->state = HS_AWAIT_CHALLENGE;
      return HS_CONTINUE;
    }
  if (status_is (s, slen, "alive"))
    {
      /* The node holds a connection from a node of our name.  An Erlang
         node answers true, trusting EPMD to keep names unique; Emacs
         has no such guarantee, so it takes over only a connection that
         was its own and is gone, and leaves anyone else's alone.  */
      send_status (hs, hs->replace_old ? "true" : "false");
      if (!hs->replace_old)
        {
          if (queued (hs) != HS_CONTINUE)
            return HS_FAILED;
          return fail (hs, HS_ERR_NAME_IN_USE,
                       "the node is already connected to another node "
                       "with our name");
        }
      hs->state = HS_AWAIT_CHALLENGE;
      return queued (hs);
    }
  if (status_is (s, slen, "nok"))
    return fail (hs, HS_ERR_SIMULTANEOUS,
                 "the node is already connecting to us (status nok)");
  if (status_is (s, slen, "not_allowed"))
    return fail (hs, HS_ERR_REFUSED,
                 "the node does not allow us to connect (status not_allowed)");
  return protocol_error (hs, "unknown status from the node");
}

/* 'N', flags (64), challenge (32), creation (32), name length (16),
   name, then anything (ignored).  */
static hs_status
parse_challenge_v6 (hs_state *hs, const uint8_t *m, size_t len,
                    uint32_t *challenge)
{
  const size_t fixed = 1 + 8 + 4 + 4 + 2;
  if (len < fixed)
    return protocol_error (hs, "challenge message too short");
  size_t name_len = etf_get_u16 (m + 17);
  if (name_len > len - fixed)
    return protocol_error (hs, "challenge name longer than its message");
  if (!take_peer_name (hs, m + fixed, name_len))
    return protocol_error (hs, "bad node name length in challenge");
  hs->peer_flags = etf_get_u64 (m + 1);
  *challenge = etf_get_u32 (m + 9);
  hs->peer_creation = etf_get_u32 (m + 13);
  return HS_CONTINUE;
}

/* 'n', version 5 (16), flags (32), challenge (32), name up to the end.
   Version 5 has no creation here.  */
static hs_status
parse_challenge_v5 (hs_state *hs, const uint8_t *m, size_t len,
                    uint32_t *challenge)
{
  const size_t fixed = 1 + 2 + 4 + 4;
  if (len < fixed)
    return protocol_error (hs, "challenge message too short");
  if (etf_get_u16 (m + 1) != 5)
    return protocol_error (hs, "old challenge message with a version other "
                               "than 5");
  if (!take_peer_name (hs, m + fixed, len - fixed))
    return protocol_error (hs, "bad node name length in challenge");
  hs->peer_flags = etf_get_u32 (m + 3);
  *challenge = etf_get_u32 (m + 7);
  hs->peer_creation = 0;
  return HS_CONTINUE;
}

static hs_status
recv_challenge (hs_state *hs, const uint8_t *m, size_t len)
{
  uint32_t challenge;
  hs_status st;
  if (m[0] == 'N')
    st = parse_challenge_v6 (hs, m, len, &challenge);
  else if (m[0] == 'n' && hs->sent_old_name)
    /* Only a node that got our old name may answer in the old form.  */
    st = parse_challenge_v5 (hs, m, len, &challenge);
  else
    return protocol_error (hs, "expected a challenge message from the node");
  if (st != HS_CONTINUE)
    return st;

  if (hs->expected_peer_len
      && (hs->peer_name_len != hs->expected_peer_len
          || memcmp (hs->peer_name, hs->expected_peer, hs->peer_name_len)))
    return fail (hs, HS_ERR_WRONG_PEER,
                 "the node's name is not the one dialled");

  hs->peer_flags = expand_flags (hs->peer_flags);
  if (!hs_peer_flags_ok (hs->peer_flags))
    return fail (hs, HS_ERR_FLAGS,
                 "the node lacks capabilities we need (Erlang/OTP 23 or "
                 "later is required)");

  /* An 'N' challenge after our 'n' name: the node speaks version 6 and
     wants the rest of our flags and our creation first.  */
  if (m[0] == 'N' && hs->sent_old_name)
    send_complement (hs);
  if (!send_challenge_reply (hs, challenge))
    return protocol_error (hs, "MD5 is not available in this OpenSSL");
  hs->state = HS_AWAIT_ACK;
  return queued (hs);
}

/* 'a' and the node's digest of our challenge.  */
static hs_status
recv_challenge_ack (hs_state *hs, const uint8_t *m, size_t len)
{
  if (m[0] != 'a')
    return protocol_error (hs, "expected a challenge acknowledgement");
  if (len != 1 + DIGEST_LEN)
    return protocol_error (hs, "challenge acknowledgement of the wrong size");
  uint8_t expected[DIGEST_LEN];
  bool ok = digest_compute (hs->cookie, hs->cookie_len, hs->our_challenge,
                            expected)
            && digest_equal (m + 1, expected);
  digest_wipe (expected, sizeof expected);
  if (!ok)
    return fail (hs, HS_ERR_AUTH,
                 "the node's digest is wrong (cookie mismatch)");
  hs->state = HS_STATE_DONE;
  return HS_DONE;
}

/* ---------------------------------------------------------------- */
/* The acceptor's messages */

/* 'N', our flags (64), challenge (32), creation (32), name length
   (16), name.  Then the peer's complement (after an 'n' name) or its
   reply.  */
static hs_status
send_challenge (hs_state *hs)
{
  etf_put_u16 (&hs->out, (uint16_t) (1 + 8 + 4 + 4 + 2 + hs->name_len));
  etf_put_u8 (&hs->out, 'N');
  etf_put_u64 (&hs->out, hs->flags);
  etf_put_u32 (&hs->out, hs->our_challenge);
  etf_put_u32 (&hs->out, hs->creation);
  etf_put_u16 (&hs->out, (uint16_t) hs->name_len);
  etf_put_bytes (&hs->out, hs->name, hs->name_len);
  hs->state = hs->peer_sent_old_name ? HS_AWAIT_COMPLEMENT : HS_AWAIT_REPLY;
  return queued (hs);
}

/* A node name as Erlang's is_name_ok: one '@', neither side empty.  */
static bool
node_name_ok (const uint8_t *name, size_t len)
{
  const uint8_t *at = memchr (name, '@', len);
  return at && at > name && at < name + len - 1
         && !memchr (at + 1, '@', (size_t) (name + len - at - 1))
         && !memchr (name, 0, len);
}

/* Refuse a peer with status not_allowed, as Erlang does when the peer
   lacks a capability.  */
static hs_status
not_allowed (hs_state *hs, hs_error_kind kind, const char *why)
{
  send_status (hs, "not_allowed");
  if (queued (hs) != HS_CONTINUE)
    return HS_FAILED;
  return fail (hs, kind, why);
}

/* 'N', flags (64), creation (32), name length (16), name, then
   anything (ignored); or 'n', version 5 (16), flags (32), name up to
   the end.  */
static hs_status
recv_name (hs_state *hs, const uint8_t *m, size_t len)
{
  const uint8_t *name;
  size_t name_len;
  if (m[0] == 'N')
    {
      const size_t fixed = 1 + 8 + 4 + 2;
      if (len < fixed)
        return protocol_error (hs, "name message too short");
      name_len = etf_get_u16 (m + 13);
      if (name_len > len - fixed)
        return protocol_error (hs, "name longer than its message");
      name = m + fixed;
      hs->peer_flags = etf_get_u64 (m + 1);
      hs->peer_creation = etf_get_u32 (m + 9);
    }
  else if (m[0] == 'n')
    {
      const size_t fixed = 1 + 2 + 4;
      if (len < fixed)
        return protocol_error (hs, "old name message too short");
      if (etf_get_u16 (m + 1) != 5)
        return protocol_error (hs, "old name message with a version other "
                                   "than 5");
      name = m + fixed;
      name_len = len - fixed;
      hs->peer_flags = etf_get_u32 (m + 3);
      hs->peer_creation = 0;
      hs->peer_sent_old_name = true;
    }
  else
    return protocol_error (hs, "expected a name message from the node");

  if (hs->peer_flags & DFLAG_NAME_ME)
    return not_allowed (hs, HS_ERR_FLAGS,
                        "the node asks for a dynamic name, which we do not "
                        "give");
  if (!take_peer_name (hs, name, name_len) || !node_name_ok (name, name_len))
    return protocol_error (hs, "the node's name is not of the form "
                               "name@host");
  /* An 'n' name must come from a node that speaks version 6 as well: it
     alone can send the complement.  */
  if (hs->peer_sent_old_name && !(hs->peer_flags & DFLAG_HANDSHAKE_23))
    return not_allowed (hs, HS_ERR_FLAGS,
                        "the node speaks distribution version 5 only "
                        "(Erlang/OTP 23 or later is required)");
  hs->peer_flags = expand_flags (hs->peer_flags);
  /* The complement brings the rest; only then can the flags be judged. */
  if (!hs->peer_sent_old_name && !hs_peer_flags_ok (hs->peer_flags))
    return not_allowed (hs, HS_ERR_FLAGS,
                        "the node lacks capabilities we need (Erlang/OTP 23 "
                        "or later is required)");
  hs->state = HS_AWAIT_DECISION;
  return HS_DECIDE;
}

/* 's' "true" (the old connection is dead: go on) or "false".  */
static hs_status
recv_alive_answer (hs_state *hs, const uint8_t *m, size_t len)
{
  if (m[0] != 's')
    return protocol_error (hs, "expected an answer to status alive");
  if (status_is (m + 1, len - 1, "true"))
    {
      hs->replaces_old = true;
      return send_challenge (hs);
    }
  if (status_is (m + 1, len - 1, "false"))
    return fail (hs, HS_ERR_NAME_IN_USE,
                 "the node says its old connection to us is alive (status "
                 "alive answered false)");
  return protocol_error (hs, "unknown answer to status alive");
}

/* 'c', the high 32 flag bits, creation.  */
static hs_status
recv_complement (hs_state *hs, const uint8_t *m, size_t len)
{
  if (m[0] != 'c')
    return protocol_error (hs, "expected a complement message");
  if (len != 1 + 4 + 4)
    return protocol_error (hs, "complement message of the wrong size");
  hs->peer_flags = expand_flags (hs->peer_flags
                                 | (uint64_t) etf_get_u32 (m + 1) << 32);
  hs->peer_creation = etf_get_u32 (m + 5);
  if (!hs_peer_flags_ok (hs->peer_flags))
    return fail (hs, HS_ERR_FLAGS,
                 "the node lacks capabilities we need (Erlang/OTP 23 or "
                 "later is required)");
  hs->state = HS_AWAIT_REPLY;
  return HS_CONTINUE;
}

/* 'r', the peer's challenge, its digest of ours; we answer 'a' and our
   digest of its challenge.  A wrong digest: we close without a word, as
   Erlang does.  */
static hs_status
recv_challenge_reply (hs_state *hs, const uint8_t *m, size_t len)
{
  if (m[0] != 'r')
    return protocol_error (hs, "expected a challenge reply");
  if (len != 1 + 4 + DIGEST_LEN)
    return protocol_error (hs, "challenge reply of the wrong size");
  uint8_t expected[DIGEST_LEN];
  bool ok = digest_compute (hs->cookie, hs->cookie_len, hs->our_challenge,
                            expected)
            && digest_equal (m + 5, expected);
  digest_wipe (expected, sizeof expected);
  if (!ok)
    return fail (hs, HS_ERR_AUTH,
                 "the node's digest is wrong (cookie mismatch)");
  uint8_t digest[DIGEST_LEN];
  if (!digest_compute (hs->cookie, hs->cookie_len, etf_get_u32 (m + 1),
                       digest))
    return protocol_error (hs, "MD5 is not available in this OpenSSL");
  etf_put_u16 (&hs->out, 1 + DIGEST_LEN);
  etf_put_u8 (&hs->out, 'a');
  etf_put_bytes (&hs->out, digest, DIGEST_LEN);
  digest_wipe (digest, sizeof digest);
  if (queued (hs) != HS_CONTINUE)
    return HS_FAILED;
  hs->state = HS_STATE_DONE;
  return HS_DONE;
}

/* One whole message.  */
static hs_status
dispatch (hs_state *hs, const uint8_t *m, size_t len)
{
  if (len == 0)
    return protocol_error (hs, "empty handshake message");
  switch (hs->state)
    {
    case HS_AWAIT_STATUS:
      return recv_status (hs, m, len);
    case HS_AWAIT_CHALLENGE:
      return recv_challenge (hs, m, len);
    case HS_AWAIT_ACK:
      return recv_challenge_ack (hs, m, len);
    case HS_AWAIT_NAME:
      return recv_name (hs, m, len);
    case HS_AWAIT_ALIVE_ANSWER:
      return recv_alive_answer (hs, m, len);
    case HS_AWAIT_COMPLEMENT:
      return recv_complement (hs, m, len);
    case HS_AWAIT_REPLY:
      return recv_challenge_reply (hs, m, len);
    case HS_AWAIT_DECISION:
      return protocol_error (hs, "handshake message before our status");
    default:
      return protocol_error (hs, "handshake message in a finished state");
    }
}

/* ---------------------------------------------------------------- */
/* Entry points */

bool
hs_init_initiator (hs_state *hs, const uint8_t *name, size_t name_len,
                   const uint8_t *cookie, size_t cookie_len,
                   uint64_t flags, uint32_t creation, int peer_highest)
{
  if (!init_common (hs, HS_AWAIT_STATUS, name, name_len, cookie, cookie_len,
                    flags, creation))
    return false;
  hs->sent_old_name = peer_highest < 6;
  if (hs->sent_old_name)
    send_name_v5 (hs);
  else
    send_name_v6 (hs);
  return queued (hs) == HS_CONTINUE;
}

bool
hs_init_acceptor (hs_state *hs, const uint8_t *name, size_t name_len,
                  const uint8_t *cookie, size_t cookie_len, uint64_t flags,
                  uint32_t creation)
{
  return init_common (hs, HS_AWAIT_NAME, name, name_len, cookie, cookie_len,
                      flags, creation);
}

hs_status
hs_accept_status (hs_state *hs, hs_accept_decision decision)
{
  if (hs->state != HS_AWAIT_DECISION)
    return protocol_error (hs, "handshake status decided out of turn");
  switch (decision)
    {
    case HS_ACCEPT_OK:
    case HS_ACCEPT_SIMULTANEOUS:
      send_status (hs, decision == HS_ACCEPT_OK ? "ok" : "ok_simultaneous");
      return send_challenge (hs);
    case HS_ACCEPT_ALIVE:
      send_status (hs, "alive");
      hs->state = HS_AWAIT_ALIVE_ANSWER;
      return queued (hs);
    case HS_ACCEPT_NOK:
      send_status (hs, "nok");
      if (queued (hs) != HS_CONTINUE)
        return HS_FAILED;
      return fail (hs, HS_ERR_REFUSED,
                   "we are already connecting to the node (status nok)");
    case HS_ACCEPT_NOT_ALLOWED:
    default:
      send_status (hs, "not_allowed");
      if (queued (hs) != HS_CONTINUE)
        return HS_FAILED;
      return fail (hs, HS_ERR_REFUSED,
                   "the node is not allowed to connect (status not_allowed)");
    }
}

bool
hs_expect_peer (hs_state *hs, const uint8_t *name, size_t len)
{
  if (len == 0 || len > HS_NAME_ROOM - 1)
    return false;
  memcpy (hs->expected_peer, name, len);
  hs->expected_peer_len = len;
  return true;
}

hs_status
hs_feed (hs_state *hs, const uint8_t *data, size_t len, size_t *consumed)
{
  size_t pos = 0;
  hs_status st = HS_CONTINUE;
  if (hs->state == HS_STATE_DONE)
    st = HS_DONE;
  else if (hs->state == HS_STATE_FAILED)
    st = HS_FAILED;
  else if (hs->state == HS_AWAIT_DECISION)
    st = HS_DECIDE;

  /* Whole messages only, and none past the last handshake message.  */
  while (st == HS_CONTINUE && len - pos >= 2)
    {
      size_t mlen = etf_get_u16 (data + pos);
      if (len - pos - 2 < mlen)
        break;
      st = dispatch (hs, data + pos + 2, mlen);
      pos += 2 + mlen;
    }
  *consumed = pos;
  return st;
}

hs_status
hs_peer_closed (hs_state *hs)
{
  switch (hs->state)
    {
    case HS_STATE_DONE:
      /* The handshake is over; a close now belongs to the connection. */
      return HS_DONE;
    case HS_STATE_FAILED:
      return HS_FAILED;
    case HS_AWAIT_ACK:
      /* The node closes instead of acknowledging when our digest,
         made from our cookie, does not match its own.  */
      return fail (hs, HS_ERR_AUTH,
                   "the node rejected our cookie (cookie mismatch)");
    case HS_AWAIT_STATUS:
      /* A node answers our name with a status, even to refuse it;
         Erlang/OTP 23's TLS distribution closes without a word (later
         ones answer with a TLS alert, which says it all).  */
      return protocol_error (hs, "connection closed during handshake, "
                                 "before the node answered our name: is it "
                                 "a TLS node (-proto_dist inet_tls)?");
    default:
      return protocol_error (hs, "connection closed during handshake");
    }
}

void
hs_free (hs_state *hs)
{
  digest_free (hs->cookie, hs->cookie_len);
  hs->cookie = NULL;
  hs->cookie_len = 0;
  /* OUT held digests made from the cookie.  */
  digest_wipe (hs->out.data, hs->out.len);
  etf_buf_free (&hs->out);
  digest_wipe (&hs->our_challenge, sizeof hs->our_challenge);
}
