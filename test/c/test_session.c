/* test_session.c --- unit tests of session.c, one connection's protocol
   without sockets or threads: two sessions talking to each other
   through byte copies, every handshake in both roles and both length
   framings, frames cut at every byte, ticks, the queue and its limit,
   EPMD answers.  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "session.h"

#define A_NAME "emacs@localhost"
#define B_NAME "node@localhost"
#define COOKIE "secret"

static const session_limits limits = {
  .ticktime_ms = 4000,
  .timeout_ms = 1000,
  .max_message = 1 << 20,
  .max_depth = 100,
  .max_send_queue = 0,
};

static void
make (session *s, const char *name, const char *cookie)
{
  session_init (s, &limits);
  CHECK (session_set_identity (s, name, (const uint8_t *) cookie,
                               strlen (cookie), 7, HS_OUR_FLAGS));
}

/* Copy at most STEP bytes of FROM's output into TO's input; how many.  */
static size_t
carry (session *from, session *to, size_t step)
{
  const uint8_t *data;
  size_t len, room;
  if (!session_output (from, &data, &len))
    return 0;
  if (len > step)
    len = step;
  uint8_t *p = session_input_space (to, len, &room);
  CHECK (p && room >= len);
  if (!p)
    return 0;
  memcpy (p, data, len);
  session_received (to, len, 0);
  session_wrote (from, len, 0);
  return len;
}

/* The acceptor's answer, and how often it was asked.  */
static hs_accept_decision decision;
static int decisions;

static hs_accept_decision
decide (void *arg)
{
  session *s = arg;
  CHECK (!strcmp ((const char *) s->hs.peer_name, A_NAME));
  decisions++;
  return decision;
}

/* Run the handshake between initiator A and acceptor B, bytes carried
   STEP at a time, each side fed after each piece.  The final statuses
   in *SA and *SB.  */
static void
handshake (session *a, session *b, size_t step, hs_status *sa, hs_status *sb)
{
  *sa = *sb = HS_CONTINUE;
  decisions = 0;
  for (int rounds = 0; rounds < 100000; rounds++)
    {
      bool moved = false;
      if (carry (a, b, step))
        {
          moved = true;
          CHECK (session_feed_handshake (b, decide, b, sb));
        }
      if (carry (b, a, step))
        {
          moved = true;
          CHECK (session_feed_handshake (a, decide, a, sa));
        }
      if (!moved)
        return;
    }
  CHECK (!"the handshake never ends");
}

/* A and B up with each other, each in its role.  */
static void
connect_pair (session *a, session *b, int version, bool long_lengths,
              size_t step)
{
  make (a, A_NAME, COOKIE);
  make (b, B_NAME, COOKIE);
  a->peer_version = version;
  a->long_lengths = b->long_lengths = long_lengths;
  CHECK (session_start_initiator (a, B_NAME, false));
  CHECK (session_start_acceptor (b));
  decision = HS_ACCEPT_OK;
  hs_status sa, sb;
  handshake (a, b, step, &sa, &sb);
  CHECK (sa == HS_DONE);
  CHECK (sb == HS_DONE);
  CHECK (decisions == 1);
  CHECK (session_up (a, 0));
  CHECK (session_up (b, 0));
}

/* ---------------------------------------------------------------- */
/* The handshake */

static void
test_handshake_both_roles_every_split (void)
{
  for (int version = 5; version <= 6; version++)
    for (size_t step = 1; step <= 80; step++)
      {
        session a, b;
        connect_pair (&a, &b, version, false, step);
        CHECK (!strcmp ((const char *) a.hs.peer_name, B_NAME));
        CHECK (!strcmp ((const char *) b.hs.peer_name, A_NAME));
        CHECK (a.hs.peer_creation == 7 && b.hs.peer_creation == 7);
        CHECK ((a.hs.peer_flags & HS_PEER_REQUIRED) == HS_PEER_REQUIRED);
        CHECK (a.use_header && b.use_header);
        CHECK (a.atom_cache && b.atom_cache);
        CHECK (session_input_len (&a) == 0 && session_input_len (&b) == 0);
        CHECK (!session_wants_write (&a) && !session_wants_write (&b));
        session_free (&a);
        session_free (&b);
      }
}

