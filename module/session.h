/* session.h --- one distribution connection's protocol, as a state
   machine fed bytes: the EPMD exchange, the handshake (both roles),
   then framing, ticks and the queue of messages waiting to go out.

   It knows nothing of sockets, threads, locks or the other
   connections: the caller reads bytes into it (session_input_space,
   session_received), writes out what it gives (session_output,
   session_wrote), and is told what came in by return values and by
   the callbacks it passes.  Whoever shares a session between threads
   locks around every call.  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#ifndef DERL_SESSION_H
#define DERL_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dist.h"
#include "epmd.h"
#include "etf.h"
#include "handshake.h"

/* Why a connection ended, or a query failed.  */
typedef enum
{
  NODE_ERR_NONE,
  NODE_ERR_HOST,            /* the host name does not resolve */
  NODE_ERR_EPMD,            /* no EPMD answers there */
  NODE_ERR_NOT_REGISTERED,  /* EPMD does not know the name */
  NODE_ERR_CONNECT,         /* the node's port refused or failed */
  NODE_ERR_AUTH,            /* cookie mismatch */
  NODE_ERR_PROTOCOL,        /* malformed or unexpected data */
  NODE_ERR_REFUSED,         /* the node refused the connection */
  NODE_ERR_TIMEOUT,         /* connect or handshake took too long */
  NODE_ERR_CLOSED,          /* the peer closed the connection */
  NODE_ERR_TICK,            /* nothing received for the tick time */
  NODE_ERR_TOO_LARGE,       /* a frame over the size limit */
  NODE_ERR_LOCAL,           /* we closed it */
  NODE_ERR_NAME_IN_USE,     /* the node is connected to another node
                               with our name */
  NODE_ERR_TLS,             /* TLS failed, or only one side uses it */
} node_error;

typedef enum
{
  NODE_SEND_OK,
  NODE_SEND_NO_CONNECTION,  /* no such connection (it went down) */
  NODE_SEND_BUSY,           /* its output queue is full: nothing queued */
} node_send_result;

/* The limits of a connection: what connecting and listening take, and
   what each connection keeps.  */
typedef struct
{
  unsigned ticktime_ms;     /* net tick time; 0 for none */
  unsigned timeout_ms;      /* to come up (connect or handshake); 0 for
                               the default, 10 s */
  size_t max_message;       /* bytes of a received frame, at most */
  size_t max_depth;         /* nesting of a received term, at most */
  size_t max_send_queue;    /* bytes waiting to go out, at most; 0 for
                               no limit */
} session_limits;

typedef struct
{
  session_limits limits;
  /* Who we are.  */
  char *our_name;           /* alive@host */
  uint8_t *cookie;          /* wiped once up */
  size_t cookie_len;
  uint32_t creation;
  uint64_t flags;
  int peer_version;         /* the highest EPMD gave; 0: unknown */
  hs_state hs;
  bool hs_started;
  bool long_lengths;        /* handshake messages after 4-byte lengths
                               (inside TLS), not 2-byte ones */
  bool up;
  bool use_header;          /* frames after a distribution header */
  dist_atom_cache *atom_cache;  /* the node's cached atoms, once up */
  etf_buf in;               /* received, from IN_START on not yet used */
  size_t in_start;
  etf_buf early;            /* handshake or EPMD bytes to write */
  etf_buf out;              /* frames; written only once up */
  size_t out_sent;
  etf_buf pending;          /* messages queued before up, unframed */
  int64_t last_recv, last_send;  /* ms */
  uint64_t messages_in, bytes_in, messages_out, bytes_out;  /* frames */
} session;

void session_init (session *s, const session_limits *limits);
/* Free what S holds (S itself is the caller's), wiping the cookie.  */
void session_free (session *s);
/* Our identity, copied; false when out of memory.  */
bool session_set_identity (session *s, const char *our_name,
                           const uint8_t *cookie, size_t cookie_len,
                           uint32_t creation, uint64_t flags);
/* Forget the bytes in and out and the handshake: S starts again on a
   new socket.  What is queued for the node stays.  */
void session_restart (session *s);

/* ---- Input */

/* Room for at least WANT more bytes of input, at *ROOM bytes from the
   returned pointer; NULL when out of memory.  Unread bytes are first
   moved to the start, and a big buffer given back when the frame that
   needed it is through.  */
