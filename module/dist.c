/* dist.c --- distribution messages: framing and control messages.  */

#include "dist.h"

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

/* Check one whole term with its version byte at R's position; no
   compression inside distribution messages.  */
static bool
skip_term (etf_reader *r, const char **reason)
{
  if (r->pos >= r->len || r->buf[r->pos] != ETF_VERSION)
    {
      *reason = "term without a version byte";
      return false;
    }
  r->pos++;
  if (etf_skip_terms (r, 1) != ETF_OK)
    {
      *reason = r->error;
      return false;
    }
  return true;
}

bool
dist_parse_frame (const uint8_t *frame, size_t len, dist_frame *out,
                  const char **reason)
{
  memset (out, 0, sizeof *out);
  if (len < 1 || frame[0] != DIST_PASS_THROUGH)
    {
      *reason = len >= 2 && frame[0] == ETF_VERSION
                  ? "distribution header, which was not negotiated"
                  : "not a pass-through message";
      return false;
    }
  etf_reader r;
  etf_reader_init (&r, frame, len);
  r.pos = 1;

  /* The control tuple: {Op, ...} with Op a small integer.  */
  out->control_offset = r.pos;
  etf_reader head = r;
  etf_item tuple, op;
  if (head.pos >= len || frame[head.pos] != ETF_VERSION)
    {
      *reason = "control message without a version byte";
      return false;
    }
  head.pos++;
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
  /* SPAWN_REQUEST and friends are fixed; the rest may grow a trailing
     element in later versions, so only a too-short tuple is refused.  */
  if (tuple.v.arity < arity)
    {
      *reason = "control message too short for its operation";
      return false;
    }
  out->op = (int) op.v.i;
  if (!skip_term (&r, reason))
    return false;
  out->control_len = r.pos - out->control_offset;
  if (has_message)
    {
      out->message_offset = r.pos;
      if (!skip_term (&r, reason))
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
dist_put_frame (etf_buf *out, const uint8_t *control, size_t control_len,
                const uint8_t *message, size_t message_len)
{
  size_t body = 1 + control_len + (message ? message_len : 0);
  if (body > UINT32_MAX)
    {
      etf_buf_fail (out, ETF_ERROR, "message too large for a frame");
      return;
    }
  etf_put_u32 (out, (uint32_t) body);
  etf_put_u8 (out, DIST_PASS_THROUGH);
  etf_put_bytes (out, control, control_len);
  if (message)
    etf_put_bytes (out, message, message_len);
}