static void
test_handshake_long_lengths (void)
{
  session a, b;
  make (&a, A_NAME, COOKIE);
  a.peer_version = 6;
  a.long_lengths = true;
  CHECK (session_start_initiator (&a, B_NAME, false));
  /* Our name message after a 4-byte length: 'N', flags, creation,
     name length, name.  */
  const uint8_t *data;
  size_t len;
  CHECK (session_output (&a, &data, &len));
  CHECK (len == 4 + 1 + 8 + 4 + 2 + strlen (A_NAME));
  CHECK (etf_get_u32 (data) == len - 4 && data[4] == 'N');
  session_free (&a);
  for (size_t step = 1; step <= 40; step++)
    {
      connect_pair (&a, &b, 6, true, step);
      session_free (&a);
      session_free (&b);
    }
}

static void
test_handshake_wrong_cookie (void)
{
  session a, b;
  make (&a, A_NAME, COOKIE);
  make (&b, B_NAME, "other");
  a.peer_version = 6;
  CHECK (session_start_initiator (&a, B_NAME, false));
  CHECK (session_start_acceptor (&b));
  decision = HS_ACCEPT_OK;
  hs_status sa, sb;
  handshake (&a, &b, 1000, &sa, &sb);
  CHECK (sb == HS_FAILED && b.hs.kind == HS_ERR_AUTH);
  CHECK (sa != HS_DONE);
  session_free (&a);
  session_free (&b);
}

static void
test_handshake_not_allowed (void)
{
  session a, b;
  make (&a, A_NAME, COOKIE);
  make (&b, B_NAME, COOKIE);
  a.peer_version = 6;
  CHECK (session_start_initiator (&a, B_NAME, false));
  CHECK (session_start_acceptor (&b));
  decision = HS_ACCEPT_NOT_ALLOWED;
  hs_status sa, sb;
  handshake (&a, &b, 3, &sa, &sb);
  CHECK (decisions == 1);
  CHECK (sb == HS_FAILED);
  CHECK (sa == HS_FAILED && a.hs.kind == HS_ERR_REFUSED);
  session_free (&a);
  session_free (&b);
}

static void
test_handshake_wrong_peer (void)
{
  session a, b;
  make (&a, A_NAME, COOKIE);
  make (&b, B_NAME, COOKIE);
  a.peer_version = 6;
  CHECK (session_start_initiator (&a, "other@localhost", false));
  CHECK (session_start_acceptor (&b));
  decision = HS_ACCEPT_OK;
  hs_status sa, sb;
  handshake (&a, &b, 1000, &sa, &sb);
  CHECK (sa == HS_FAILED && a.hs.kind == HS_ERR_WRONG_PEER);
  session_free (&a);
  session_free (&b);
}

/* A plain acceptor fed a TLS ClientHello says so, at once.  */
static void
test_plain_connection_sees_tls (void)
{
  session b;
  make (&b, B_NAME, COOKIE);
  CHECK (session_start_acceptor (&b));
  size_t room;
  uint8_t *p = session_input_space (&b, 5, &room);
  memcpy (p, (const uint8_t[]) { 0x16, 3, 1, 0, 0x80 }, 5);
  session_received (&b, 5, 0);
  hs_status st;
  CHECK (!session_feed_handshake (&b, decide, &b, &st));
  session_free (&b);
}

/* Under long lengths, a length no handshake message has fails it.  */
static void
test_long_lengths_too_long (void)
{
  session b;
  make (&b, B_NAME, COOKIE);
  b.long_lengths = true;
  CHECK (session_start_acceptor (&b));
  size_t room;
  uint8_t *p = session_input_space (&b, 4, &room);
  memcpy (p, (const uint8_t[]) { 0, 1, 0, 0 }, 4);
  session_received (&b, 4, 0);
  hs_status st;
  CHECK (session_feed_handshake (&b, decide, &b, &st));
  CHECK (st == HS_FAILED && b.hs.kind == HS_ERR_PROTOCOL);
  session_free (&b);
}

