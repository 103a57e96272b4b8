/* node.c --- connections to Erlang nodes, owned by one I/O thread.  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#define _GNU_SOURCE
#include "node.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "digest.h"
#include "epmd.h"
#include "handshake.h"

/* ---------------------------------------------------------------- */
/* Connections */

typedef enum
{
  C_RESOLVING,      /* a helper thread looks the host up */
  C_EPMD_CONNECT,   /* connecting to EPMD */
  C_EPMD_WAIT,      /* request sent, reading the answer */
  C_CONNECT,        /* connecting to the node */
  C_HANDSHAKE,
  C_UP,
  C_DEAD,
} conn_state;

typedef enum
{
  Q_NODE,           /* a distribution connection */
  Q_PORT_PLEASE,    /* an EPMD query only */
  Q_NAMES,
} conn_kind;

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
  etf_buf out;         /* frames; written only once up; shared */
  etf_buf pending;     /* messages queued before up, unframed */
  bool use_header;     /* frames after a distribution header */
  size_t out_sent;
  int64_t deadline;    /* connect deadline, ms; 0 once up */
  int64_t last_recv, last_send;
  unsigned ticktime_ms;
  size_t max_message;
  bool close_requested;
} conn;

/* Everything shared between the threads, under LOCK.  */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static conn *conns;
static long next_id = 1;
static node_event *events_head, *events_tail;
/* Bytes of frames waiting for Lisp.  Past the high-water mark the I/O
   thread stops reading until Lisp has taken them: a fast sender cannot
   grow Emacs's memory without bound.  */
static size_t queued_bytes;
#define QUEUE_HIGH_WATER ((size_t) 64 << 20)
static int event_fd = -1;
static int wake_pipe[2] = { -1, -1 };
static pthread_t io_thread;
static bool running, stopping;
/* An event was queued by a thread that must not write to Emacs's pipe;
   the I/O thread writes the wake-up byte for it.  */
static bool lisp_signal_owed;

static int64_t
now_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
wake_io_thread (void)
{
  if (wake_pipe[1] >= 0)
    {
      ssize_t n = write (wake_pipe[1], "w", 1);
      (void) n;  /* a full pipe already wakes it */
    }
}

/* Wake Lisp: one byte down the event pipe.  LOCK held.  */
static void
signal_lisp_locked (void)
{
  lisp_signal_owed = false;
  if (event_fd < 0)
    return;
  ssize_t n;
  do
    n = write (event_fd, "e", 1);
  while (n < 0 && errno == EINTR);
}

/* Queue an event (LOCK held); tell Lisp when the queue was empty.  */
static void
emit_locked (node_event *ev)
{
  ev->next = NULL;
  bool was_empty = events_head == NULL;
  queued_bytes += ev->len;
  if (events_tail)
    events_tail->next = ev;
  else
    events_head = ev;
  events_tail = ev;
  if (was_empty)
    {
      /* Only threads that block every signal write to Emacs's pipe: a
         write after its reader is gone raises SIGPIPE.  From the main
         thread, let the I/O thread do it.  */
      if (running && pthread_equal (pthread_self (), io_thread))
        signal_lisp_locked ();
      else
        {
          lisp_signal_owed = true;
          wake_io_thread ();
        }
    }
}

static node_event *
new_event (node_event_kind kind, long id)
{
  node_event *ev = calloc (1, sizeof *ev);
  if (ev)
    {
      ev->kind = kind;
      ev->id = id;
    }
  return ev;
}

static conn *
find_conn (long id)
{
  for (conn *c = conns; c; c = c->next)
    if (c->id == id)
      return c;
  return NULL;
}

static void
free_conn (conn *c)
{
  if (c->fd >= 0)
    close (c->fd);
  free (c->alive);
  free (c->host);
  if (c->cookie)
    {
      digest_wipe (c->cookie, c->cookie_len);
      free (c->cookie);
    }
  free (c->our_name);
  if (c->hs_started)
    hs_free (&c->hs);
  dist_atom_cache_free (c->atom_cache);
  etf_buf_free (&c->in);
  etf_buf_free (&c->early);
  etf_buf_free (&c->out);
  etf_buf_free (&c->pending);
  free (c);
}

