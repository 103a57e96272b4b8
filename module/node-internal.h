/* node-internal.h --- what the node*.c files share: the connection
   record, the shared state under `node_lock', and their entry points
   into each other.  Not for use outside node*.c.  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#ifndef DERL_NODE_INTERNAL_H
#define DERL_NODE_INTERNAL_H

#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dist.h"
#include "etf.h"
#include "handshake.h"
#include "node.h"

typedef enum
{
  C_RESOLVING,      /* a helper thread looks the host up */
  C_EPMD_CONNECT,   /* connecting to EPMD */
  C_EPMD_WAIT,      /* request sent, reading the answer */
  C_CONNECT,        /* connecting to the node */
  C_TLS,            /* TLS handshake with the node (node-transport.c) */
  C_HANDSHAKE,
  C_UP,
  C_PARKED,         /* told the node is connecting to us (status nok):
                       waits, without a socket, to go on as that
                       connection (node-listen.c) */
  C_DEAD,
} conn_state;

typedef enum
{
  Q_NODE,           /* a distribution connection */
  Q_PORT_PLEASE,    /* an EPMD query only */
  Q_NAMES,
  Q_LISTEN,         /* a listening socket (node-listen.c) */
  Q_ALIVE,          /* our registration with EPMD, open while listening */
} conn_kind;

/* fd while resolved but not yet connected: the I/O thread opens it.  */
#define FD_TO_OPEN (-2)

typedef struct conn
{
  struct conn *next;
  long id;
  conn_kind kind;
  conn_state state;
  int fd;
  char *alive, *host;
  int epmd_port;
  struct sockaddr_storage addr;
  socklen_t addr_len;
  uint16_t node_port;
  int peer_version;
  uint8_t *cookie;
  size_t cookie_len;
  char *our_name;
  uint32_t creation;
  uint64_t flags;
  hs_state hs;
  bool hs_started;
  dist_atom_cache *atom_cache;  /* the node's cached atoms, once up */
  etf_buf in;          /* received, from IN_START on not yet used */
  size_t in_start;
  etf_buf early;       /* handshake or EPMD bytes to write */
  etf_buf out;         /* frames; written only once up */
  etf_buf pending;     /* messages queued before up, unframed */
  bool use_header;     /* frames after a distribution header */
  size_t out_sent;
  size_t max_send_queue;
  int64_t deadline;    /* connect deadline, ms; 0 once up */
  int64_t redial_at;   /* C_PARKED while Emacs is no node: dial again */
  int64_t last_recv, last_send;
  uint64_t messages_in, bytes_in, messages_out, bytes_out;  /* frames */
  unsigned ticktime_ms;
  size_t max_message;
  size_t max_depth;
  bool close_requested;
  /* Listening (node-listen.c).  */
  bool incoming;       /* it came in through a listener */
  long listener;       /* incoming: the listener it came through (0 once
                          it took over a connection of ours); Q_ALIVE:
                          the listener it registers */
  long alive_id;       /* Q_LISTEN: its registration with EPMD; its
                          DEADLINE, when set, is the end of a pause in
                          accepting (out of file descriptors) */
  bool accepting;      /* Q_LISTEN: registered, taking connections */
  bool merged;         /* incoming, not up: an attempt of ours goes on
                          as it, so its failure is that attempt's */
  bool dropped;        /* incoming: we dropped it to make room, no
                          failure of its address */
  unsigned max_pending;
  /* Q_LISTEN: when to hold failing addresses back (node_listen_args),
     and when reports of refusals are next due (0: none waits).  */
  unsigned max_failures, failure_window_ms, hold_back_ms, max_hold_back_ms;
  int64_t report_at;
  unsigned handshake_timeout_ms;
  long replaces;       /* incoming: the connection to the same node that
                          status alive asked about */
  const char *why_not; /* incoming: why we answered not_allowed */
  struct tls_context *tls_ctx;  /* TLS wanted: its context; NULL: plain */
  struct tls_session *tls;      /* the TLS session, once started */
} conn;

/* ---- shared state, all under node_lock (see node.h) */
extern pthread_mutex_t node_lock;
extern conn *node_conns;
extern pthread_t node_io_thread;
extern bool node_is_running, node_stopping;

/* node.c */
int64_t node_now_ms (void);
int64_t node_now_us (void);  /* the same clock, in microseconds */

/* What one poll waits for: slots of descriptors, and IDS saying whose
   connection each slot is (0 for none).  The I/O thread's poll loop
   and the main thread's wait (node-wait.c) each keep one.  */
typedef struct
{
  struct pollfd *fds;
  long *ids;
  size_t n, cap;
  int64_t timeout;  /* ms; -1 for none (the I/O thread's only) */
} poll_set;
/* Room for COUNT slots; false when out of memory.  */
bool poll_set_reserve (poll_set *ps, size_t count);
/* Append a slot; there must be room.  */
void poll_set_add (poll_set *ps, int fd, short events, long id);
long node_new_id_locked (void);
void node_wake_io_thread (void);

/* node-events.c */
node_event *event_new (node_event_kind kind, long id, size_t extra);
void emit_locked (node_event *ev);
/* A DOWN or EPMD_ERROR event for ID, or NULL when out of memory.  */
node_event *event_failure (node_event_kind kind, long id, node_error error,
                           const char *reason);
/* Tell Lisp about events queued from the main thread.  */
void signal_owed_locked (void);
bool events_pending_locked (void);
/* Wake Lisp through Emacs's pipe (by way of the I/O thread when called
   from another thread).  */