/* ---------------------------------------------------------------- */
/* Frames */

/* A REG_SEND control tuple {6, From, '', To} without version byte.  */
static void
reg_send (etf_buf *b, const char *to)
{
  etf_put_tuple_header (b, 4);
  etf_put_int (b, 6);
  etf_put_pid (b, (const uint8_t *) A_NAME, strlen (A_NAME), 1, 0, 7);
  etf_put_atom (b, (const uint8_t *) "", 0);
  etf_put_atom (b, (const uint8_t *) to, strlen (to));
}

typedef struct
{
  int count;
  size_t bytes;
  uint8_t last_op_atom[32];
} seen_frames;

static bool
collect (void *arg, const uint8_t *body, size_t n, const dist_frame *frame,
         const etf_atom *refs)
{
  (void) body, (void) refs;
  seen_frames *seen = arg;
  CHECK (frame->op == 6);
  seen->count++;
  seen->bytes += n;
  return true;
}

/* A session up without a handshake, frames with a distribution header
   or not.  */
static void
make_up (session *s, bool header)
{
  make (s, A_NAME, COOKIE);
  s->hs.peer_flags = header ? DFLAG_DIST_HDR_ATOM_CACHE : 0;
  CHECK (session_up (s, 0));
  CHECK (s->use_header == header);
}

/* Three messages out of a session, as the bytes it writes.  */
static etf_buf
three_messages (bool header)
{
  session s;
  make_up (&s, header);
  etf_buf control, message;
  etf_buf_init (&control);
  etf_buf_init (&message);
  reg_send (&control, "net_kernel");
  etf_put_tuple_header (&message, 2);
  etf_put_atom (&message, (const uint8_t *) "hello", 5);
  etf_put_int (&message, 123456789);
  bool idle;
  for (int k = 0; k < 3; k++)
    CHECK (session_queue_message (&s, control.data, control.len,
                                  message.data, message.len, &idle)
           == NODE_SEND_OK);
  etf_buf bytes;
  etf_buf_init (&bytes);
  const uint8_t *data;
  size_t len;
  while (session_output (&s, &data, &len))
    {
      etf_put_bytes (&bytes, data, len);
      session_wrote (&s, len, 0);
    }
  CHECK (s.messages_out == 3);
  etf_buf_free (&control);
  etf_buf_free (&message);
  session_free (&s);
  return bytes;
}

/* Give S's input LEN bytes at DATA, and handle its frames.  */
static bool
receive (session *s, const uint8_t *data, size_t len, seen_frames *seen,
         session_failure *failure)
{
  if (len)
    {
      size_t room;
      uint8_t *p = session_input_space (s, len, &room);
      CHECK (p != NULL && room >= len);
      memcpy (p, data, len);
      session_received (s, len, 0);
    }
  return session_frames (s, collect, seen, failure);
}

static void
test_frames_split_at_every_byte (void)
{
  for (int header = 0; header <= 1; header++)
    {
      etf_buf bytes = three_messages (header);
      for (size_t cut = 0; cut <= bytes.len; cut++)
        {
          session r;
          make_up (&r, header);
          seen_frames seen = { 0 };
          session_failure failure;
          CHECK (receive (&r, bytes.data, cut, &seen, &failure));
          CHECK (receive (&r, bytes.data + cut, bytes.len - cut, &seen,
                          &failure));
          CHECK (seen.count == 3);
          CHECK (r.messages_in == 3 && r.bytes_in == seen.bytes);
          CHECK (session_input_len (&r) == 0);
          CHECK (!session_wants_write (&r));  /* no tick answered */
          session_free (&r);
        }
      /* ... and one byte at a time.  */
      session r;
      make_up (&r, header);
      seen_frames seen = { 0 };
      session_failure failure;
      for (size_t k = 0; k < bytes.len; k++)
        CHECK (receive (&r, bytes.data + k, 1, &seen, &failure));
      CHECK (seen.count == 3);
      session_free (&r);
      etf_buf_free (&bytes);
    }
}

