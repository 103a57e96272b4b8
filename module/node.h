/* node.h --- connections to Erlang nodes, owned by one I/O thread.

   The I/O thread runs a poll loop over every socket: name resolution (in
   short-lived helper threads, so no look-up blocks other connections),
   EPMD, non-blocking connects, handshakes, framing, ticks.  It checks
   every frame completely before queueing it as an event, and writes one
   byte to the event fd when the queue goes from empty to non-empty.  The
   main thread takes them in bounded batches.  No Emacs here.

   Files, each calling only those before it: node_state.c (the lock,
   the clock, waking the I/O thread), node_events.c (the event queue to
   Lisp), node_table.c (the connection table, and a connection's death),
   node_io.c (a connection's bytes in and out, over its transport and
   session), node_resolve.c (name look-ups), node_listen.c (the
   listener, our EPMD registration, the acceptor's side), node_dial.c
   (the connections Emacs makes, and EPMD queries), node_wait.c (the
   main thread waiting for events), node.c (the I/O thread's poll loop
   and this API); node_internal.h is what they share.

   Locking: one mutex, `node_lock' (node_internal.h), guards everything
   the threads share: the connection list and every field of every
   connection, the table of connections lately gone (node_table.c), the
   event queue, its byte count and the owed wake-up, the event fd, the
   `running' and `stopping' flags, the next connection id and the
   wake-up pipe's fds, and so each connection's TLS session, which the
   main thread also writes through.  Every function named *_locked
   expects it held.
   The I/O thread drops it only around poll () (and a pause when out of
   memory); resolver threads take it to hand back their result; the
   main thread takes it in each function below.  No lock is ever held
   while calling into Emacs, and events handed to the main thread are
   its own: it reads them without the lock.  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#ifndef DERL_NODE_H
#define DERL_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dist.h"
#include "session.h"

typedef enum
{
  NODE_EV_UP,          /* connection ID is up: PEER_NAME, creation, flags */
  NODE_EV_DOWN,        /* connection ID is gone (or never came up): ERROR */
  NODE_EV_FRAME,       /* connection ID received DATA, checked as FRAME */
  NODE_EV_EPMD_PORT,   /* query ID: PORT and VERSION of a node */
  NODE_EV_EPMD_NAMES,  /* query ID: the NAME_COUNT nodes EPMD knows, in
                          NAMES */
  NODE_EV_EPMD_ERROR,  /* query ID failed: ERROR */
  NODE_EV_LISTENING,   /* listener ID is registered with EPMD: PORT, and
                          the creation EPMD gave in PEER_CREATION */
  NODE_EV_ACCEPTED,    /* connection ID came in and is up: as UP */
  NODE_EV_REFUSED,     /* listener ID refused connections from one
                          address (a report, at most one a second for
                          an address): ERROR and REASON of the last one,
                          and the rest in a node_refusal at the start of
                          BYTES */
  NODE_EV_MERGED,      /* our attempt ID met the connection INTO that the
                          node made to us at the same time: it goes on
                          as INTO, what was queued on it too */
} node_event_kind;

/* A node EPMD knows: its name (LEN bytes) and port.  */
typedef struct
{
  const char *name;
  size_t len;
  uint16_t port;
} node_epmd_name;

/* One event, in one allocation: the pointers below point into BYTES.
   Most events are frames, so nothing here is sized for the rarer
   kinds.  */
typedef struct node_event
{
  struct node_event *next;
  node_event_kind kind;
  node_error error;           /* DOWN, EPMD_ERROR */
  long id;
  const char *reason;         /* DOWN, EPMD_ERROR: why, NUL-terminated */
  const char *peer_name;      /* UP, ACCEPTED, REFUSED: NUL-terminated */
  uint64_t peer_flags;        /* UP, ACCEPTED */
  uint32_t peer_creation;     /* UP, ACCEPTED, LISTENING */
  uint16_t port, version;     /* EPMD_PORT; LISTENING: PORT */
  long into;                  /* MERGED */
  const uint8_t *data;        /* FRAME: the frame body */
  size_t len;
  dist_frame frame;           /* FRAME */
  const node_epmd_name *names;  /* EPMD_NAMES, NAME_COUNT of them */
  size_t name_count;
  const etf_atom *atom_refs;  /* FRAME after a distribution header: its
                                 atoms, names in BYTES too */
  size_t cost;                /* memory it holds, counted in the queue */
  uint8_t bytes[];
} node_event;

/* A REFUSED event: what one address did since its last report.  No
   name a peer claims before the handshake is done becomes more than
   this sample.  */
typedef struct
{
  const char *address;      /* numeric, NUL-terminated; "other
                               addresses" for those the table of
                               addresses had no room for */
  const char *name;         /* the name the last refused one claimed,
                               printable ASCII, cut short; NULL: none */
  uint32_t refused;         /* handshakes refused */
  uint32_t closed;          /* connections closed at once, unheard, while
                               the address was held back */
  uint32_t hold_ms;         /* how much longer it is held back; 0: not */
} node_refusal;

typedef struct
{
  const char *alive;        /* the peer's name before the @ */
  const char *host;         /* ... and after it */
  int epmd_port;
  const uint8_t *cookie;
  size_t cookie_len;
  const char *our_name;     /* alive@host */
  uint32_t creation;
  bool published;           /* Emacs is a published node (HS_FLAGS) */
  session_limits limits;    /* its timeout: to connect */
  struct tls_context *tls;  /* TLS distribution: a client context (the
                               connection takes it over); NULL: plain */
} node_connect_args;

