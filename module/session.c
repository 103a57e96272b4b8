/* session.c --- one distribution connection's protocol: bytes in,
   bytes out.  See session.h.  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#define _GNU_SOURCE
#include "session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digest.h"

/* Buffers past this size are given back once they empty out: one big
   message must not keep its memory for the connection's life.  */
#define KEEP_BUFFER ((size_t) 1 << 20)
/* Room kept beyond the unread bytes when a big buffer shrinks.  */
#define SHRINK_SLACK 65536

void
session_init (session *s, const session_limits *limits)
{
  memset (s, 0, sizeof *s);
  s->limits = *limits;
  etf_buf_init (&s->in);
  etf_buf_init (&s->early);
  etf_buf_init (&s->out);
  etf_buf_init (&s->pending);
}

void
session_free (session *s)
{
  digest_free (s->cookie, s->cookie_len);
  s->cookie = NULL;
  free (s->our_name);
  s->our_name = NULL;
  if (s->hs_started)
    hs_free (&s->hs);
  s->hs_started = false;
  dist_atom_cache_free (s->atom_cache);
  s->atom_cache = NULL;
  etf_buf_free (&s->in);
  etf_buf_free (&s->early);
  etf_buf_free (&s->out);
  etf_buf_free (&s->pending);
}

bool
session_set_identity (session *s, const char *our_name, const uint8_t *cookie,
                      size_t cookie_len, uint32_t creation, uint64_t flags)
{
  s->our_name = strdup (our_name);
  s->cookie = malloc (cookie_len ? cookie_len : 1);
  if (!s->our_name || !s->cookie)
    return false;
  memcpy (s->cookie, cookie, cookie_len);
  s->cookie_len = cookie_len;
  s->creation = creation;
  s->flags = flags;
  return true;
}

void
session_restart (session *s)
{
  if (s->hs_started)
    {
      hs_free (&s->hs);  /* the next handshake starts afresh */
      s->hs_started = false;
    }
  s->in.len = s->in_start = 0;
  s->early.len = 0;
  s->long_lengths = false;
}

/* ---------------------------------------------------------------- */
/* Input */

const uint8_t *
session_input (const session *s)
{
  return s->in.data + s->in_start;
}

size_t
session_input_len (const session *s)
{
  return s->in.len - s->in_start;
}

static void
in_consume (session *s, size_t n)
{
  s->in_start += n;
  if (s->in_start == s->in.len)
    {
      s->in_start = s->in.len = 0;
      if (s->in.cap > KEEP_BUFFER)
        etf_buf_free (&s->in);
    }
}

void
session_discard_input (session *s)
{
  in_consume (s, session_input_len (s));
}

/* Give back the memory of a big frame once it is done with, unless
   another big one is under way.  IN holds its unread bytes from the
   start.  */
static void
shrink_input (session *s)
{
  if (s->in.cap <= KEEP_BUFFER)
    return;
  size_t have = s->in.len;
  size_t frame = have >= 4 && s->up ? 4 + (size_t) etf_get_u32 (s->in.data)
                                    : have;
  if (frame > KEEP_BUFFER / 2)
    return;
  uint8_t *smaller = realloc (s->in.data, have + SHRINK_SLACK);
  if (smaller)
    {
      s->in.data = smaller;
      s->in.cap = have + SHRINK_SLACK;
    }
}

uint8_t *
session_input_space (session *s, size_t want, size_t *room)
{
  if (s->in_start > 0)
    {
      /* Keep unread bytes at the start: big frames need one block.  */
      memmove (s->in.data, s->in.data + s->in_start, session_input_len (s));
      s->in.len -= s->in_start;
      s->in_start = 0;
    }
  shrink_input (s);
  if (!etf_buf_reserve (&s->in, want))
    return NULL;
  *room = s->in.cap - s->in.len;
  return s->in.data + s->in.len;
}

void
session_received (session *s, size_t n, int64_t now)
{
  s->in.len += n;
  if (n)
    s->last_recv = now;
}

/* ---------------------------------------------------------------- */
/* Output */

