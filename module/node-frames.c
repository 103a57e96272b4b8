/* node-frames.c --- bytes in and out of a connection: writing what is
   queued, reading and checking whole frames, the queue of messages
   waiting for the connection, and its limit.  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#define _GNU_SOURCE
#include "node-internal.h"
#include "stamps.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Buffers past this size are given back once they empty out: one big
   message must not keep its memory for the connection's life.  */
#define KEEP_BUFFER ((size_t) 1 << 20)
/* What one read asks for at least.  */
#define READ_CHUNK 65536
#define READ_BUDGET_HANDSHAKE (2 * READ_CHUNK)
#define READ_BUDGET_UP (64 * READ_CHUNK)

/* When stamping: the time of the last recv () that got bytes.  I/O
   thread only.  */
static double last_recv_stamp;

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

/* Write what C has to write: EARLY bytes first, then frames once up.
   node_lock held.  Returns false when the socket failed.  */
bool
flush_locked (conn *c)
{
  if (c->fd < 0)
    return true;
  etf_buf *bufs[2] = { &c->early, &c->out };
  for (int k = 0; k < 2; k++)
    {
      etf_buf *b = bufs[k];
      if (k == 1 && c->state != C_UP)
        break;
      size_t *sent = k == 1 ? &c->out_sent : NULL;
      size_t done = sent ? *sent : 0;
      while (done < b->len)
        {
          ssize_t n = conn_send (c, b->data + done, b->len - done);
          if (n < 0)
            {
              if (errno == EINTR)
                continue;
              if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
              return false;
            }
          done += (size_t) n;
          c->last_send = node_now_ms ();
        }
      if (done == b->len)
        {
          if (sent && b->len && stamps_on ())
            {
              stamp (STAMP_SENT);
              stamp_by_set (false, node_is_running
                                     && pthread_equal (pthread_self (),
                                                       node_io_thread)
                                     ? STAMP_BY_IO : STAMP_BY_MAIN);
            }
          b->len = 0;
          done = 0;
          /* Don't keep a huge buffer around after a huge message.  */
          if (b->cap > KEEP_BUFFER)
            etf_buf_free (b);
        }
      else if (!sent)
        {
          /* Keep the unsent tail of EARLY at its start.  */
          memmove (b->data, b->data + done, b->len - done);
          b->len -= done;
          done = 0;
        }
      if (sent && done > KEEP_BUFFER && done > b->len / 2)
        done = drop_sent_frames (b, done);
      if (sent)
        *sent = done;
      if (b->len > 0)
        break;  /* order: nothing later until this is out */
    }
  return true;
}

bool
wants_write (const conn *c)
{
  if (c->state == C_EPMD_CONNECT || c->state == C_CONNECT)
    return true;
  return c->early.len > 0 || (c->state == C_UP && c->out.len > c->out_sent);
}

/* ---------------------------------------------------------------- */
/* Output queue */

/* Bytes waiting to go out on C.  */
static size_t
queued_out (const conn *c)
{
  return c->out.len - c->out_sent + c->pending.len;
}

/* Pending messages are kept as [control length][message length + 1, 0
   for none][control][message] until the connection is up and its frame
   form known.  */
#define PENDING_HEADER 16

static void
queue_pending (conn *c, const uint8_t *control, size_t control_len,
               const uint8_t *message, size_t message_len)
{
  etf_put_u64 (&c->pending, control_len);
  etf_put_u64 (&c->pending, message ? message_len + 1 : 0);
  etf_put_bytes (&c->pending, control, control_len);
  if (message)
    etf_put_bytes (&c->pending, message, message_len);
}

/* Walk the pending records: calls FN for each.  */
static void
each_pending (const conn *c,
              void (*fn) (void *arg, const uint8_t *control,
                          size_t control_len, const uint8_t *message,
                          size_t message_len),
              void *arg)
{
  if (!c->pending.data)
    return;
  const uint8_t *p = c->pending.data;
  const uint8_t *end = p + c->pending.len;
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
  conn *c = arg;
  dist_put_frame (&c->out, c->use_header, control, control_len, message,
                  message_len);
}

/* Frame what was queued before the connection came up.  node_lock
   held.  */
