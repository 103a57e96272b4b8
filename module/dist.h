/* dist.h --- distribution messages after the handshake: framing and
   control messages, checked completely before anything trusts them.

   Pure C, no sockets: node.c feeds it frames, the fuzz target feeds it
   anything.  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#ifndef DERL_DIST_H
#define DERL_DIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "etf.h"

/* Control message operations.  */
enum
{
  DOP_LINK = 1,
  DOP_SEND = 2,
  DOP_EXIT = 3,
  DOP_UNLINK = 4,
  DOP_NODE_LINK = 5,
  DOP_REG_SEND = 6,
  DOP_GROUP_LEADER = 7,
  DOP_EXIT2 = 8,
  DOP_SEND_TT = 12,
  DOP_EXIT_TT = 13,
  DOP_REG_SEND_TT = 16,
  DOP_EXIT2_TT = 18,
  DOP_MONITOR_P = 19,
  DOP_DEMONITOR_P = 20,
  DOP_MONITOR_P_EXIT = 21,
  DOP_SEND_SENDER = 22,
  DOP_SEND_SENDER_TT = 23,
  DOP_PAYLOAD_EXIT = 24,
  DOP_PAYLOAD_EXIT_TT = 25,
  DOP_PAYLOAD_EXIT2 = 26,
  DOP_PAYLOAD_EXIT2_TT = 27,
  DOP_PAYLOAD_MONITOR_P_EXIT = 28,
  DOP_SPAWN_REQUEST = 29,
  DOP_SPAWN_REQUEST_TT = 30,
  DOP_SPAWN_REPLY = 31,
  DOP_SPAWN_REPLY_TT = 32,
  DOP_ALIAS_SEND = 33,
  DOP_ALIAS_SEND_TT = 34,
  DOP_UNLINK_ID = 35,
  DOP_UNLINK_ID_ACK = 36,
};

#define DIST_PASS_THROUGH 112
#define DIST_HEADER 68
#define DIST_ATOM_CACHE_SIZE 2048
#define DIST_MAX_ATOM_REFS 255

/* The atoms a node has cached on one connection (DIST_HDR_ATOM_CACHE):
   names are UTF-8, owned here, replaced as the node sends new ones.  */
typedef struct
{
  uint8_t *name[DIST_ATOM_CACHE_SIZE];
  uint16_t len[DIST_ATOM_CACHE_SIZE];
} dist_atom_cache;

void dist_atom_cache_free (dist_atom_cache *cache);

/* A checked frame: where its terms are.  In a pass-through frame the
   offsets point at the terms' version bytes (VERSIONED); after a
   distribution header the terms have none and may name atoms through
   the header's references.  */
typedef struct
{
  int op;
  bool versioned;
  size_t control_offset, control_len;
  size_t message_offset, message_len;  /* len 0: no message */
  size_t atom_ref_count;               /* entries filled in REFS */
  /* What the terms will cost Emacs (see etf_cost), from the same walk
     that checks them.  */
  etf_cost control_cost, message_cost;
} dist_frame;

/* Tuple arity and whether a message term follows, for OP; false when OP
   is unknown.  */
bool dist_op_shape (int op, unsigned *arity, bool *has_message);

/* Check FRAME (LEN bytes, the 4-byte length already removed; not a tick):
   either a pass-through message (112, the control tuple, the message
   when its operation has one) or, when CACHE is not NULL, the same after
   a distribution header, which updates CACHE and fills REFS (room for
   DIST_MAX_ATOM_REFS) with the atoms the terms refer to; REFS point into
   CACHE, valid until the next frame.  Terms nested deeper than
   MAX_DEPTH (0: no limit) are refused.  On failure *REASON says why.
   OUT also says what the terms will cost Emacs.  */
bool dist_parse_frame (const uint8_t *frame, size_t len,
                       dist_atom_cache *cache, etf_atom *refs,
                       size_t max_depth, dist_frame *out,
                       const char **reason);

/* Append a frame with its 4-byte length to OUT: after a distribution
   header with no atom references when HEADER (the connection agreed on
   DIST_HDR_ATOM_CACHE), else pass-through.  CONTROL and MESSAGE are
   encoded terms without version bytes; MESSAGE NULL for none.  */
void dist_put_frame (etf_buf *out, bool header, const uint8_t *control,
                     size_t control_len, const uint8_t *message,
                     size_t message_len);

/* The same frame built in place, for terms encoded straight into OUT
   (no copy of a big message): dist_frame_begin before the control
   term (returns where the frame starts), dist_frame_message between
   it and the message, dist_frame_end after the last term.  */
size_t dist_frame_begin (etf_buf *out, bool header);
void dist_frame_message (etf_buf *out, bool header);
void dist_frame_end (etf_buf *out, size_t start);

#endif /* DERL_DIST_H */
