/* dist.c --- distribution messages: framing and control messages.  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#include "dist.h"

#include <stdlib.h>
#include <string.h>

bool
dist_op_shape (int op, unsigned *arity, bool *has_message)
{
  static const struct { int op; unsigned arity; bool message; } shapes[] = {
    { DOP_LINK, 3, false },
    { DOP_SEND, 3, true },
    { DOP_EXIT, 4, false },
    { DOP_UNLINK, 3, false },
    { DOP_NODE_LINK, 1, false },
    { DOP_REG_SEND, 4, true },
    { DOP_GROUP_LEADER, 3, false },
    { DOP_EXIT2, 4, false },
    { DOP_SEND_TT, 4, true },
    { DOP_EXIT_TT, 5, false },
    { DOP_REG_SEND_TT, 5, true },
    { DOP_EXIT2_TT, 5, false },
    { DOP_MONITOR_P, 4, false },
    { DOP_DEMONITOR_P, 4, false },
    { DOP_MONITOR_P_EXIT, 5, false },
    { DOP_SEND_SENDER, 3, true },
    { DOP_SEND_SENDER_TT, 4, true },
    { DOP_PAYLOAD_EXIT, 3, true },
    { DOP_PAYLOAD_EXIT_TT, 4, true },
    { DOP_PAYLOAD_EXIT2, 3, true },
    { DOP_PAYLOAD_EXIT2_TT, 4, true },
    { DOP_PAYLOAD_MONITOR_P_EXIT, 4, true },
    { DOP_SPAWN_REQUEST, 6, true },
    { DOP_SPAWN_REQUEST_TT, 7, true },
    { DOP_SPAWN_REPLY, 5, false },
    { DOP_SPAWN_REPLY_TT, 6, false },
    { DOP_ALIAS_SEND, 3, true },
    { DOP_ALIAS_SEND_TT, 4, true },
    { DOP_UNLINK_ID, 4, false },
    { DOP_UNLINK_ID_ACK, 4, false },
  };
  for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++)
    if (shapes[k].op == op)
      {
        *arity = shapes[k].arity;
        *has_message = shapes[k].message;
        return true;
      }
  return false;
}

void
dist_atom_cache_free (dist_atom_cache *cache)
{
  if (!cache)
    return;
  for (size_t k = 0; k < DIST_ATOM_CACHE_SIZE; k++)
    free (cache->name[k]);
  free (cache);
}

/* Whether the checked term at R's position nests deeper than
   MAX_DEPTH: a walk with a heap stack of the children still owed at
   each level, never the C stack.  Leaves R where it was.  */
static bool
too_deep (etf_reader r, size_t max_depth)
{
  size_t n = 0, cap = 64;
  uint64_t *owed = malloc (cap * sizeof *owed);
  if (!owed)
    return true;  /* cannot tell: refuse rather than risk Emacs */
  owed[n++] = 1;
  bool deep = false;
  while (n > 0 && !deep)
    {
      if (owed[n - 1] == 0)
        {
          n--;
          continue;
        }
      etf_item it;
      if (etf_read_item (&r, &it) != ETF_OK)
        break;  /* checked already: cannot happen */
      owed[n - 1]--;
      if (it.kind == ETF_FUN && etf_skip_fun_body (&r, &it) != ETF_OK)
        break;
      uint64_t children = etf_item_children (&it);
      if (children == 0)
        continue;
      if (n >= max_depth)
        deep = true;
      else if (n == cap)
        {
          uint64_t *more = realloc (owed, 2 * cap * sizeof *owed);
          if (!more)
            deep = true;
          else
            {
              owed = more;
              cap *= 2;
            }
        }
      if (!deep)
        owed[n++] = children;
    }
  free (owed);
  return deep;
}

/* Check one whole term at R's position, after its version byte when
   VERSIONED; no compression inside distribution messages; no nesting
   past MAX_DEPTH (0: any).  Adds what it costs Emacs to *COST.  */