static void
test_frame_too_large (void)
{
  etf_buf bytes = three_messages (false);
  session r;
  make_up (&r, false);
  r.limits.max_message = 10;
  seen_frames seen = { 0 };
  session_failure failure;
  CHECK (!receive (&r, bytes.data, bytes.len, &seen, &failure));
  CHECK (failure.error == NODE_ERR_TOO_LARGE);
  CHECK (strstr (failure.reason, "derl-max-message-size") != NULL);
  CHECK (seen.count == 0);
  session_free (&r);
  etf_buf_free (&bytes);
}

static void
test_frame_malformed (void)
{
  session r;
  make_up (&r, false);
  seen_frames seen = { 0 };
  session_failure failure;
  CHECK (!receive (&r, BYTES (0, 0, 0, 3, 112, 131, 255), &seen, &failure));
  CHECK (failure.error == NODE_ERR_PROTOCOL);
  CHECK (!strncmp (failure.reason, "malformed message", 17));
  session_free (&r);
}

/* A frame the caller cannot take (out of memory) ends the connection.  */
static bool
refuse (void *arg, const uint8_t *body, size_t n, const dist_frame *frame,
        const etf_atom *refs)
{
  (void) arg, (void) body, (void) n, (void) frame, (void) refs;
  return false;
}

static void
test_frame_refused_by_caller (void)
{
  etf_buf bytes = three_messages (false);
  session r;
  make_up (&r, false);
  size_t room;
  uint8_t *p = session_input_space (&r, bytes.len, &room);
  memcpy (p, bytes.data, bytes.len);
  session_received (&r, bytes.len, 0);
  session_failure failure;
  CHECK (!session_frames (&r, refuse, NULL, &failure));
  CHECK (failure.error == NODE_ERR_PROTOCOL);
  CHECK (r.messages_in == 0);
  session_free (&r);
  etf_buf_free (&bytes);
}

/* ---------------------------------------------------------------- */
/* Ticks */

static void
test_ticks (void)
{
  session s;
  make_up (&s, false);
  int64_t next;
  const uint8_t *data;
  size_t len;
  /* A quarter of the tick time without sending: a tick goes out.  */
  CHECK (session_ticks (&s, 999, &next) && next == 1);
  CHECK (!session_output (&s, &data, &len));
  CHECK (session_ticks (&s, 1000, &next));
  CHECK (session_output (&s, &data, &len) && len == 4);
  CHECK (!memcmp (data, (const uint8_t[]) { 0, 0, 0, 0 }, 4));
  CHECK (next == 1000);
  CHECK (session_wrote (&s, 4, 1000));
  /* Not counted as a message.  */
  size_t count, bytes;
  session_unsent (&s, &count, &bytes);
  CHECK (s.messages_out == 0 && count == 0);
  /* A tick received is answered, and counts as something heard.  */
  seen_frames seen = { 0 };
  session_failure failure;
  size_t room;
  uint8_t *p = session_input_space (&s, 4, &room);
  memset (p, 0, 4);
  session_received (&s, 4, 3000);
  CHECK (session_frames (&s, collect, &seen, &failure));
  CHECK (seen.count == 0);
  CHECK (session_output (&s, &data, &len) && len == 4);
  session_wrote (&s, 4, 3000);
  CHECK (session_ticks (&s, 6999, &next));
  /* Nothing heard for the tick time: the connection is dead.  */
  CHECK (!session_ticks (&s, 7000, &next));
  session_free (&s);
}

static void
test_no_ticks_before_up_or_without_ticktime (void)
{
  session s;
  make (&s, A_NAME, COOKIE);
  int64_t next;
  CHECK (session_ticks (&s, 100000, &next) && next == -1);
  s.limits.ticktime_ms = 0;
  CHECK (session_up (&s, 0));
  CHECK (session_ticks (&s, 100000, &next) && next == -1);
  session_free (&s);
}

/* ---------------------------------------------------------------- */
/* The queue */