bool
session_output (const session *s, const uint8_t **data, size_t *len)
{
  if (s->early.len)
    {
      *data = s->early.data;
      *len = s->early.len;
      return true;
    }
  if (s->up && s->out.len > s->out_sent)
    {
      *data = s->out.data + s->out_sent;
      *len = s->out.len - s->out_sent;
      return true;
    }
  return false;
}

/* Drop the frames of OUT that were sent completely (SENT bytes of it
   were): under a steady stream OUT never empties, and must not grow.
   Returns the bytes sent of what is left.  */
static size_t
drop_sent_frames (etf_buf *out, size_t sent)
{
  size_t pos = 0;
  while (out->len - pos >= 4)
    {
      size_t end = pos + 4 + etf_get_u32 (out->data + pos);
      if (end > sent)
        break;
      pos = end;
    }
  memmove (out->data, out->data + pos, out->len - pos);
  out->len -= pos;
  return sent - pos;
}

bool
session_wrote (session *s, size_t n, int64_t now)
{
  s->last_send = now;
  if (s->early.len)
    {
      /* Keep the unsent tail of EARLY at its start.  */
      memmove (s->early.data, s->early.data + n, s->early.len - n);
      s->early.len -= n;
      if (!s->early.len && s->early.cap > KEEP_BUFFER)
        etf_buf_free (&s->early);
      return false;
    }
  s->out_sent += n;
  if (s->out_sent == s->out.len)
    {
      s->out.len = s->out_sent = 0;
      /* Don't keep a huge buffer around after a huge message.  */
      if (s->out.cap > KEEP_BUFFER)
        etf_buf_free (&s->out);
      return true;
    }
  if (s->out_sent > KEEP_BUFFER && s->out_sent > s->out.len / 2)
    s->out_sent = drop_sent_frames (&s->out, s->out_sent);
  return false;
}

bool
session_wants_write (const session *s)
{
  return s->early.len > 0 || (s->up && s->out.len > s->out_sent);
}

/* Bytes waiting to go out.  */
static size_t
queued_out (const session *s)
{
  return s->out.len - s->out_sent + s->pending.len;
}

/* Would ADDING bytes take the output queue past its limit?  */
static bool
over_limit (const session *s, size_t adding)
{
  size_t queued = queued_out (s);
  size_t limit = s->limits.max_send_queue;
  return limit && queued > 0 && (adding > limit || queued > limit - adding);
}

/* Pending messages are kept as [control length][message length + 1, 0
   for none][control][message] until the connection is up and its frame
   form known.  */
#define PENDING_HEADER 16

static void
queue_pending (session *s, const uint8_t *control, size_t control_len,
               const uint8_t *message, size_t message_len)
{
  etf_put_u64 (&s->pending, control_len);
  etf_put_u64 (&s->pending, message ? message_len + 1 : 0);
  etf_put_bytes (&s->pending, control, control_len);
  if (message)
    etf_put_bytes (&s->pending, message, message_len);
}

/* Walk the pending records: calls FN for each.  */
static void
each_pending (const session *s,
              void (*fn) (void *arg, const uint8_t *control,
                          size_t control_len, const uint8_t *message,
                          size_t message_len),
              void *arg)
{
  if (!s->pending.data)
    return;
  const uint8_t *p = s->pending.data;
  const uint8_t *end = p + s->pending.len;
  while ((size_t) (end - p) >= PENDING_HEADER)
    {
      size_t control_len = etf_get_u64 (p);
      uint64_t m = etf_get_u64 (p + 8);
      const uint8_t *control = p + PENDING_HEADER;
      const uint8_t *message = m ? control + control_len : NULL;
      size_t message_len = m ? m - 1 : 0;
      fn (arg, control, control_len, message, message_len);
      p = control + control_len + message_len;
    }
}

static void
frame_one (void *arg, const uint8_t *control, size_t control_len,
           const uint8_t *message, size_t message_len)
{
  session *s = arg;
  dist_put_frame (&s->out, s->use_header, control, control_len, message,
                  message_len);
}

void
session_frame_pending (session *s)
{
  each_pending (s, frame_one, s);
  etf_buf_free (&s->pending);
}

typedef struct
{
  size_t count, bytes;
} tally;

