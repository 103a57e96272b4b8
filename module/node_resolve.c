/* node_resolve.c --- host names looked up in short-lived helper threads,
   so that no look-up blocks the I/O thread or other connections.  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#define _GNU_SOURCE
#include "node_internal.h"

#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

  pthread_mutex_lock (&node_lock);
  conn *c = find_conn_locked (job->id);
  if (c && c->state == C_RESOLVING && !node_stopping)
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
          c->net.fd = FD_TO_OPEN;
        }
      node_wake_io_thread ();
    }
  pthread_mutex_unlock (&node_lock);
  if (res)
    freeaddrinfo (res);
  free (job->host);
  free (job);
  return NULL;
}

bool
start_resolver_locked (conn *c)
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