void wake_lisp_locked (void);
/* Past the high-water mark the I/O thread stops reading.  */
bool events_over_high_water_locked (void);
/* REFUSED events queued and not yet taken by Lisp.  */
size_t events_refusals_queued_locked (void);
void events_set_fd_locked (int fd);
void events_clear_locked (void);

/* node-wait.c */
/* A first event was queued: when the main thread waits in the module,
   see that it wakes (FRAME: stamp it) and return true; false when
   Lisp must be woken through the pipe.  */
bool waiter_takes_event_locked (bool frame);
/* Wake the main thread waiting for events queued by the I/O thread;
   called just before the I/O thread lets go of node_lock.  */
void signal_waiter_locked (void);
/* The main thread sent: its next wait spins first.  */
void waiter_arm_spin_locked (void);
/* Lisp took events; ALL: the queue is empty.  */
void events_taken_locked (bool all);
/* The waiting main thread reads C's input, not the I/O thread.  */
bool main_reads_locked (const conn *c);
/* For the I/O thread, each round: in how many ms it must look again
   whether the main thread still reads (-1: no need); it takes the
   reading back once the main thread has been away from its wait too
   long.  */
int64_t main_reads_handback_locked (int64_t now);

/* node-resolve.c */
bool start_resolver (conn *c);

/* node-conn.c */
conn *find_conn (long id);
conn *new_conn (conn_kind kind, const char *host, int epmd_port,
                unsigned timeout_ms);
void free_conn (conn *c);
void kill_conn_locked (conn *c, node_error error, const char *reason);
bool open_socket (conn *c, uint16_t port);
void connected_locked (conn *c);
void start_handshake_locked (conn *c);
void handshake_input_locked (conn *c);
void epmd_input_locked (conn *c, bool eof);
int64_t timers_locked (conn *c, int64_t now);
/* C's handshake is done: it is up; tell Lisp with an event of KIND.  */
void conn_up_locked (conn *c, node_event_kind kind);

/* node-listen.c */
void accept_locked (conn *listener);
/* The listener's timer: the end of a pause.  */
int64_t listener_timer_locked (conn *listener, int64_t now);
/* The peer's name is known: the answer net_kernel would give.  */
hs_accept_decision incoming_decision_locked (conn *c);
/* What became of the handshake of C, an incoming connection.  */
void incoming_handshake_result_locked (conn *c, hs_status st);
void alive_input_locked (conn *c, bool eof);
/* C, an incoming connection, is dropped before it came up: count it
   against its address, which may be held back, and report it in a
   REFUSED event when one is due.  Returns the event Lisp needs about C
   itself, if any (a DOWN when an attempt of ours goes on as C).  */
node_event *refusal_event (const conn *c, node_error error,
                           const char *reason);
/* C, our attempt to reach a node, was told the node is connecting to
   us: when that connection came in, C goes on as it (and is freed).  */
bool merge_into_incoming_locked (conn *c);
/* ... or, when that connection has not come in yet, park C until it
   does (or C's deadline passes).  */
void park_locked (conn *c);
/* A listener goes: its registration and pending handshakes follow.  */
void listener_closing_locked (conn *listener);

/* node-frames.c */
bool flush_locked (conn *c);
bool wants_write (const conn *c);
void read_input_locked (conn *c);
void process_frames_locked (conn *c);
node_send_result queue_message_locked (conn *c, const uint8_t *control,
                                       size_t control_len,
                                       const uint8_t *message,
                                       size_t message_len);
node_send_result queue_frame_locked (conn *c, etf_buf *frame,
                                     size_t terms_len);
void frame_pending_locked (conn *c);
/* Messages and bytes queued on C that were not fully sent.  */
void unsent_messages (const conn *c, size_t *count, size_t *bytes);
const uint8_t *in_data (conn *c);
size_t in_len (conn *c);
void in_consume (conn *c, size_t n);

/* node-transport.c */
/* As send and recv (non-blocking), over TLS when C has it.  */
ssize_t conn_send (conn *c, const void *buf, size_t len);
ssize_t conn_recv (conn *c, void *buf, size_t len);
/* Move what C's TLS session took from the socket but has not handed
   out into IN: poll cannot see it, so a read that stops at its budget
   must take it.  At most what the session holds (its read-ahead
   buffer).  False when out of memory.  */
bool transport_drain_held_locked (conn *c);
/* What else to poll C's socket for, for TLS's sake.  */
short transport_poll_events (const conn *c);
/* Why C's transport failed, or OTHERWISE when it says nothing.  */
const char *transport_failure (const conn *c, const char *otherwise);
/* If C's TLS session failed (a peer's alert after our part of the TLS
   handshake was done, as in TLS 1.3), end C with that reason: true.  */
bool transport_failed_locked (conn *c);
/* C's socket is connected (dialled, or accepted): start TLS with CTX
   (C_TLS).  C may be freed on return.  */
void start_tls_locked (conn *c, struct tls_context *ctx);
/* C_TLS: a step of the TLS handshake; the distribution handshake starts
   when it is done.  C may be freed on return.  */
void tls_step_locked (conn *c);
/* Move the handshake's output to EARLY, framed for the transport.  */
void put_handshake_out (conn *c);
/* Feed received bytes to the handshake, as the transport frames them;
   false when C was killed (a TLS answer on a plain connection).  */
bool transport_feed_locked (conn *c, hs_status *st);
/* End C's TLS session (before its socket closes); free_transport ends
   its context too.  */
void end_tls_session (conn *c);
void free_transport (conn *c);

#endif /* DERL_NODE_INTERNAL_H */