static void
count_one (void *arg, const uint8_t *control, size_t control_len,
           const uint8_t *message, size_t message_len)
{
  (void) control, (void) message;
  tally *t = arg;
  t->count++;
  t->bytes += control_len + message_len;
}

void
session_unsent (const session *s, size_t *count, size_t *bytes)
{
  tally t = { 0, 0 };
  each_pending (s, count_one, &t);
  /* OUT holds whole frames from its start; those ending past OUT_SENT
     were not (completely) sent.  Ticks are empty frames: not counted. */
  size_t pos = 0;
  while (s->out.len - pos >= 4)
    {
      size_t n = etf_get_u32 (s->out.data + pos);
      size_t end = pos + 4 + n;
      if (n > 0 && end > s->out_sent)
        {
          t.count++;
          t.bytes += n;
        }
      pos = end;
    }
  *count = t.count;
  *bytes = t.bytes;
}

node_send_result
session_queue_frame (session *s, etf_buf *frame, size_t terms_len,
                     bool *idle)
{
  *idle = false;
  if (over_limit (s, frame->len))
    return NODE_SEND_BUSY;
  s->messages_out++;
  s->bytes_out += terms_len;
  *idle = s->out.len == s->out_sent;
  if (*idle)
    {
      /* Take FRAME's memory; give it the old, empty buffer.  */
      etf_buf old = s->out;
      s->out = *frame;
      s->out_sent = 0;
      old.len = 0;
      *frame = old;
    }
  else
    etf_put_bytes (&s->out, frame->data, frame->len);
  return s->out.status == ETF_OK ? NODE_SEND_OK : NODE_SEND_NO_CONNECTION;
}

node_send_result
session_queue_message (session *s, const uint8_t *control, size_t control_len,
                       const uint8_t *message, size_t message_len, bool *idle)
{
  *idle = false;
  size_t adding = control_len + message_len;
  if (over_limit (s, adding))
    return NODE_SEND_BUSY;
  s->messages_out++;
  s->bytes_out += adding;
  if (!s->up)
    {
      queue_pending (s, control, control_len, message, message_len);
      return s->pending.status == ETF_OK ? NODE_SEND_OK
                                         : NODE_SEND_NO_CONNECTION;
    }
  *idle = s->out.len == s->out_sent;
  dist_put_frame (&s->out, s->use_header, control, control_len, message,
                  message_len);
  return s->out.status == ETF_OK ? NODE_SEND_OK : NODE_SEND_NO_CONNECTION;
}

void
session_swap_pending (session *a, session *b)
{
  etf_buf pending = a->pending;
  a->pending = b->pending;
  b->pending = pending;
}

void
session_move_queue (session *from, session *into)
{
  if (into->up)
    {
      /* Frame what waited for FROM as INTO frames, and queue it there.  */
      from->use_header = into->use_header;
      session_frame_pending (from);
      etf_put_bytes (&into->out, from->out.data, from->out.len);
    }
  else
    etf_put_bytes (&into->pending, from->pending.data, from->pending.len);
}

/* ---------------------------------------------------------------- */
/* EPMD */

static bool
put_request (session *s, const uint8_t *req, size_t n)
{
  if (n == 0)
    return false;
  etf_put_bytes (&s->early, req, n);
  return true;
}

bool
session_epmd_port_please (session *s, const char *alive)
{
  uint8_t req[512];
  return put_request (s, req, epmd_port_please_request (alive, strlen (alive),
                                                        req, sizeof req));
}

bool
session_epmd_names (session *s)
{
  uint8_t req[512];
  return put_request (s, req, epmd_names_request (req, sizeof req));
}

bool
session_epmd_alive2 (session *s, uint16_t port, const char *alive)
{
  uint8_t req[512];
  return put_request (s, req, epmd_alive2_request (port, alive,
                                                   strlen (alive), req,
                                                   sizeof req));
}

/* What parsing an EPMD answer gave: R, and USED bytes of the input it
   took, used up when the answer is whole.  */
static epmd_result
answer_taken (session *s, epmd_result r, size_t used)
{
  if (r == EPMD_OK)
    in_consume (s, used);
  return r;
}