typedef struct
{
  const char *address;      /* numeric IPv4 or IPv6 address to listen at */
  int port;                 /* 0 for any */
  const char *alive;        /* our name before the @, for EPMD */
  int epmd_port;
  const uint8_t *cookie;
  size_t cookie_len;
  const char *our_name;     /* alive@host */
  bool published;           /* as a published node (HS_FLAGS) */
  session_limits limits;    /* each connection's; its timeout: for the
                               handshake */
  unsigned max_pending;     /* handshakes under way at once, at most */
  /* An address whose handshakes fail MAX_FAILURES times within
     FAILURE_WINDOW_MS is held back: its connections are closed at once
     for HOLD_BACK_MS, twice as long each time it fails so again, up to
     MAX_HOLD_BACK_MS.  MAX_FAILURES 0: never.  */
  unsigned max_failures;
  unsigned failure_window_ms;
  unsigned hold_back_ms;
  unsigned max_hold_back_ms;
  struct tls_context *tls;  /* TLS distribution: a server context (the
                               listener takes it over); NULL: plain */
} node_listen_args;

/* Listen, and register with EPMD (the registration lasts as long as the
   listener).  Connections are taken once EPMD has answered: a LISTENING
   event, or an EPMD_ERROR for the listener's id when EPMD refused (the
   name is taken: NODE_ERR_NAME_IN_USE).  Incoming connections give an
   ACCEPTED event when up; those dropped before are counted by address
   and reported in REFUSED events (a DOWN instead for one that an
   attempt of ours waited for, under that attempt's id).  Returns
   the listener's id, closed with node_close, the port bound in *PORT
   and the id of the registration, whose EPMD_ERROR events say what
   became of it, in *ALIVE_ID; or -1 and why in ERROR (ERROR_LEN
   bytes).  */
long node_listen (const node_listen_args *args, int *port, long *alive_id,
                  char *error, size_t error_len);

/* Start the I/O thread, events going to EVENT_FD (which node now owns).
   A second call while running just switches to the new fd.  */
bool node_start (int event_fd, const char **error);

/* Stop the thread and close every socket; pending events are freed.  */
void node_stop (void);

bool node_running (void);

/* Begin connecting; returns the connection id (> 0), or -1.  */
long node_connect (const node_connect_args *args);

/* Queue a message on connection ID, in order: CONTROL and MESSAGE
   (NULL for none) encoded without version bytes.  Framed in the form
   the connection agreed on and sent as soon as it is up.  Refused,
   with nothing queued, when it would take the connection's output
   queue past its limit (a message into an empty queue always goes).  */
node_send_result node_send (long id, const uint8_t *control, size_t control_len,
                const uint8_t *message, size_t message_len);

/* How connection ID frames messages: 1 after a distribution header,
   0 pass-through, -1 not known (not up, or no such connection).  */
int node_frame_form (long id);

/* A frame built in place, in FORM (as node_frame_form gave it), for
   terms encoded straight into OUT (no copy of a big message):
   node_frame_begin before the control term (returns where the frame
   starts), node_frame_message between it and the message,
   node_frame_end after the last term.  */
size_t node_frame_begin (etf_buf *out, int form);
void node_frame_message (etf_buf *out, int form);
void node_frame_end (etf_buf *out, size_t start);

/* Queue FRAME, one whole frame built with node_frame_begin and
   friends in the form node_frame_form gave, on connection ID.  Its
   memory is taken over when nothing else waits to go out (FRAME is
   then left empty), so a big message is not copied again.  Refused as
   node_send refuses.  TERMS_LEN: the bytes of its terms, as counted
   for node_send.  */
node_send_result node_send_frame (long id, etf_buf *frame, size_t terms_len);

/* Close connection ID; a DOWN event with NODE_ERR_LOCAL follows.  */
void node_close (long id);

/* EPMD queries: the PORT_PLEASE2 of ALIVE, or NAMES.  Returns the query
   id, answered by an EPMD event.  */
long node_epmd_port_please (const char *host, int epmd_port,
                            const char *alive, unsigned timeout_ms);
long node_epmd_names (const char *host, int epmd_port, unsigned timeout_ms);

/* Take pending events, oldest first: a batch of at most
   NODE_BATCH_EVENTS events and NODE_BATCH_BYTES bytes (but at least one
   event), so that turning them into Lisp values stays short.  When
   events remain, Lisp is woken again.  */
#define NODE_BATCH_EVENTS 512
#define NODE_BATCH_BYTES ((size_t) 1 << 20)
node_event *node_take_events (void);

/* Wait up to TIMEOUT_US microseconds for an event, on the main thread,
   without the event pipe: events queued meanwhile write no wake-up
   byte, and the main thread reads plain TCP connections itself.  The
   first wait after a send polls without sleeping for SPIN_US first.
   True when events are pending.  Once done waiting (however that
   ends), call node_wait_done: it wakes Lisp through the pipe for
   events left behind, and gives the connections back to the I/O
   thread.  */
bool node_wait_events (unsigned timeout_us, unsigned spin_us);
void node_wait_done (void);
void node_free_events (node_event *events);

/* Put EVENTS, the tail of a batch node_take_events gave, back at the
   head of the queue, in order, as if they had never been taken: the
   main thread stopped turning them into Lisp values (the user quit).
   Lisp is woken for them.  */
void node_requeue_events (node_event *events);

/* What a connection has done so far, for the node list.  */
typedef struct
{
  const char *state;  /* resolving, epmd, connecting, handshaking, up */
  uint64_t messages_in, bytes_in, messages_out, bytes_out;
  bool incoming;      /* it came in through a listener */
  bool tls;           /* it runs over TLS */
} node_conn_stats;

/* Fill *STATS for connection ID; false when there is no such one.
   Messages count frames (ticks not), bytes their bodies.  */
bool node_stats (long id, node_conn_stats *stats);

#endif /* DERL_NODE_H */