/* End C (LOCK held): tell Lisp why (unless ERROR is NODE_ERR_NONE: a
   finished query), unlink it and free it.  */
static void
kill_conn_locked (conn *c, node_error error, const char *reason)
{
  node_event *ev = NULL;
  if (error != NODE_ERR_NONE || c->close_requested)
    ev = new_event (c->kind == Q_NODE ? NODE_EV_DOWN : NODE_EV_EPMD_ERROR,
                    c->id);
  if (ev)
    {
      ev->error = c->close_requested ? NODE_ERR_LOCAL : error;
      snprintf (ev->reason, sizeof ev->reason, "%s",
                c->close_requested ? "closed" : reason);
      emit_locked (ev);
    }
  for (conn **p = &conns; *p; p = &(*p)->next)
    if (*p == c)
      {
        *p = c->next;
        break;
      }
  free_conn (c);
}

/* ---------------------------------------------------------------- */
/* Name resolution, off the I/O thread */

typedef struct
{
  long id;
  char *host;
  int port;
} resolve_job;

static void *
resolve_main (void *arg)
{
  resolve_job *job = arg;
  struct addrinfo hints, *res = NULL;
  memset (&hints, 0, sizeof hints);
  hints.ai_socktype = SOCK_STREAM;
  char port[16];
  snprintf (port, sizeof port, "%d", job->port);
  /* IPv4 first: Erlang's distribution listens on IPv4 unless a node is
     started with -proto_dist inet6_tcp.  */
  hints.ai_family = AF_INET;
  int rc = getaddrinfo (job->host, port, &hints, &res);
  if (rc != 0)
    {
      hints.ai_family = AF_INET6;
      rc = getaddrinfo (job->host, port, &hints, &res);
    }

  pthread_mutex_lock (&lock);
  conn *c = find_conn (job->id);
  if (c && c->state == C_RESOLVING && !stopping)
    {
      if (rc != 0 || !res)
        {
          char reason[200];
          snprintf (reason, sizeof reason, "unknown host %s: %s", job->host,
                    gai_strerror (rc));
          kill_conn_locked (c, NODE_ERR_HOST, reason);
        }
      else
        {
          memcpy (&c->addr, res->ai_addr, res->ai_addrlen);
          c->addr_len = res->ai_addrlen;
          c->state = C_EPMD_CONNECT;
          c->fd = -2;  /* the I/O thread opens the socket */
        }
      wake_io_thread ();
    }
  pthread_mutex_unlock (&lock);
  if (res)
    freeaddrinfo (res);
  free (job->host);
  free (job);
  return NULL;
}

static bool
start_resolver (conn *c)
{
  resolve_job *job = calloc (1, sizeof *job);
  if (!job || !(job->host = strdup (c->host)))
    {
      free (job);
      return false;
    }
  job->id = c->id;
  job->port = c->epmd_port;
  pthread_attr_t attr;
  pthread_attr_init (&attr);
  pthread_attr_setdetachstate (&attr, PTHREAD_CREATE_DETACHED);
  pthread_t t;
  /* Helper threads inherit our signal mask: the caller blocks all.  */
  sigset_t all, old;
  sigfillset (&all);
  pthread_sigmask (SIG_SETMASK, &all, &old);
  int rc = pthread_create (&t, &attr, resolve_main, job);
  pthread_sigmask (SIG_SETMASK, &old, NULL);
  pthread_attr_destroy (&attr);
  if (rc != 0)
    {
      free (job->host);
      free (job);
      return false;
    }
  return true;
}

/* ---------------------------------------------------------------- */
/* Sockets */

static void
set_port (struct sockaddr_storage *addr, uint16_t port)
{
  if (addr->ss_family == AF_INET)
    ((struct sockaddr_in *) addr)->sin_port = htons (port);
  else if (addr->ss_family == AF_INET6)
    ((struct sockaddr_in6 *) addr)->sin6_port = htons (port);
}