static bool
skip_term (etf_reader *r, bool versioned, size_t max_depth, etf_cost *cost,
           const char **reason)
{
  if (versioned)
    {
      if (r->pos >= r->len || r->buf[r->pos] != ETF_VERSION)
        {
          *reason = "term without a version byte";
          return false;
        }
      r->pos++;
    }
  etf_reader start = *r;
  if (etf_measure_terms (r, 1, cost) != ETF_OK)
    {
      *reason = r->error;
      return false;
    }
  /* Each level takes two bytes at least: only long terms can be deep. */
  if (max_depth && (r->pos - start.pos) / 2 > max_depth
      && too_deep (start, max_depth))
    {
      *reason = "term nested too deep (erlext-max-depth)";
      return false;
    }
  return true;
}

/* The distribution header after 131, 68: update CACHE, fill REFS, and
   leave *POS after the header.  */
static bool
parse_header (const uint8_t *f, size_t len, size_t *pos,
              dist_atom_cache *cache, etf_atom *refs, size_t *count,
              const char **reason)
{
  size_t p = *pos;
  if (p >= len)
    {
      *reason = "truncated distribution header";
      return false;
    }
  size_t n = f[p++];
  *count = n;
  if (n == 0)
    {
      *pos = p;
      return true;
    }
  /* A half byte of flags per reference, and one more for the header.  */
  size_t flag_bytes = n / 2 + 1;
  if (len - p < flag_bytes)
    {
      *reason = "truncated distribution header flags";
      return false;
    }
  const uint8_t *flags = f + p;
  uint16_t used[DIST_MAX_ATOM_REFS];
  p += flag_bytes;
  bool long_atoms = ((flags[n / 2] >> (4 * (n % 2))) & 1) != 0;
  for (size_t i = 0; i < n; i++)
    {
      unsigned half = (flags[i / 2] >> (4 * (i % 2))) & 0xF;
      bool fresh = (half & 8) != 0;
      size_t index;
      if (p >= len)
        {
          *reason = "truncated atom cache reference";
          return false;
        }
      index = (half & 7) * 256 + f[p++];
      /* One reference per entry and header: a second one could replace
         the name an earlier reference points to.  */
      for (size_t k = 0; k < i; k++)
        if (used[k] == index)
          {
            *reason = "atom cache entry used twice in one header";
            return false;
          }
      used[i] = (uint16_t) index;
      if (fresh)
        {
          size_t width = long_atoms ? 2 : 1;
          if (len - p < width)
            {
              *reason = "truncated atom cache entry";
              return false;
            }
          size_t alen = long_atoms ? (size_t) ((f[p] << 8) | f[p + 1]) : f[p];
          p += width;
          if (len - p < alen)
            {
              *reason = "truncated atom cache entry";
              return false;
            }
          long chars = etf_utf8_chars (f + p, alen);
          if (chars < 0 || chars > ETF_MAX_ATOM_CHARS)
            {
              *reason = "bad atom in the atom cache";
              return false;
            }
          uint8_t *copy = malloc (alen ? alen : 1);
          if (!copy)
            {
              *reason = "out of memory";
              return false;
            }
          memcpy (copy, f + p, alen);
          free (cache->name[index]);
          cache->name[index] = copy;
          cache->len[index] = (uint16_t) alen;
          p += alen;
        }
      else if (!cache->name[index])
        {
          *reason = "reference to an empty atom cache entry";
          return false;
        }
      refs[i].name = cache->name[index];
      refs[i].len = cache->len[index];
      refs[i].latin1 = false;
    }
  *pos = p;
  return true;
}