static void
test_queued_before_up (void)
{
  session s;
  make (&s, A_NAME, COOKIE);
  etf_buf control;
  etf_buf_init (&control);
  reg_send (&control, "rex");
  bool idle;
  CHECK (session_queue_message (&s, control.data, control.len, NULL, 0,
                                &idle) == NODE_SEND_OK);
  CHECK (!idle);
  const uint8_t *data;
  size_t len;
  CHECK (!session_output (&s, &data, &len));
  size_t count, bytes;
  session_unsent (&s, &count, &bytes);
  CHECK (count == 1 && bytes == control.len);
  /* Up: framed, pass-through, in the order queued.  */
  CHECK (session_up (&s, 0));
  CHECK (session_output (&s, &data, &len));
  CHECK (len == 4 + 1 + 1 + control.len);
  CHECK (etf_get_u32 (data) == len - 4 && data[4] == 112 && data[5] == 131);
  CHECK (!memcmp (data + 6, control.data, control.len));
  session_unsent (&s, &count, &bytes);
  CHECK (count == 1);
  CHECK (session_wrote (&s, len, 0));
  session_unsent (&s, &count, &bytes);
  CHECK (count == 0);
  etf_buf_free (&control);
  session_free (&s);
}

static void
test_send_queue_limit (void)
{
  session s;
  make_up (&s, false);
  s.limits.max_send_queue = 100;
  uint8_t big[200] = { 0 };
  bool idle;
  /* Into an empty queue a message always goes, however large.  */
  CHECK (session_queue_message (&s, big, sizeof big, NULL, 0, &idle)
         == NODE_SEND_OK);
  CHECK (idle);
  CHECK (session_queue_message (&s, big, 1, NULL, 0, &idle)
         == NODE_SEND_BUSY);
  CHECK (s.messages_out == 1);
  /* Written in pieces, the queue empties.  */
  const uint8_t *data;
  size_t len;
  while (session_output (&s, &data, &len))
    session_wrote (&s, len > 7 ? 7 : len, 0);
  CHECK (session_queue_message (&s, big, 1, NULL, 0, &idle)
         == NODE_SEND_OK);
  session_free (&s);
}

static void
test_move_queue (void)
{
  session from, into;
  make (&from, A_NAME, COOKIE);
  make_up (&into, true);
  bool idle;
  etf_buf control;
  etf_buf_init (&control);
  reg_send (&control, "rex");
  CHECK (session_queue_message (&from, control.data, control.len, NULL, 0,
                                &idle) == NODE_SEND_OK);
  session_move_queue (&from, &into);
  /* Framed as INTO frames: after a distribution header.  */
  const uint8_t *data;
  size_t len;
  CHECK (session_output (&into, &data, &len));
  CHECK (len > 6 && data[4] == 131 && data[5] == 68);
  etf_buf_free (&control);
  session_free (&from);
  session_free (&into);
}

static void
test_swap_pending (void)
{
  session a, b;
  make (&a, A_NAME, COOKIE);
  make (&b, B_NAME, COOKIE);
  bool idle;
  uint8_t control[3] = { 104, 0, 0 };
  CHECK (session_queue_message (&a, control, 3, NULL, 0, &idle)
         == NODE_SEND_OK);
  session_swap_pending (&a, &b);
  size_t count, bytes;
  session_unsent (&a, &count, &bytes);
  CHECK (count == 0);
  session_unsent (&b, &count, &bytes);
  CHECK (count == 1 && bytes == 3);
  session_free (&a);
  session_free (&b);
}

/* ---------------------------------------------------------------- */
/* EPMD */