/* Start a non-blocking connect to C's address at PORT.  */
static bool
open_socket (conn *c, uint16_t port)
{
  set_port (&c->addr, port);
  int fd = socket (c->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK
                                       | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return false;
  int one = 1;
  setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect (fd, (struct sockaddr *) &c->addr, c->addr_len) < 0
      && errno != EINPROGRESS)
    {
      close (fd);
      return false;
    }
  c->fd = fd;
  return true;
}

/* Write what C has to write: EARLY bytes first, then frames once up.
   LOCK held.  Returns false when the socket failed.  */
static bool
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
          ssize_t n = send (c->fd, b->data + done, b->len - done,
                            MSG_NOSIGNAL | MSG_DONTWAIT);
          if (n < 0)
            {
              if (errno == EINTR)
                continue;
              if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
              return false;
            }
          done += (size_t) n;
          c->last_send = now_ms ();
        }
      if (done == b->len)
        {
          b->len = 0;
          done = 0;
          /* Don't keep a huge buffer around after a huge message.  */
          if (b->cap > (1u << 20))
            etf_buf_free (b);
        }
      else if (!sent)
        {
          /* Keep the unsent tail of EARLY at its start.  */
          memmove (b->data, b->data + done, b->len - done);
          b->len -= done;
          done = 0;
        }
      if (sent)
        *sent = done;
      if (b->len > 0)
        break;  /* order: nothing later until this is out */
    }
  return true;
}

static bool
wants_write (const conn *c)
{
  if (c->state == C_EPMD_CONNECT || c->state == C_CONNECT)
    return true;
  return c->early.len > 0 || (c->state == C_UP && c->out.len > c->out_sent);
}

/* ---------------------------------------------------------------- */
/* Input */

static const uint8_t *
in_data (conn *c)
{
  return c->in.data + c->in_start;
}

static size_t
in_len (conn *c)
{
  return c->in.len - c->in_start;
}

static void
in_consume (conn *c, size_t n)
{
  c->in_start += n;
  if (c->in_start == c->in.len)
    c->in_start = c->in.len = 0;
}


/* The atoms REFS name, copied for the main thread: the cache they
   point into changes with the next frame.  One allocation.  */
static etf_atom *
copy_atom_refs (const etf_atom *refs, size_t n)
{
  size_t names = 0;
  for (size_t k = 0; k < n; k++)
    names += refs[k].len;
  etf_atom *out = malloc (n * sizeof *out + names + 1);
  if (!out)
    return NULL;
  uint8_t *p = (uint8_t *) (out + n);
  for (size_t k = 0; k < n; k++)
    {
      memcpy (p, refs[k].name, refs[k].len);
      out[k] = refs[k];
      out[k].name = p;
      p += refs[k].len;
    }
  return out;
}

/* Pending messages are kept as [control length][message length + 1, 0
   for none][control][message] until the connection is up and its frame
   form known.  */
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


/* Frame what was queued before the connection came up.  LOCK held.  */
static void
frame_pending_locked (conn *c)
{
  const uint8_t *p = c->pending.data;
  const uint8_t *end = p + c->pending.len;
  while (p && end - p >= 16)
    {
      size_t control_len = etf_get_u64 (p);
      uint64_t m = etf_get_u64 (p + 8);
      const uint8_t *control = p + 16;
      const uint8_t *message = m ? control + control_len : NULL;
      size_t message_len = m ? m - 1 : 0;
      dist_put_frame (&c->out, c->use_header, control, control_len, message,
                      message_len);
      p = control + control_len + message_len;
    }
  etf_buf_free (&c->pending);
}

/* Handle whole frames of an up connection.  LOCK held.  */
static void
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
      if (!dist_parse_frame (body, n, c->atom_cache, refs, &frame, &why))
        {
          char reason[200];
          snprintf (reason, sizeof reason, "malformed message: %s", why);
          kill_conn_locked (c, NODE_ERR_PROTOCOL, reason);
          return;
        }
      node_event *ev = new_event (NODE_EV_FRAME, c->id);
      uint8_t *copy = malloc (n);
      if (!ev || !copy)
        {
          free (ev);
          free (copy);
          kill_conn_locked (c, NODE_ERR_PROTOCOL, "out of memory");
          return;
        }
      memcpy (copy, body, n);
      ev->data = copy;
      ev->len = n;
      ev->frame = frame;
      if (frame.atom_ref_count > 0
          && !(ev->atom_refs = copy_atom_refs (refs, frame.atom_ref_count)))
        {
          free (ev->data);
          free (ev);
          kill_conn_locked (c, NODE_ERR_PROTOCOL, "out of memory");
          return;
        }
      emit_locked (ev);
      in_consume (c, 4 + n);
    }
}