bool
dist_parse_frame (const uint8_t *frame, size_t len, dist_atom_cache *cache,
                  etf_atom *refs, size_t max_depth, dist_frame *out,
                  const char **reason)
{
  memset (out, 0, sizeof *out);
  etf_reader r;
  etf_reader_init (&r, frame, len);
  if (len >= 2 && frame[0] == ETF_VERSION && frame[1] == DIST_HEADER && cache)
    {
      size_t pos = 2, count;
      if (!parse_header (frame, len, &pos, cache, refs, &count, reason))
        return false;
      r.pos = pos;
      r.atom_refs = refs;
      r.atom_ref_count = count;
      out->atom_ref_count = count;
      out->versioned = false;
    }
  else if (len >= 1 && frame[0] == DIST_PASS_THROUGH)
    {
      r.pos = 1;
      out->versioned = true;
    }
  else
    {
      *reason = len >= 2 && frame[0] == ETF_VERSION
                  ? "distribution header, which was not negotiated"
                  : "not a pass-through message";
      return false;
    }

  /* The control tuple: {Op, ...} with Op a small integer.  */
  out->control_offset = r.pos;
  etf_reader head = r;
  etf_item tuple, op;
  if (out->versioned)
    {
      if (head.pos >= len || frame[head.pos] != ETF_VERSION)
        {
          *reason = "control message without a version byte";
          return false;
        }
      head.pos++;
    }
  if (etf_read_item (&head, &tuple) != ETF_OK || tuple.kind != ETF_TUPLE
      || tuple.v.arity < 1 || etf_read_item (&head, &op) != ETF_OK
      || op.kind != ETF_INT)
    {
      *reason = "control message is not a tuple starting with an integer";
      return false;
    }
  unsigned arity;
  bool has_message;
  if (op.v.i < 0 || op.v.i > 255
      || !dist_op_shape ((int) op.v.i, &arity, &has_message))
    {
      *reason = "unknown control message";
      return false;
    }
  /* Later versions may add elements; only a short tuple is refused.  */
  if (tuple.v.arity < arity)
    {
      *reason = "control message too short for its operation";
      return false;
    }
  out->op = (int) op.v.i;
  if (!skip_term (&r, out->versioned, max_depth, &out->control_cost, reason))
    return false;
  out->control_len = r.pos - out->control_offset;
  if (has_message)
    {
      out->message_offset = r.pos;
      if (!skip_term (&r, out->versioned, max_depth, &out->message_cost,
                      reason))
        return false;
      out->message_len = r.pos - out->message_offset;
    }
  if (r.pos != len)
    {
      *reason = "trailing bytes after the message";
      return false;
    }
  return true;
}

void
dist_put_frame (etf_buf *out, bool header, const uint8_t *control,
                size_t control_len, const uint8_t *message,
                size_t message_len)
{
  /* Pass-through terms carry version bytes; header terms don't.  */
  size_t terms = control_len + (message ? message_len : 0);
  size_t extra = header ? 3 : 1 + 1 + (message ? 1 : 0);
  if (terms > UINT32_MAX - extra)
    {
      etf_buf_fail (out, ETF_ERROR, "message too large for a frame");
      return;
    }
  if (!etf_buf_reserve (out, 4 + extra + terms))
    return;
  etf_put_u32 (out, (uint32_t) (extra + terms));
  if (header)
    {
      etf_put_u8 (out, ETF_VERSION);
      etf_put_u8 (out, DIST_HEADER);
      etf_put_u8 (out, 0);
      etf_put_bytes (out, control, control_len);
      if (message)
        etf_put_bytes (out, message, message_len);
    }
  else
    {
      etf_put_u8 (out, DIST_PASS_THROUGH);
      etf_put_version (out);
      etf_put_bytes (out, control, control_len);
      if (message)
        {
          etf_put_version (out);
          etf_put_bytes (out, message, message_len);
        }
    }
}

size_t
dist_frame_begin (etf_buf *out, bool header)
{
  size_t start = out->len;
  etf_put_u32 (out, 0);  /* the length, once known */
  if (header)
    {
      etf_put_u8 (out, ETF_VERSION);
      etf_put_u8 (out, DIST_HEADER);
      etf_put_u8 (out, 0);
    }
  else
    {
      etf_put_u8 (out, DIST_PASS_THROUGH);
      etf_put_version (out);
    }
  return start;
}

void
dist_frame_message (etf_buf *out, bool header)
{
  if (!header)
    etf_put_version (out);
}

void
dist_frame_end (etf_buf *out, size_t start)
{
  if (out->status != ETF_OK)
    return;
  size_t n = out->len - start - 4;
  if (n > UINT32_MAX)
    {
      etf_buf_fail (out, ETF_ERROR, "message too large for a frame");
      return;
    }
  out->data[start] = (uint8_t) (n >> 24);
  out->data[start + 1] = (uint8_t) (n >> 16);
  out->data[start + 2] = (uint8_t) (n >> 8);
  out->data[start + 3] = (uint8_t) n;
}
