/* bench_ei --- OTP's C client (erl_interface) as a benchmark peer.

   Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later

   The reference `make bench' measures Emacs against besides Erlang
   itself: a hidden C node made with erlang-dev's `ei', connected to
   one Erlang node, doing what an Emacs process does there.  derl
   never links it; bench/run.sh builds it into build/.

     bench-ei NODENAME COOKIE PEER

   connects as NODENAME (alive@host) with COOKIE to PEER (found through
   the EPMD at ERL_EPMD_PORT, as erl finds it), prints "ready" and
   then serves, until its standard input ends:

     - every message {seq, I} sent to it (by pid or by any registered
       name) is counted, with those out of order; the message `done'
       ends a stream: it prints "done RECEIVED DISORDERED MICROS",
       MICROS the wall-clock time (CLOCK_REALTIME, microseconds since
       the epoch) at which it took `done', and starts counting anew;
     - the line "rt N" on standard input makes N round trips to
       PEER's registered `echo': send {SelfPid, ping}, wait for ping;
       then it prints "rt MICROS", the time they took.

   Receiving is the blocking ei_xreceive_msg loop of ei's manual; ticks
   are answered inside it.  Every message is decoded.  */

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ei.h"

/* The stream being counted.  */
static long next_seq = 1;
static long received;
static long disordered;

static long long
now_us (int clock)
{
  struct timespec ts;

  clock_gettime (clock, &ts);
  return (long long) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
die (const char *what)
{
  fprintf (stderr, "bench-ei: %s (errno %d)\n", what, errno);
  exit (1);
}

/* Take one message of the stream, in BUF: {seq, I} or done.  Return 1
   if it was `done', 0 otherwise (anything else is ignored).  */
static int
take_stream_message (const char *buf)
{
  int index = 0;
  int version;
  int arity;
  int type;
  int size;
  char atom[MAXATOMLEN];
  long i;

  if (ei_decode_version (buf, &index, &version) < 0
      || ei_get_type (buf, &index, &type, &size) < 0)
    return 0;
  if (type == ERL_SMALL_TUPLE_EXT)
    {
      if (ei_decode_tuple_header (buf, &index, &arity) < 0 || arity != 2
          || ei_get_type (buf, &index, &type, &size) < 0
          || size >= MAXATOMLEN
          || ei_decode_atom (buf, &index, atom) < 0
          || strcmp (atom, "seq") != 0
          || ei_decode_long (buf, &index, &i) < 0)
        return 0;
      if (i != next_seq)
        disordered++;
      next_seq = i + 1;
      received++;
      return 0;
    }
  if (size < MAXATOMLEN && ei_decode_atom (buf, &index, atom) == 0
      && strcmp (atom, "done") == 0)
    return 1;
  return 0;
}

/* Receive what is readable on FD (one message or tick) and count it.
   If it ended a stream, print the stream's figures.  */
static void
receive_one (int fd, ei_x_buff *x)
{
  erlang_msg msg;
  int got;

  x->index = 0;
  got = ei_xreceive_msg (fd, &msg, x);
  if (got == ERL_ERROR)
    die ("the connection failed");
  if (got == ERL_MSG
      && (msg.msgtype == ERL_SEND || msg.msgtype == ERL_REG_SEND
          || msg.msgtype == ERL_SEND_TT || msg.msgtype == ERL_REG_SEND_TT)
      && take_stream_message (x->buff))
    {
      long long end = now_us (CLOCK_REALTIME);

      printf ("done %ld %ld %lld\n", received, disordered, end);
      fflush (stdout);
      next_seq = 1;
      received = 0;
      disordered = 0;
    }
}

/* Make N round trips to `echo' over FD as EC; return the microseconds.  */
static long long
round_trips (ei_cnode *ec, int fd, long n, ei_x_buff *x)
{
  ei_x_buff ping;
  long long start;
  long k;

  if (ei_x_new_with_version (&ping) < 0
      || ei_x_encode_tuple_header (&ping, 2) < 0
      || ei_x_encode_pid (&ping, ei_self (ec)) < 0
      || ei_x_encode_atom (&ping, "ping") < 0)
    die ("cannot encode the ping");
  start = now_us (CLOCK_MONOTONIC);
  for (k = 0; k < n; k++)
    {
      erlang_msg msg;
      int got;

      if (ei_reg_send (ec, fd, "echo", ping.buff, ping.index) < 0)
        die ("cannot send the ping");
      do
        {
          x->index = 0;
          got = ei_xreceive_msg (fd, &msg, x);
          if (got == ERL_ERROR)
            die ("the connection failed");
        }
      while (got != ERL_MSG);
    }
  ei_x_free (&ping);
  return now_us (CLOCK_MONOTONIC) - start;
}

int
main (int argc, char **argv)
{
  ei_cnode ec;
  ei_x_buff x;
  char alive[EI_MAXALIVELEN + 1];
  const char *at;
  int fd;
  char line[128];
  size_t used = 0;

  if (argc != 4)
    {
      fprintf (stderr, "usage: bench-ei NODENAME COOKIE PEER\n");
      return 2;
    }
  at = strchr (argv[1], '@');
  if (at == NULL || (size_t) (at - argv[1]) > EI_MAXALIVELEN
      || strlen (at + 1) > EI_MAXHOSTNAMELEN
      || strlen (argv[1]) >= MAXNODELEN || strlen (argv[3]) >= MAXNODELEN
      || strlen (argv[2]) >= EI_MAX_COOKIE_SIZE)
    {
      fprintf (stderr, "bench-ei: bad node name, cookie or peer\n");
      return 2;
    }
  memcpy (alive, argv[1], at - argv[1]);
  alive[at - argv[1]] = '\0';

  if (ei_init () != 0)
    die ("ei_init failed");
  if (ei_connect_xinit (&ec, at + 1, alive, argv[1], NULL, argv[2], 1) < 0)
    die ("ei_connect_xinit failed");
  fd = ei_connect (&ec, argv[3]);
  if (fd < 0)
    die ("cannot connect to the peer");
  if (ei_x_new (&x) < 0)
    die ("out of memory");
  printf ("ready\n");
  fflush (stdout);

  for (;;)
    {
      struct pollfd fds[2];

      fds[0].fd = fd;
      fds[0].events = POLLIN;
      fds[1].fd = STDIN_FILENO;
      fds[1].events = POLLIN;
      if (poll (fds, 2, -1) < 0)
        {
          if (errno == EINTR)
            continue;
          die ("poll failed");
        }
      if (fds[0].revents & (POLLIN | POLLHUP | POLLERR))
        receive_one (fd, &x);
      if (fds[1].revents & (POLLIN | POLLHUP | POLLERR))
        {
          ssize_t got = read (STDIN_FILENO, line + used,
                              sizeof line - 1 - used);
          char *newline;

          if (got <= 0)
            break;
          used += got;
          line[used] = '\0';
          while ((newline = strchr (line, '\n')) != NULL)
            {
              long n;

              *newline = '\0';
              if (sscanf (line, "rt %ld", &n) == 1 && n > 0)
                {
                  printf ("rt %lld\n", round_trips (&ec, fd, n, &x));
                  fflush (stdout);
                }
              used -= newline + 1 - line;
              memmove (line, newline + 1, used + 1);
            }
          if (used == sizeof line - 1)
            used = 0;           /* A line too long for any command.  */
        }
    }
  ei_x_free (&x);
  close (fd);
  return 0;
}