epmd_result
session_epmd_port_answer (session *s, epmd_node_info *info, const char **why)
{
  size_t used = 0;
  epmd_result r = epmd_parse_port2_resp (session_input (s),
                                         session_input_len (s), info, &used,
                                         why);
  return answer_taken (s, r, used);
}

epmd_result
session_epmd_alive_answer (session *s, uint32_t *creation, const char **why)
{
  size_t used = 0;
  epmd_result r = epmd_parse_alive2_resp (session_input (s),
                                          session_input_len (s), creation,
                                          &used, why);
  return answer_taken (s, r, used);
}

epmd_result
session_epmd_names_next (const session *s, size_t *pos,
                         epmd_name_entry *entry, const char **why)
{
  return epmd_names_next (session_input (s), session_input_len (s), pos,
                          entry, why);
}

/* ---------------------------------------------------------------- */
/* The handshake */

/* Move the handshake's output to EARLY, framed for the transport.  */
static void
put_handshake_out (session *s)
{
  const uint8_t *p = s->hs.out.data;
  size_t len = s->hs.out.len;
  if (!s->long_lengths)
    etf_put_bytes (&s->early, p, len);
  else
    /* Each message after a 4-byte length instead of its 2-byte one.  */
    for (size_t pos = 0; len - pos >= 2;)
      {
        size_t n = etf_get_u16 (p + pos);
        if (len - pos - 2 < n)
          break;
        etf_put_u32 (&s->early, (uint32_t) n);
        etf_put_bytes (&s->early, p + pos + 2, n);
        pos += 2 + n;
      }
  digest_wipe (s->hs.out.data, s->hs.out.len);
  s->hs.out.len = 0;
}

bool
session_start_initiator (session *s, const char *dialled, bool replace_old)
{
  bool ok = hs_init_initiator (&s->hs, (const uint8_t *) s->our_name,
                               strlen (s->our_name), s->cookie,
                               s->cookie_len, s->flags, s->creation,
                               s->peer_version)
            && hs_expect_peer (&s->hs, (const uint8_t *) dialled,
                               strlen (dialled));
  s->hs_started = true;
  s->hs.replace_old = replace_old;
  if (!ok)
    {
      if (!s->hs.error)
        s->hs.error = "node name too long";
      return false;
    }
  put_handshake_out (s);
  return true;
}

bool
session_start_acceptor (session *s)
{
  bool ok = hs_init_acceptor (&s->hs, (const uint8_t *) s->our_name,
                              strlen (s->our_name), s->cookie, s->cookie_len,
                              s->flags, s->creation);
  s->hs_started = true;
  return ok;
}

/* Does DATA look like the start of a TLS record (a handshake or an
   alert)?  No distribution handshake message is that long.  */
static bool
looks_like_tls (const uint8_t *data, size_t len)
{
  return len >= 3 && (data[0] == 0x15 || data[0] == 0x16) && data[1] == 3
         && data[2] <= 4;
}

static hs_status
handshake_failed (session *s, const char *why)
{
  s->hs.state = HS_STATE_FAILED;
  s->hs.kind = HS_ERR_PROTOCOL;
  s->hs.error = why;
  return HS_FAILED;
}

/* Feed the handshake whole messages after 4-byte lengths, each
   rewritten with the 2-byte length the handshake reads.  */
static hs_status
feed_long_lengths (session *s)
{
  hs_status st = HS_CONTINUE;
  etf_buf one;
  etf_buf_init (&one);
  while (st == HS_CONTINUE && session_input_len (s) >= 4)
    {
      uint32_t n = etf_get_u32 (session_input (s));
      if (n > 0xffff)
        {
          st = handshake_failed (s, "handshake message too long");
          break;
        }
      if (session_input_len (s) - 4 < n)
        break;
      one.len = 0;
      etf_put_u16 (&one, (uint16_t) n);
      etf_put_bytes (&one, session_input (s) + 4, n);
      if (one.status != ETF_OK)
        {
          st = handshake_failed (s, "out of memory");
          break;
        }
      size_t used = 0;
      st = hs_feed (&s->hs, one.data, one.len, &used);
      in_consume (s, 4 + n);
    }
  digest_wipe (one.data, one.len);
  etf_buf_free (&one);
  return st;
}