uint8_t *session_input_space (session *s, size_t want, size_t *room);
/* N bytes were put there, at NOW (ms).  */
void session_received (session *s, size_t n, int64_t now);
/* Bytes received and not yet used, and where they start.  */
size_t session_input_len (const session *s);
const uint8_t *session_input (const session *s);
void session_discard_input (session *s);

/* ---- Output */

/* The bytes to write next: handshake or EPMD bytes first, then frames
   once up.  False when there are none.  */
bool session_output (const session *s, const uint8_t **data, size_t *len);
/* N of them were written, at NOW.  True when that emptied the queue of
   frames.  */
bool session_wrote (session *s, size_t n, int64_t now);
bool session_wants_write (const session *s);
/* Queue a message (CONTROL, and MESSAGE unless NULL, without version
   bytes): framed at once when up, else kept until it is.  *IDLE: the
   frame queue was empty before.  */
node_send_result session_queue_message (session *s, const uint8_t *control,
                                        size_t control_len,
                                        const uint8_t *message,
                                        size_t message_len, bool *idle);
/* Queue FRAME, a whole frame (up only); its memory taken over when the
   frame queue is empty.  TERMS_LEN: the bytes of its terms.  */
node_send_result session_queue_frame (session *s, etf_buf *frame,
                                      size_t terms_len, bool *idle);
/* Frame what was queued before up, in S's frame form, into S's frame
   queue.  */
void session_frame_pending (session *s);
/* Messages queued on S not (fully) sent, and their bytes.  */
void session_unsent (const session *s, size_t *count, size_t *bytes);
/* Swap the messages A and B keep until they are up.  */
void session_swap_pending (session *a, session *b);
/* Move what waits to go out on FROM to INTO: framed in INTO's form
   when INTO is up, else as messages waiting for it.  */
void session_move_queue (session *from, session *into);

/* ---- EPMD */

/* Put a request in the output; false when ALIVE is too long.  */
bool session_epmd_port_please (session *s, const char *alive);
bool session_epmd_names (session *s);
bool session_epmd_alive2 (session *s, uint16_t port, const char *alive);
/* The answer to PORT_PLEASE2, or to ALIVE2 (*CREATION), as far as it
   has come; the bytes it took are used up.  */
epmd_result session_epmd_port_answer (session *s, epmd_node_info *info,
                                      const char **why);
epmd_result session_epmd_alive_answer (session *s, uint32_t *creation,
                                       const char **why);
/* The entries of a NAMES answer, whole once EPMD has closed: as
   epmd_names_next, *POS from 0.  */
epmd_result session_epmd_names_next (const session *s, size_t *pos,
                                     epmd_name_entry *entry,
                                     const char **why);

/* ---- The handshake */

/* Start as the initiator, dialling DIALLED (alive@host); REPLACE_OLD:
   an old connection the node may still hold from our name was ours.
   False when that fails: why in S->hs.error.  */
bool session_start_initiator (session *s, const char *dialled,
                              bool replace_old);
bool session_start_acceptor (session *s);

/* The acceptor knows the peer's name (S->hs.peer_name): the answer to
   give it.  */
typedef hs_accept_decision (*session_decide_fn) (void *arg);

/* Feed the handshake what has come in, asking DECIDE (with ARG) when
   the acceptor must answer; queue its answers.  *STATUS: where it is.
   False when a plain connection's peer spoke TLS.  */
bool session_feed_handshake (session *s, session_decide_fn decide,
                             void *arg, hs_status *status);

/* The peer closed during the handshake: say so in S->hs.  */
void session_peer_closed (session *s);

/* The handshake is done: frames from now on, at NOW.  False when out
   of memory.  */
bool session_up (session *s, int64_t now);

/* ---- Frames */

/* A whole frame checked: BODY (N bytes) as FRAME says, the atoms of
   its header in REFS (valid for this call only).  False when out of
   memory.  */
typedef bool (*session_frame_fn) (void *arg, const uint8_t *body, size_t n,
                                  const dist_frame *frame,
                                  const etf_atom *refs);

typedef struct
{
  node_error error;
  char reason[200];
} session_failure;

/* Handle the whole frames received: answer ticks, check each frame
   and hand it to FN.  False when the connection must end, why in
   *FAILURE.  */
bool session_frames (session *s, session_frame_fn fn, void *arg,
                     session_failure *failure);

/* Ticks at NOW: false when nothing came for the tick time; else a tick
   is queued when due, and *NEXT is the ms until the next look (-1:
   none).  */
bool session_ticks (session *s, int64_t now, int64_t *next);

#endif /* DERL_SESSION_H */
