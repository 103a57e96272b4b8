/* node_internal.h --- what the node_*.c files share: the connection
   record, the state under `node_lock', and each file's entry points
   for the files above it.  Private to the node layer: nothing outside
   node*.c includes it.

   The files, each calling only those listed before it:
     node_state.c    the lock, the clock, ids, waking the I/O thread
     node_events.c   the event queue, and how Lisp is woken for it
     node_table.c    the connection table; a connection's death
     node_io.c       a connection's bytes in and out, its frames, ticks
     node_resolve.c  host names looked up in threads of their own
     node_listen.c   listening, our EPMD registration, the acceptor
     node_dial.c     the connections and EPMD queries Emacs makes
     node_wait.c     the main thread waiting for events
     node.c          the I/O thread's poll loop, and node.h's API  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#ifndef DERL_NODE_INTERNAL_H
#define DERL_NODE_INTERNAL_H

#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "node.h"
#include "session.h"
#include "transport.h"

typedef enum
{
  C_RESOLVING,      /* a helper thread looks the host up */
  C_EPMD_CONNECT,   /* connecting to EPMD */
  C_EPMD_WAIT,      /* request sent, reading the answer */
  C_CONNECT,        /* connecting to the node */
  C_TLS,            /* TLS handshake with the node */
  C_HANDSHAKE,
  C_UP,
  C_PARKED,         /* told the node is connecting to us (status nok):
                       waits, without a socket, to go on as that
                       connection (node_listen.c) */
  C_DEAD,
} conn_state;

typedef enum
{
  Q_NODE,           /* a distribution connection */
  Q_PORT_PLEASE,    /* an EPMD query only */
  Q_NAMES,
  Q_LISTEN,         /* a listening socket (node_listen.c) */
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
  transport net;       /* the socket, and TLS over it */
  session ses;         /* the protocol: EPMD, handshake, frames; its
                          limits, and who we are */
  char *alive, *host;
  int epmd_port;
  struct sockaddr_storage addr;
  socklen_t addr_len;
  uint16_t node_port;
  int64_t deadline;    /* connect deadline, ms; 0 once up */
  int64_t redial_at;   /* C_PARKED while Emacs is no node: dial again */
  bool close_requested;
  /* Set by the listener on what it owns: the event a failure of a
     connection not up becomes instead of a DOWN (NULL: a DOWN), and
     what must follow the connection's end (NULL: nothing).  */
  node_event *(*failure_event) (const struct conn *c, node_error error,
                                const char *reason);
  void (*closing) (struct conn *c);
  /* Listening (node_listen.c).  */
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
  long replaces;       /* incoming: the connection to the same node that
                          status alive asked about */
  const char *why_not; /* incoming: why we answered not_allowed */
} conn;

/* ---- node_state.c: shared state, all under node_lock (see node.h) */
extern pthread_mutex_t node_lock;
extern pthread_t node_io_thread;
extern bool node_is_running, node_stopping;
int64_t node_now_ms (void);
int64_t node_now_us (void);  /* the same clock, in microseconds */
long node_new_id_locked (void);
/* The pipe that wakes the I/O thread's poll.  */
bool node_wake_pipe_open (void);
void node_wake_pipe_close (void);
int node_wake_pipe_fd (void);
void node_wake_pipe_drain (void);
void node_wake_io_thread (void);
/* Is the caller the I/O thread?  */
bool node_on_io_thread_locked (void);

/* What one poll waits for: slots of descriptors, and IDS saying whose
   connection each slot is (0 for none).  The I/O thread's poll loop
   and the main thread's wait (node_wait.c) each keep one.  */
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

/* ---- node_events.c */
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
/* The main thread waits for events (node_wait.c): between begin and
   end, a first event wakes it through the descriptor
   events_waiter_fd_locked gives (made at its first call; -1 when it
   cannot be), not Lisp through the pipe.  */
int events_waiter_fd_locked (void);
void events_wait_begin_locked (void);
void events_wait_end_locked (void);
/* The waiter woke on its descriptor: empty it.  */
void events_waiter_woken_locked (void);
/* Done waiting: wake Lisp through the pipe for the events the waiter
   left behind.  */
void events_wait_done_locked (void);
/* Wake the main thread waiting for events queued by the I/O thread;
   called just before the I/O thread lets go of node_lock.  */