static void
test_epmd_port_please (void)
{
  session s;
  make (&s, A_NAME, COOKIE);
  CHECK (session_epmd_port_please (&s, "node"));
  const uint8_t *data;
  size_t len;
  CHECK (session_output (&s, &data, &len));
  CHECK (len == 2 + 1 + 4 && data[2] == 122 && !memcmp (data + 3, "node", 4));
  session_wrote (&s, len, 0);
  static const uint8_t answer[] = { 119, 0, 0x9c, 0x40, 77, 0, 0, 6, 0, 5,
                                    0, 4, 'n', 'o', 'd', 'e', 0, 0 };
  for (size_t k = 0; k <= sizeof answer; k++)
    {
      session_discard_input (&s);
      if (k)
        {
          size_t room;
          uint8_t *p = session_input_space (&s, k, &room);
          memcpy (p, answer, k);
          session_received (&s, k, 0);
        }
      epmd_node_info info;
      const char *why = NULL;
      epmd_result r = session_epmd_port_answer (&s, &info, &why);
      CHECK (r == (k < sizeof answer ? EPMD_INCOMPLETE : EPMD_OK));
      if (r == EPMD_OK)
        {
          CHECK (info.port == 40000 && info.highest_version == 6
                 && info.lowest_version == 5);
          CHECK (session_input_len (&s) == 0);
        }
    }
  /* Too long a name is refused before anything is queued.  */
  char name[300];
  memset (name, 'x', sizeof name - 1);
  name[sizeof name - 1] = 0;
  CHECK (!session_epmd_port_please (&s, name));
  CHECK (!session_wants_write (&s));
  session_free (&s);
}

static void
test_epmd_alive (void)
{
  session s;
  make (&s, A_NAME, COOKIE);
  CHECK (session_epmd_alive2 (&s, 40001, "emacs"));
  CHECK (session_wants_write (&s));
  size_t room;
  uint8_t *p = session_input_space (&s, 6, &room);
  memcpy (p, (const uint8_t[]) { 118, 0, 0, 0, 1, 2 }, 6);
  session_received (&s, 6, 0);
  uint32_t creation = 0;
  const char *why = NULL;
  CHECK (session_epmd_alive_answer (&s, &creation, &why) == EPMD_OK);
  CHECK (creation == 0x102);
  p = session_input_space (&s, 6, &room);
  memcpy (p, (const uint8_t[]) { 118, 1, 0, 0, 0, 0 }, 6);
  session_received (&s, 6, 0);
  CHECK (session_epmd_alive_answer (&s, &creation, &why) == EPMD_REFUSED);
  session_free (&s);
}

/* ---------------------------------------------------------------- */

static void
test_restart (void)
{
  session a, b;
  connect_pair (&a, &b, 6, false, 1000);
  session_free (&a);
  session_free (&b);
  make (&a, A_NAME, COOKIE);
  a.peer_version = 6;
  CHECK (session_start_initiator (&a, B_NAME, false));
  CHECK (session_wants_write (&a));
  session_restart (&a);
  CHECK (!session_wants_write (&a) && !a.hs_started);
  /* ... and a second handshake runs from the start.  */
  make (&b, B_NAME, COOKIE);
  CHECK (session_start_initiator (&a, B_NAME, false));
  CHECK (session_start_acceptor (&b));
  hs_status sa, sb;
  decision = HS_ACCEPT_OK;
  handshake (&a, &b, 5, &sa, &sb);
  CHECK (sa == HS_DONE && sb == HS_DONE);
  session_free (&a);
  session_free (&b);
}

int
main (void)
{
  static const test_case tests[] = {
    TEST (test_handshake_both_roles_every_split),
    TEST (test_handshake_long_lengths),
    TEST (test_handshake_wrong_cookie),
    TEST (test_handshake_not_allowed),
    TEST (test_handshake_wrong_peer),
    TEST (test_plain_connection_sees_tls),
    TEST (test_long_lengths_too_long),
    TEST (test_frames_split_at_every_byte),
    TEST (test_frame_too_large),
    TEST (test_frame_malformed),
    TEST (test_frame_refused_by_caller),
    TEST (test_ticks),
    TEST (test_no_ticks_before_up_or_without_ticktime),
    TEST (test_queued_before_up),
    TEST (test_send_queue_limit),
    TEST (test_move_queue),
    TEST (test_swap_pending),
    TEST (test_epmd_port_please),
    TEST (test_epmd_alive),
    TEST (test_restart),
  };
  return run_tests (tests, sizeof tests / sizeof *tests);
}