static void
handshake_input_locked (conn *c)
{
  size_t used = 0;
  hs_status st = hs_feed (&c->hs, in_data (c), in_len (c), &used);
  in_consume (c, used);
  if (c->hs.out.len)
    {
      etf_put_bytes (&c->early, c->hs.out.data, c->hs.out.len);
      c->hs.out.len = 0;
    }
  if (st == HS_FAILED)
    {
      node_error e = c->hs.kind == HS_ERR_AUTH      ? NODE_ERR_AUTH
                     : c->hs.kind == HS_ERR_REFUSED ? NODE_ERR_REFUSED
                                                    : NODE_ERR_PROTOCOL;
      kill_conn_locked (c, e, c->hs.error);
      return;
    }
  if (st != HS_DONE)
    return;
  c->state = C_UP;
  c->deadline = 0;
  c->use_header = (c->hs.peer_flags & c->flags
                   & DFLAG_DIST_HDR_ATOM_CACHE) != 0;
  frame_pending_locked (c);
  if (c->use_header)
    {
      c->atom_cache = calloc (1, sizeof *c->atom_cache);
      if (!c->atom_cache)
        {
          kill_conn_locked (c, NODE_ERR_PROTOCOL, "out of memory");
          return;
        }
    }
  c->last_recv = c->last_send = now_ms ();
  node_event *ev = new_event (NODE_EV_UP, c->id);
  if (ev)
    {
      size_t n = c->hs.peer_name_len < sizeof ev->peer_name - 1
                   ? c->hs.peer_name_len
                   : sizeof ev->peer_name - 1;
      memcpy (ev->peer_name, c->hs.peer_name, n);
      ev->peer_creation = c->hs.peer_creation;
      ev->peer_flags = c->hs.peer_flags;
      emit_locked (ev);
    }
  /* The cookie is no longer needed.  */
  digest_wipe (c->cookie, c->cookie_len);
  process_frames_locked (c);
}

static void
epmd_input_locked (conn *c, bool eof)
{
  const char *why = "malformed EPMD answer";
  if (c->kind == Q_NAMES)
    {
      if (!eof)
        return;
      node_event *ev = new_event (NODE_EV_EPMD_NAMES, c->id);
      if (ev && (ev->data = malloc (in_len (c) + 1)))
        {
          memcpy (ev->data, in_data (c), in_len (c));
          ev->len = in_len (c);
          emit_locked (ev);
        }
      else
        free (ev);
      c->state = C_DEAD;
      return;
    }

  epmd_node_info info;
  size_t used;
  epmd_result r = epmd_parse_port2_resp (in_data (c), in_len (c), &info,
                                         &used, &why);
  if (r == EPMD_INCOMPLETE)
    {
      if (eof)
        kill_conn_locked (c, NODE_ERR_EPMD, "EPMD closed without answering");
      return;
    }
  if (r == EPMD_NOT_REGISTERED)
    {
      char reason[300];
      snprintf (reason, sizeof reason,
                "node name %s is not registered with EPMD on %s", c->alive,
                c->host);
      kill_conn_locked (c, NODE_ERR_NOT_REGISTERED, reason);
      return;
    }
  if (r != EPMD_OK)
    {
      kill_conn_locked (c, NODE_ERR_EPMD, why);
      return;
    }
  if (c->kind == Q_PORT_PLEASE)
    {
      node_event *ev = new_event (NODE_EV_EPMD_PORT, c->id);
      if (ev)
        {
          ev->port = info.port;
          ev->version = info.highest_version;
          emit_locked (ev);
        }
      c->state = C_DEAD;
      return;
    }
  /* On to the node itself.  */
  close (c->fd);
  c->fd = -1;
  c->in.len = c->in_start = 0;
  c->node_port = info.port;
  c->peer_version = info.highest_version;
  if (info.highest_version < 5 || info.lowest_version > 6)
    {
      kill_conn_locked (c, NODE_ERR_PROTOCOL,
                        "the node speaks no distribution version we know");
      return;
    }
  if (!open_socket (c, info.port))
    {
      char reason[200];
      snprintf (reason, sizeof reason, "cannot connect to %s port %u: %s",
                c->host, info.port, strerror (errno));
      kill_conn_locked (c, NODE_ERR_CONNECT, reason);
      return;
    }
  c->state = C_CONNECT;
}