void signal_waiter_locked (void);

/* ---- node_table.c */
extern conn *node_conns;
conn *find_conn_locked (long id);
/* A new record of KIND for HOST, not yet in the table.  */
conn *new_conn (conn_kind kind, const char *host, int epmd_port,
                const session_limits *limits);
void free_conn (conn *c);
/* Put C in the table, under a new id.  */
void link_conn_locked (conn *c);
/* Take C out of the table (and free it).  */
void unlink_conn_locked (conn *c);
void kill_conn_locked (conn *c, node_error error, const char *reason);
/* Did we, under the same name, lately have a connection to C's node?  */
bool was_connected_lately_locked (const conn *c);

/* ---- node_io.c */
/* Start a non-blocking connect to C's address at PORT.  */
bool open_socket_locked (conn *c, uint16_t port);
bool flush_locked (conn *c);
bool wants_write_locked (const conn *c);
/* Read what C's socket has: false when C was killed (out of memory);
   *EOF when the peer closed or the socket failed.  */
bool receive_locked (conn *c, bool *eof);
/* Input of an up connection.  C may be freed on return.  */
void up_input_locked (conn *c, bool eof);
/* Input of a distribution connection (its peer closed: EOF): in its
   handshake, fed to it, DECIDE (called with C) answering the
   acceptor's question, RESULT told what became of it (HS_CONTINUE:
   nothing yet), and too much of it, or a peer that spoke TLS to a
   plain connection, kills C; once up, its frames.  C may be freed on
   return.  */
void conn_input_locked (conn *c, bool eof, session_decide_fn decide,
                        void (*result) (conn *c, hs_status status));
/* C's handshake is done: it is up; tell Lisp with an event of KIND.  */
void conn_up_locked (conn *c, node_event_kind kind);
node_send_result queue_message_locked (conn *c, const uint8_t *control,
                                       size_t control_len,
                                       const uint8_t *message,
                                       size_t message_len);
node_send_result queue_frame_locked (conn *c, etf_buf *frame,
                                     size_t terms_len);
/* C's socket is connected (dialled, or accepted): start TLS with CTX
   (C_TLS); false when C was killed.  */
bool start_tls_locked (conn *c, tls_context *ctx);
/* C_TLS: a step of the TLS handshake; true when it is done.  When
   false, C may have failed and been freed.  */
bool tls_step_locked (conn *c);
/* C's deadline and ticks at NOW: the ms until the next look (-1: none);
   C may be freed when -1.  */
int64_t conn_timers_locked (conn *c, int64_t now);

/* ---- node_resolve.c */
bool start_resolver_locked (conn *c);

/* ---- node_listen.c */
void accept_locked (conn *listener);
/* The listener's timer: the end of a pause.  */
int64_t listener_timer_locked (conn *listener, int64_t now);
/* Input of an incoming connection, or of our registration.  */
void incoming_input_locked (conn *c, bool eof);
void alive_input_locked (conn *c, bool eof);
/* C_TLS of an incoming connection.  */
void incoming_tls_step_locked (conn *c);
/* C, our attempt to reach a node, was told the node is connecting to
   us: when that connection came in, C goes on as it (and is freed).  */
bool merge_into_incoming_locked (conn *c);
/* ... or, when that connection has not come in yet, park C until it
   does (or C's deadline passes).  */
void park_locked (conn *c);

/* ---- node_dial.c */
/* A non-blocking connect finished (or failed).  */
void connected_locked (conn *c);
/* Input of a connection Emacs made, or of an EPMD query.  */
void outgoing_input_locked (conn *c, bool eof);
void outgoing_tls_step_locked (conn *c);
int64_t outgoing_timers_locked (conn *c, int64_t now);

/* ---- node_wait.c */
/* A send: the main thread's next wait spins first.  */
void waiter_arm_spin_locked (void);
/* The waiting main thread reads C's input, not the I/O thread.  */
bool main_reads_locked (const conn *c);
/* For the I/O thread, each round: in how many ms it must look again
   whether the main thread still reads (-1: no need); it takes the
   reading back once the main thread has been away from its wait too
   long.  */
int64_t main_reads_handback_locked (int64_t now);

#endif /* DERL_NODE_INTERNAL_H */