void
frame_pending_locked (conn *c)
{
  each_pending (c, frame_one, c);
  etf_buf_free (&c->pending);
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
unsent_messages (const conn *c, size_t *count, size_t *bytes)
{
  tally t = { 0, 0 };
  each_pending (c, count_one, &t);
  /* OUT holds whole frames from its start; those ending past OUT_SENT
     were not (completely) sent.  Ticks are empty frames: not counted. */
  size_t pos = 0;
  while (c->out.len - pos >= 4)
    {
      size_t n = etf_get_u32 (c->out.data + pos);
      size_t end = pos + 4 + n;
      if (n > 0 && end > c->out_sent)
        {
          t.count++;
          t.bytes += n;
        }
      pos = end;
    }
  *count = t.count;
  *bytes = t.bytes;
}

/* Would ADDING bytes take C's output queue past its limit?  */
static bool
over_limit (const conn *c, size_t adding)
{
  size_t queued = queued_out (c);
  return c->max_send_queue && queued > 0
         && (adding > c->max_send_queue
             || queued > c->max_send_queue - adding);
}

/* Write at once when we can: no thread switch on the way out.  IDLE
   says nothing waited to go out before.  */
static void
send_now_locked (conn *c, bool idle)
{
  if (idle && (!flush_locked (c) || c->out.len > c->out_sent))
    node_wake_io_thread ();
}

node_send_result
queue_frame_locked (conn *c, etf_buf *frame, size_t terms_len)
{
  if (over_limit (c, frame->len))
    return NODE_SEND_BUSY;
  c->messages_out++;
  c->bytes_out += terms_len;
  bool idle = c->out.len == c->out_sent;
  if (idle)
    {
      /* Take FRAME's memory; give it the old, empty buffer.  */
      etf_buf old = c->out;
      c->out = *frame;
      c->out_sent = 0;
      old.len = 0;
      *frame = old;
    }
  else
    etf_put_bytes (&c->out, frame->data, frame->len);
  if (c->out.status != ETF_OK)
    return NODE_SEND_NO_CONNECTION;
  send_now_locked (c, idle);
  return NODE_SEND_OK;
}

node_send_result
queue_message_locked (conn *c, const uint8_t *control, size_t control_len,
                      const uint8_t *message, size_t message_len)
{
  size_t adding = control_len + message_len;
  if (over_limit (c, adding))
    return NODE_SEND_BUSY;
  c->messages_out++;
  c->bytes_out += adding;
  if (c->state != C_UP)
    {
      queue_pending (c, control, control_len, message, message_len);
      return c->pending.status == ETF_OK ? NODE_SEND_OK
                                         : NODE_SEND_NO_CONNECTION;
    }
  bool idle = c->out.len == c->out_sent;
  dist_put_frame (&c->out, c->use_header, control, control_len, message,
                  message_len);
  if (c->out.status != ETF_OK)
    return NODE_SEND_NO_CONNECTION;
  send_now_locked (c, idle);
  return NODE_SEND_OK;
}

/* ---------------------------------------------------------------- */
/* Input */

const uint8_t *
in_data (conn *c)
{
  return c->in.data + c->in_start;
}

size_t
in_len (conn *c)
{
  return c->in.len - c->in_start;
}

void
in_consume (conn *c, size_t n)
{
  c->in_start += n;
  if (c->in_start == c->in.len)
    {
      c->in_start = c->in.len = 0;
      if (c->in.cap > KEEP_BUFFER)
        etf_buf_free (&c->in);
    }
}

/* Give back the memory of a big frame once it is done with, unless
   another big one is under way.  IN holds its unread bytes from the
   start.  */
static void
shrink_input (conn *c)
{
  if (c->in.cap <= KEEP_BUFFER)
    return;
  size_t have = c->in.len;
  size_t frame = have >= 4 && c->state == C_UP
                   ? 4 + (size_t) etf_get_u32 (c->in.data)
                   : have;
  if (frame > KEEP_BUFFER / 2)
    return;
  uint8_t *smaller = realloc (c->in.data, have + READ_CHUNK);
  if (smaller)
    {
      c->in.data = smaller;
      c->in.cap = have + READ_CHUNK;
    }
}

/* A FRAME event holding a copy of BODY (N bytes) and of the atoms REFS
   name (the cache they point into changes with the next frame), all in
   the event's one allocation.  */
static node_event *
frame_event (long id, const uint8_t *body, size_t n, const dist_frame *frame,
             const etf_atom *refs)
{
  size_t count = frame->atom_ref_count, names = 0;
  for (size_t k = 0; k < count; k++)
    names += refs[k].len;
  node_event *ev = event_new (NODE_EV_FRAME, id,
                              count * sizeof *refs + names + n);
  if (!ev)
    return NULL;
  etf_atom *atoms = (etf_atom *) ev->bytes;
  uint8_t *p = ev->bytes + count * sizeof *refs;
  for (size_t k = 0; k < count; k++)
    {
      memcpy (p, refs[k].name, refs[k].len);
      atoms[k] = refs[k];
      atoms[k].name = p;
      p += refs[k].len;
    }
  memcpy (p, body, n);
  ev->atom_refs = count ? atoms : NULL;
  ev->data = p;
  ev->len = n;
  ev->frame = *frame;
  return ev;
}

/* Handle whole frames of an up connection.  node_lock held.  */
void
process_frames_locked (conn *c)
{
  for (;;)
    {
      size_t avail = in_len (c);
      if (avail < 4)
        return;
      uint32_t n = etf_get_u32 (in_data (c));
      if (n == 0)
        {
          /* A tick: answer it; receiving it already counted.  */
          in_consume (c, 4);
          if (c->out.len == c->out_sent)
            {
              static const uint8_t tick[4];
              etf_put_bytes (&c->out, tick, 4);
            }
          continue;
        }
      if (n > c->max_message)
        {
          char reason[160];
          snprintf (reason, sizeof reason,
                    "message of %u bytes exceeds derl-max-message-size",
                    (unsigned) n);
          kill_conn_locked (c, NODE_ERR_TOO_LARGE, reason);
          return;
        }
      if (avail - 4 < n)
        {
          /* Make room for the rest of it at once.  */
          etf_buf_reserve (&c->in, n - (avail - 4));
          return;
        }
      const uint8_t *body = in_data (c) + 4;
      dist_frame frame;
      const char *why;
      etf_atom refs[DIST_MAX_ATOM_REFS];
      if (!dist_parse_frame (body, n, c->atom_cache, refs, c->max_depth,
                             &frame, &why))
        {
          char reason[200];
          snprintf (reason, sizeof reason, "malformed message: %s", why);
          kill_conn_locked (c, NODE_ERR_PROTOCOL, reason);
          return;
        }
      node_event *ev = frame_event (c->id, body, n, &frame, refs);
      if (!ev)
        {
          kill_conn_locked (c, NODE_ERR_PROTOCOL, "out of memory");
          return;
        }
      if (stamps_on ())
        stamp_at (STAMP_RECV, last_recv_stamp);
      emit_locked (ev);
      c->messages_in++;
      c->bytes_in += n;
      in_consume (c, 4 + n);
    }
}

/* Read everything the socket has into IN.  False when out of memory;
   *EOF when the peer closed or the socket failed.  */
static bool
receive_bytes (conn *c, bool *eof)
{
  *eof = false;
  if (c->in_start > 0)
    {
      /* Keep unread bytes at the start: big frames need one block.  */
      memmove (c->in.data, c->in.data + c->in_start, in_len (c));
      c->in.len -= c->in_start;
      c->in_start = 0;
    }
  shrink_input (c);
  /* A peer that sends without pause must not make one call read
     without end: before the handshake is done (nothing is trusted yet,
     and no message is longer than 64 KiB) very little, after it a few
     MiB; poll calls again for the rest.  */
  size_t budget = c->state == C_UP ? READ_BUDGET_UP : READ_BUDGET_HANDSHAKE;
  size_t got = 0;
  while (got < budget)
    {
      if (!etf_buf_reserve (&c->in, READ_CHUNK))
        return false;
      size_t room = c->in.cap - c->in.len;
      if (room > budget - got)
        room = budget - got;
      ssize_t n = conn_recv (c, c->in.data + c->in.len, room);
      if (n > 0)
        {
          c->in.len += (size_t) n;
          got += (size_t) n;
          c->last_recv = node_now_ms ();
          if (stamps_on ())
            last_recv_stamp = stamp_clock ();
          if ((size_t) n < room)
            return true;
          continue;
        }
      if (n < 0 && errno == EINTR)
        continue;
      *eof = n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
      return true;
    }
  /* The budget is spent; what TLS already holds must come too.  */
  return transport_drain_held_locked (c);
}

/* Read what the socket has, then act on it.  node_lock held; C may be
   freed on return.  */
void
read_input_locked (conn *c)
{
  long id = c->id;
  bool eof;
  if (!receive_bytes (c, &eof))
    {
      kill_conn_locked (c, NODE_ERR_PROTOCOL, "out of memory");
      return;
    }
  switch (c->state)
    {
    case C_EPMD_WAIT:
      epmd_input_locked (c, eof);
      if ((c = find_conn (id)) && c->state == C_DEAD)
        kill_conn_locked (c, NODE_ERR_NONE, "done");
      return;
    case C_HANDSHAKE:
      if (in_len (c) > 2 * READ_BUDGET_HANDSHAKE)
        {
          /* No handshake message is this long: a peer flooding before
             it is known is dropped, not buffered.  */
          kill_conn_locked (c, NODE_ERR_PROTOCOL,
                            "too much data during the handshake");
          return;
        }
      handshake_input_locked (c);
      if (!(c = find_conn (id)))
        return;
      if (eof && c->state == C_HANDSHAKE)
        {
          if (transport_failed_locked (c))
            return;
          hs_peer_closed (&c->hs);
          kill_conn_locked (c, c->hs.kind == HS_ERR_AUTH ? NODE_ERR_AUTH
                                                          : NODE_ERR_PROTOCOL,
                            c->hs.error);
          return;
        }
      break;
    case C_UP:
      process_frames_locked (c);
      if (!(c = find_conn (id)))
        return;
      break;
    default:
      break;
    }
  if (eof)
    kill_conn_locked (c, NODE_ERR_CLOSED,
                      transport_failure (c, "connection closed by the peer"));
}