/* Read what the socket has, then act on it.  LOCK held; C may be freed
   on return.  */
static void
read_input_locked (conn *c)
{
  long id = c->id;
  bool eof = false;
  if (c->in_start > 0)
    {
      /* Keep unread bytes at the start: big frames need one block.  */
      memmove (c->in.data, c->in.data + c->in_start, in_len (c));
      c->in.len -= c->in_start;
      c->in_start = 0;
    }
  for (;;)
    {
      if (!etf_buf_reserve (&c->in, 65536))
        {
          kill_conn_locked (c, NODE_ERR_PROTOCOL, "out of memory");
          return;
        }
      size_t room = c->in.cap - c->in.len;
      ssize_t n = recv (c->fd, c->in.data + c->in.len, room, MSG_DONTWAIT);
      if (n > 0)
        {
          c->in.len += (size_t) n;
          c->last_recv = now_ms ();
          if ((size_t) n < room)
            break;
          continue;
        }
      if (n == 0)
        {
          eof = true;
          break;
        }
      if (errno == EINTR)
        continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        eof = true;
      break;
    }

  switch (c->state)
    {
    case C_EPMD_WAIT:
      epmd_input_locked (c, eof);
      if ((c = find_conn (id)) && c->state == C_DEAD)
        kill_conn_locked (c, NODE_ERR_NONE, "done");
      return;
    case C_HANDSHAKE:
      handshake_input_locked (c);
      if (!(c = find_conn (id)))
        return;
      if (eof && c->state == C_HANDSHAKE)
        {
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
    kill_conn_locked (c, NODE_ERR_CLOSED, "connection closed by the peer");
}

/* A non-blocking connect finished (or failed).  LOCK held.  */
static void
connected_locked (conn *c)
{
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt (c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0)
    {
      char reason[300];
      if (c->state == C_EPMD_CONNECT)
        {
          snprintf (reason, sizeof reason,
                    "no EPMD at %s port %d (%s); is an Erlang node running "
                    "there?", c->host, c->epmd_port, strerror (err));
          kill_conn_locked (c, NODE_ERR_EPMD, reason);
        }
      else
        {
          snprintf (reason, sizeof reason, "cannot connect to %s port %u: %s",
                    c->host, c->node_port, strerror (err));
          kill_conn_locked (c, NODE_ERR_CONNECT, reason);
        }
      return;
    }
  if (c->state == C_EPMD_CONNECT)
    {
      uint8_t req[512];
      size_t n = c->kind == Q_NAMES
                   ? epmd_names_request (req, sizeof req)
                   : epmd_port_please_request (c->alive, strlen (c->alive),
                                               req, sizeof req);
      if (n == 0)
        {
          kill_conn_locked (c, NODE_ERR_EPMD, "node name too long for EPMD");
          return;
        }
      etf_put_bytes (&c->early, req, n);
      c->state = C_EPMD_WAIT;
      return;
    }
  /* The node's port: start the handshake.  */
  if (!hs_init_initiator (&c->hs, (const uint8_t *) c->our_name,
                          strlen (c->our_name), c->cookie, c->cookie_len,
                          c->flags, c->creation, c->peer_version))
    {
      c->hs_started = true;
      kill_conn_locked (c, NODE_ERR_PROTOCOL, c->hs.error);
      return;
    }
  c->hs_started = true;
  etf_put_bytes (&c->early, c->hs.out.data, c->hs.out.len);
  c->hs.out.len = 0;
  c->state = C_HANDSHAKE;
}

/* Timers: connect deadline, ticks.  LOCK held.  Returns the ms until
   the next one.  */
static int64_t
timers_locked (conn *c, int64_t now)
{
  if (c->state != C_UP)
    {
      if (c->deadline && now >= c->deadline)
        {
          kill_conn_locked (c, NODE_ERR_TIMEOUT,
                            c->state == C_HANDSHAKE
                              ? "handshake timed out"
                              : "connection timed out");
          return -1;
        }
      return c->deadline ? c->deadline - now : -1;
    }
  if (c->ticktime_ms == 0)
    return -1;
  if (now - c->last_recv >= c->ticktime_ms)
    {
      kill_conn_locked (c, NODE_ERR_TICK, "net tick timeout");
      return -1;
    }
  int64_t quarter = c->ticktime_ms / 4;
  if (now - c->last_send >= quarter && c->out.len == c->out_sent)
    {
      static const uint8_t tick[4];
      etf_put_bytes (&c->out, tick, 4);
      c->last_send = now;
    }
  int64_t next_send = c->last_send + quarter - now;
  int64_t next_recv = c->last_recv + c->ticktime_ms - now;
  int64_t next = next_send < next_recv ? next_send : next_recv;
  return next < 1 ? 1 : next;
}

/* ---------------------------------------------------------------- */
/* The I/O thread */

static void *
io_main (void *arg)
{
  (void) arg;
  struct pollfd *pfds = NULL;
  long *ids = NULL;
  size_t cap = 0;

  for (;;)
    {
      pthread_mutex_lock (&lock);
      if (stopping)
        {
          pthread_mutex_unlock (&lock);
          break;
        }
      if (lisp_signal_owed && events_head)
        signal_lisp_locked ();
      int64_t now = now_ms ();
      int64_t timeout = -1;
      size_t n = 0, count = 1;
      for (conn *c = conns; c; c = c->next)
        count++;
      if (count > cap)
        {
          struct pollfd *np = realloc (pfds, count * sizeof *np);
          if (np)
            pfds = np;
          long *ni = realloc (ids, count * sizeof *ni);
          if (ni)
            ids = ni;
          if (!np || !ni)
            {
              pthread_mutex_unlock (&lock);
              sleep (1);  /* out of memory: try again later */
              continue;
            }
          cap = count;
        }
      for (conn *c = conns, *next; c; c = next)
        {
          next = c->next;
          long id = c->id;
          if (c->state == C_RESOLVING)
            {
              int64_t t = timers_locked (c, now);
              if (t >= 0 && (timeout < 0 || t < timeout))
                timeout = t;
              continue;
            }
          if (c->fd == -2)
            {
              /* Resolved: connect to EPMD.  */
              c->fd = -1;
              if (!open_socket (c, (uint16_t) c->epmd_port))
                {
                  char reason[200];
                  snprintf (reason, sizeof reason,
                            "cannot open a socket to %s: %s", c->host,
                            strerror (errno));
                  kill_conn_locked (c, NODE_ERR_EPMD, reason);
                  continue;
                }
            }
          int64_t t = timers_locked (c, now);
          if (!find_conn (id))
            continue;
          if (!flush_locked (c))
            {
              kill_conn_locked (c, c->state == C_UP ? NODE_ERR_CLOSED
                                                    : NODE_ERR_CONNECT,
                                "connection lost while writing");
              continue;
            }
          if (t >= 0 && (timeout < 0 || t < timeout))
            timeout = t;
          bool paused = c->state == C_UP && queued_bytes > QUEUE_HIGH_WATER;
          if (paused)
            /* Not reading is our doing, not the node's silence.  */
            c->last_recv = now;
          pfds[n].fd = c->fd;
          pfds[n].events = (short) ((c->state == C_EPMD_CONNECT
                                     || c->state == C_CONNECT)
                                      ? POLLOUT
                                      : (paused ? 0 : POLLIN)
                                        | (wants_write (c) ? POLLOUT : 0));
          pfds[n].revents = 0;
          ids[n] = id;
          n++;
        }
      pfds[n].fd = wake_pipe[0];
      pfds[n].events = POLLIN;
      pfds[n].revents = 0;
      pthread_mutex_unlock (&lock);

      int rc = poll (pfds, n + 1, timeout < 0 ? -1
                                  : timeout > 60000 ? 60000 : (int) timeout);
      if (rc < 0 && errno != EINTR)
        continue;

      if (pfds[n].revents)
        {
          char buf[256];
          while (read (wake_pipe[0], buf, sizeof buf) > 0)
            ;
        }

      pthread_mutex_lock (&lock);
      for (size_t k = 0; k < n && rc > 0; k++)
        {
          if (!pfds[k].revents)
            continue;
          conn *c = find_conn (ids[k]);
          if (!c || c->fd != pfds[k].fd)
            continue;
          if (c->state == C_EPMD_CONNECT || c->state == C_CONNECT)
            {
              connected_locked (c);
              continue;
            }
          if (pfds[k].revents & POLLOUT)
            {
              if (!flush_locked (c))
                {
                  kill_conn_locked (c, NODE_ERR_CLOSED,
                                    "connection lost while writing");
                  continue;
                }
            }
          if (pfds[k].revents & (POLLIN | POLLHUP | POLLERR))
            read_input_locked (c);
        }
      pthread_mutex_unlock (&lock);
    }
  free (pfds);
  free (ids);
  return NULL;
}

/* ---------------------------------------------------------------- */
/* The main thread's side */

bool
node_running (void)
{
  return running;
}

bool
node_start (int fd, const char **error)
{
  pthread_mutex_lock (&lock);
  if (running)
    {
      if (event_fd >= 0 && event_fd != fd)
        close (event_fd);
      event_fd = fd;
      /* Events queued for the old channel must wake the new one.  */
      if (events_head)
        {
          lisp_signal_owed = true;
          wake_io_thread ();
        }
      pthread_mutex_unlock (&lock);
      return true;
    }
  if (pipe2 (wake_pipe, O_NONBLOCK | O_CLOEXEC) < 0)
    {
      pthread_mutex_unlock (&lock);
      *error = "cannot create the wake-up pipe";
      return false;
    }
  event_fd = fd;
  stopping = false;
  /* The I/O thread must never take Emacs's signals: block them all in
     it (it inherits our mask at creation).  */
  sigset_t all, old;
  sigfillset (&all);
  pthread_sigmask (SIG_SETMASK, &all, &old);
  int rc = pthread_create (&io_thread, NULL, io_main, NULL);
  pthread_sigmask (SIG_SETMASK, &old, NULL);
  if (rc != 0)
    {
      close (wake_pipe[0]);
      close (wake_pipe[1]);
      wake_pipe[0] = wake_pipe[1] = -1;
      event_fd = -1;
      pthread_mutex_unlock (&lock);
      *error = "cannot start the I/O thread";
      return false;
    }
  running = true;
  pthread_mutex_unlock (&lock);
  return true;
}

void
node_stop (void)
{
  pthread_mutex_lock (&lock);
  if (!running)
    {
      pthread_mutex_unlock (&lock);
      return;
    }
  stopping = true;
  wake_io_thread ();
  pthread_mutex_unlock (&lock);
  pthread_join (io_thread, NULL);

  pthread_mutex_lock (&lock);
  while (conns)
    {
      conn *c = conns;
      conns = c->next;
      free_conn (c);
    }
  node_free_events (events_head);
  events_head = events_tail = NULL;
  queued_bytes = 0;
  if (event_fd >= 0)
    close (event_fd);
  event_fd = -1;
  close (wake_pipe[0]);
  close (wake_pipe[1]);
  wake_pipe[0] = wake_pipe[1] = -1;
  running = false;
  pthread_mutex_unlock (&lock);
}

static conn *
new_conn (conn_kind kind, const char *host, int epmd_port,
          unsigned timeout_ms)
{
  conn *c = calloc (1, sizeof *c);
  if (!c)
    return NULL;
  c->kind = kind;
  c->fd = -1;
  c->state = C_RESOLVING;
  c->epmd_port = epmd_port;
  c->host = strdup (host);
  c->deadline = now_ms () + (timeout_ms ? timeout_ms : 10000);
  etf_buf_init (&c->in);
  etf_buf_init (&c->early);
  etf_buf_init (&c->out);
  etf_buf_init (&c->pending);
  if (!c->host)
    {
      free (c);
      return NULL;
    }
  return c;
}

/* Link C in and start resolving; returns its id or -1.  */
static long
add_conn (conn *c)
{
  pthread_mutex_lock (&lock);
  if (!running)
    {
      pthread_mutex_unlock (&lock);
      free_conn (c);
      return -1;
    }
  c->id = next_id++;
  c->next = conns;
  conns = c;
  long id = c->id;
  if (!start_resolver (c))
    {
      kill_conn_locked (c, NODE_ERR_HOST, "cannot start a resolver thread");
    }
  pthread_mutex_unlock (&lock);
  return id;
}

long
node_connect (const node_connect_args *a)
{
  conn *c = new_conn (Q_NODE, a->host, a->epmd_port, a->connect_timeout_ms);
  if (!c)
    return -1;
  c->alive = strdup (a->alive);
  c->our_name = strdup (a->our_name);
  c->cookie = malloc (a->cookie_len ? a->cookie_len : 1);
  if (!c->alive || !c->our_name || !c->cookie)
    {
      free_conn (c);
      return -1;
    }
  memcpy (c->cookie, a->cookie, a->cookie_len);
  c->cookie_len = a->cookie_len;
  c->creation = a->creation;
  c->flags = a->flags;
  c->ticktime_ms = a->ticktime_ms;
  c->max_message = a->max_message;
  return add_conn (c);
}

long
node_epmd_port_please (const char *host, int epmd_port, const char *alive,
                       unsigned timeout_ms)
{
  conn *c = new_conn (Q_PORT_PLEASE, host, epmd_port, timeout_ms);
  if (!c)
    return -1;
  if (!(c->alive = strdup (alive)))
    {
      free_conn (c);
      return -1;
    }
  return add_conn (c);
}

long
node_epmd_names (const char *host, int epmd_port, unsigned timeout_ms)
{
  conn *c = new_conn (Q_NAMES, host, epmd_port, timeout_ms);
  if (!c)
    return -1;
  return add_conn (c);
}

bool
node_send (long id, const uint8_t *control, size_t control_len,
           const uint8_t *message, size_t message_len)
{
  pthread_mutex_lock (&lock);
  conn *c = find_conn (id);
  if (!c || c->kind != Q_NODE)
    {
      pthread_mutex_unlock (&lock);
      return false;
    }
  bool ok;
  if (c->state != C_UP)
    {
      queue_pending (c, control, control_len, message, message_len);
      ok = c->pending.status == ETF_OK;
    }
  else
    {
      bool idle = c->out.len == c->out_sent;
      dist_put_frame (&c->out, c->use_header, control, control_len, message,
                      message_len);
      ok = c->out.status == ETF_OK;
      /* Write at once when we can: no thread switch on the way out.  */
      if (ok && idle && (!flush_locked (c) || c->out.len > c->out_sent))
        wake_io_thread ();
    }
  pthread_mutex_unlock (&lock);
  return ok;
}

void
node_close (long id)
{
  pthread_mutex_lock (&lock);
  conn *c = find_conn (id);
  if (c)
    {
      c->close_requested = true;
      kill_conn_locked (c, NODE_ERR_LOCAL, "closed");
      wake_io_thread ();
    }
  pthread_mutex_unlock (&lock);
}

node_event *
node_take_events (void)
{
  pthread_mutex_lock (&lock);
  node_event *evs = events_head;
  events_head = events_tail = NULL;
  if (queued_bytes > QUEUE_HIGH_WATER)
    wake_io_thread ();  /* it may have stopped reading */
  queued_bytes = 0;
  pthread_mutex_unlock (&lock);
  return evs;
}

void
node_free_events (node_event *ev)
{
  while (ev)
    {
      node_event *next = ev->next;
      free (ev->data);
      free (ev->atom_refs);
      free (ev);
      ev = next;
    }
}