bool
session_feed_handshake (session *s, session_decide_fn decide, void *arg,
                        hs_status *status)
{
  hs_status st;
  for (;;)
    {
      if (s->long_lengths)
        st = feed_long_lengths (s);
      else if (looks_like_tls (session_input (s), session_input_len (s)))
        return false;
      else
        {
          size_t used = 0;
          st = hs_feed (&s->hs, session_input (s), session_input_len (s), &used);
          in_consume (s, used);
        }
      if (st != HS_DECIDE)
        break;
      st = hs_accept_status (&s->hs, decide (arg));
      if (st != HS_CONTINUE)
        break;
    }
  if (s->hs.out.len)
    put_handshake_out (s);
  *status = st;
  return true;
}

void
session_peer_closed (session *s)
{
  hs_peer_closed (&s->hs);
}

bool
session_up (session *s, int64_t now)
{
  s->up = true;
  s->use_header = (s->hs.peer_flags & s->flags
                   & DFLAG_DIST_HDR_ATOM_CACHE) != 0;
  session_frame_pending (s);
  s->last_recv = s->last_send = now;
  /* The cookie is no longer needed.  */
  digest_wipe (s->cookie, s->cookie_len);
  if (s->use_header)
    {
      s->atom_cache = calloc (1, sizeof *s->atom_cache);
      if (!s->atom_cache)
        return false;
    }
  return true;
}

/* ---------------------------------------------------------------- */
/* Frames */

static void
queue_tick (session *s)
{
  static const uint8_t tick[4];
  etf_put_bytes (&s->out, tick, 4);
}

bool
session_frames (session *s, session_frame_fn fn, void *arg,
                session_failure *failure)
{
  for (;;)
    {
      size_t avail = session_input_len (s);
      if (avail < 4)
        return true;
      uint32_t n = etf_get_u32 (session_input (s));
      if (n == 0)
        {
          /* A tick: answer it; receiving it already counted.  */
          in_consume (s, 4);
          if (s->out.len == s->out_sent)
            queue_tick (s);
          continue;
        }
      if (n > s->limits.max_message)
        {
          failure->error = NODE_ERR_TOO_LARGE;
          snprintf (failure->reason, sizeof failure->reason,
                    "message of %u bytes exceeds derl-max-message-size",
                    (unsigned) n);
          return false;
        }
      if (avail - 4 < n)
        {
          /* Make room for the rest of it at once.  */
          etf_buf_reserve (&s->in, n - (avail - 4));
          return true;
        }
      const uint8_t *body = session_input (s) + 4;
      dist_frame frame;
      const char *why;
      etf_atom refs[DIST_MAX_ATOM_REFS];
      if (!dist_parse_frame (body, n, s->atom_cache, refs,
                             s->limits.max_depth, &frame, &why))
        {
          failure->error = NODE_ERR_PROTOCOL;
          snprintf (failure->reason, sizeof failure->reason,
                    "malformed message: %s", why);
          return false;
        }
      if (!fn (arg, body, n, &frame, refs))
        {
          failure->error = NODE_ERR_PROTOCOL;
          snprintf (failure->reason, sizeof failure->reason,
                    "out of memory");
          return false;
        }
      s->messages_in++;
      s->bytes_in += n;
      in_consume (s, 4 + n);
    }
}

bool
session_ticks (session *s, int64_t now, int64_t *next)
{
  unsigned ticktime = s->limits.ticktime_ms;
  *next = -1;
  if (!s->up || ticktime == 0)
    return true;
  if (now - s->last_recv >= ticktime)
    return false;
  int64_t quarter = ticktime / 4;
  if (now - s->last_send >= quarter && s->out.len == s->out_sent)
    {
      queue_tick (s);
      s->last_send = now;
    }
  int64_t next_send = s->last_send + quarter - now;
  int64_t next_recv = s->last_recv + ticktime - now;
  *next = next_send < next_recv ? next_send : next_recv;
  if (*next < 1)
    *next = 1;
  return true;
}
