/* derl-module.c --- the Emacs module: load-time set-up and the functions
   that Lisp calls.  Everything here is private to lisp/; the public API is
   the Lisp layer's.  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#include <emacs-module.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "digest.h"
#include "dist.h"
#include "epmd.h"
#include "etf.h"
#include "handshake.h"
#include "lispterm.h"
#include "node.h"

#define EXPORT __attribute__ ((visibility ("default")))

EXPORT int plugin_is_GPL_compatible;

static bool initialized;

/* ---------------------------------------------------------------- */
/* Argument helpers */

static bool
arg_true (emacs_env *env, emacs_value v)
{
  return env->is_not_nil (env, v);
}

/* A non-negative integer argument, or FALLBACK when it is nil.  */
static size_t
arg_size (emacs_env *env, emacs_value v, size_t fallback)
{
  if (!env->is_not_nil (env, v))
    return fallback;
  intmax_t i = env->extract_integer (env, v);
  if (env->non_local_exit_check (env) != emacs_funcall_exit_return)
    return fallback;
  return i < 0 ? 0 : (size_t) i;
}

#define DEFAULT_MAX_DEPTH 100000
#define DEFAULT_MAX_SIZE ((size_t) 128 << 20)

/* ---------------------------------------------------------------- */
/* Exported functions */

static emacs_value
fdecode (emacs_env *env, ptrdiff_t nargs, emacs_value *args, void *data)
{
  (void) data;
  lispterm_options opt = {
    .binaries_tagged = nargs > 1 && arg_true (env, args[1]),
    .max_depth = nargs > 2 ? arg_size (env, args[2], DEFAULT_MAX_DEPTH)
                           : DEFAULT_MAX_DEPTH,
  };
  size_t max_size = nargs > 3 ? arg_size (env, args[3], DEFAULT_MAX_SIZE)
                              : DEFAULT_MAX_SIZE;
  size_t len;
  uint8_t *bytes = lispterm_string_bytes (env, args[0], &len);
  if (!bytes)
    return NULL;

  etf_reader r;
  uint8_t *inflated = NULL;
  emacs_value result = NULL;
  if (etf_open (&r, bytes, len, max_size, &inflated) == ETF_OK)
    {
      result = lispterm_decode (env, &r, &opt);
      if (result && etf_expect_end (&r) != ETF_OK)
        result = NULL;
    }
  if (!result
      && env->non_local_exit_check (env) == emacs_funcall_exit_return)
    lispterm_signal_decode_error (env, &r, inflated != NULL);
  free (inflated);
  free (bytes);
  return result;
}

static emacs_value
fencode (emacs_env *env, ptrdiff_t nargs, emacs_value *args, void *data)
{
  (void) data;
  lispterm_options opt = {
    .binaries_tagged = false,
    .max_depth = nargs > 2 ? arg_size (env, args[2], DEFAULT_MAX_DEPTH)
                           : DEFAULT_MAX_DEPTH,
  };
  int level = 0;
  if (nargs > 1 && arg_true (env, args[1]))
    {
      level = 6;
      if (env->eq (env, env->type_of (env, args[1]),
                   env->intern (env, "integer")))
        {
          intmax_t l = env->extract_integer (env, args[1]);
          level = l < 1 ? 1 : l > 9 ? 9 : (int) l;
        }
    }
  etf_buf out;
  etf_buf_init (&out);
  etf_put_version (&out);
  emacs_value result = NULL;
  if (lispterm_encode (env, args[0], &out, &opt))
    {
      if (level)
        etf_compress (&out, 1, level);
      if (out.status == ETF_OK)
        result = lispterm_unibyte (env, out.data, out.len);
      else
        lispterm_signal (env, "erlext-encode-error", out.error, args[0]);
    }
  etf_buf_free (&out);
  return result;
}

/* ---------------------------------------------------------------- */
/* Connections */

/* What we offer: all OTP 26 requires, plus monitors, SEND_SENDER,
   payload exits, spawn, aliases, and the atom cache in distribution
   headers (we still send pass-through frames).  Not published: a hidden node, as
   Distel's, that does not join the cluster's mesh.  */
#define OUR_FLAGS                                                        \
  (DFLAG_EXTENDED_REFERENCES | DFLAG_DIST_MONITOR | DFLAG_FUN_TAGS      \
   | DFLAG_DIST_MONITOR_NAME | DFLAG_NEW_FUN_TAGS                       \
   | DFLAG_EXTENDED_PIDS_PORTS | DFLAG_EXPORT_PTR_TAG                   \
   | DFLAG_BIT_BINARIES | DFLAG_NEW_FLOATS | DFLAG_UNICODE_IO           \
   | DFLAG_SMALL_ATOM_TAGS | DFLAG_UTF8_ATOMS | DFLAG_MAP_TAG            \
   | DFLAG_DIST_HDR_ATOM_CACHE                                          \
   | DFLAG_BIG_CREATION | DFLAG_SEND_SENDER | DFLAG_BIG_SEQTRACE_LABELS   \
   | DFLAG_EXIT_PAYLOAD | DFLAG_HANDSHAKE_23 | DFLAG_UNLINK_ID           \
   | DFLAG_SPAWN | DFLAG_V4_NC | DFLAG_ALIAS | DFLAG_MANDATORY_25_DIGEST)

static bool
ok (emacs_env *env)
{
  return env->non_local_exit_check (env) == emacs_funcall_exit_return;
}

static emacs_value
sym (emacs_env *env, const char *name)
{
  return env->intern (env, name);
}

static emacs_value
list (emacs_env *env, ptrdiff_t n, emacs_value *items)
{
  return env->funcall (env, sym (env, "list"), n, items);
}

/* A string argument as a NUL-terminated malloc'd C string (UTF-8).  */
static char *
arg_cstring (emacs_env *env, emacs_value v)
{
  size_t len;
  uint8_t *bytes = lispterm_string_bytes (env, v, &len);
  if (bytes && memchr (bytes, 0, len))
    {
      free (bytes);
      lispterm_signal (env, "derl-error", "string contains a NUL byte", v);
      return NULL;
    }
  return (char *) bytes;
}

static intmax_t
arg_int (emacs_env *env, emacs_value v)
{
  return env->extract_integer (env, v);
}

static emacs_value
fstart (emacs_env *env, ptrdiff_t nargs, emacs_value *args, void *data)
{
  (void) nargs, (void) data;
  int fd = env->open_channel (env, args[0]);
  if (!ok (env))
    return NULL;
  const char *error = NULL;
  if (!node_start (fd, &error))
    {
      close (fd);
      lispterm_signal (env, "derl-error", error, NULL);
      return NULL;
    }
  return sym (env, "t");
}

static emacs_value
fstop (emacs_env *env, ptrdiff_t nargs, emacs_value *args, void *data)
{
  (void) nargs, (void) args, (void) data;
  node_stop ();
  return sym (env, "nil");
}

static emacs_value
connect_result (emacs_env *env, long id)
{
  if (id < 0)
    {
      lispterm_signal (env, "derl-error",
                       node_running () ? "out of memory"
                                       : "the derl I/O thread is not running",
                       NULL);
      return NULL;
    }
  return env->make_integer (env, id);
}

/* (derl--module-connect ALIVE HOST EPMD-PORT COOKIE OUR-NAME CREATION
   TICKTIME-MS TIMEOUT-MS MAX-MESSAGE-SIZE)  */
static emacs_value
fconnect (emacs_env *env, ptrdiff_t nargs, emacs_value *args, void *data)
{
  (void) nargs, (void) data;
  char *alive = arg_cstring (env, args[0]);
  char *host = alive ? arg_cstring (env, args[1]) : NULL;
  size_t cookie_len = 0;
  uint8_t *cookie = host ? lispterm_string_bytes (env, args[3], &cookie_len)
                         : NULL;
  char *our = cookie ? arg_cstring (env, args[4]) : NULL;
  emacs_value result = NULL;
  if (our)
    {
      node_connect_args a = {
        .alive = alive,
        .host = host,
        .epmd_port = (int) arg_int (env, args[2]),
        .cookie = cookie,
        .cookie_len = cookie_len,
        .our_name = our,
        .creation = (uint32_t) arg_int (env, args[5]),
        .flags = OUR_FLAGS,
        .ticktime_ms = (unsigned) arg_int (env, args[6]),
        .connect_timeout_ms = (unsigned) arg_int (env, args[7]),
        .max_message = (size_t) arg_int (env, args[8]),
      };
      if (ok (env))
        result = connect_result (env, node_connect (&a));
    }
  free (alive);
  free (host);
  if (cookie)
    {
      digest_wipe (cookie, cookie_len);
      free (cookie);
    }
  free (our);
  return result;
}

/* (derl--module-send CONN CONTROL [MESSAGE]): encode and queue.  */
static emacs_value
fsend (emacs_env *env, ptrdiff_t nargs, emacs_value *args, void *data)
{
  (void) data;
  long id = (long) arg_int (env, args[0]);
  if (!ok (env))
    return NULL;
  lispterm_options opt = { .binaries_tagged = false,
                           .max_depth = DEFAULT_MAX_DEPTH };
  /* Both terms into one buffer, without version bytes: node.c frames
     them as the connection agreed.  */
  etf_buf out;
  etf_buf_init (&out);
  emacs_value result = NULL;
  bool good = lispterm_encode (env, args[1], &out, &opt);
  size_t control_len = out.len;
  if (good && nargs > 2)
    good = lispterm_encode (env, args[2], &out, &opt);
  if (good && out.status == ETF_OK)
    {
      bool sent = node_send (id, out.data, control_len,
                             nargs > 2 ? out.data + control_len : NULL,
                             out.len - control_len);
      result = sym (env, sent ? "t" : "nil");
    }
  else if (good)
    lispterm_signal (env, "erlext-encode-error",
                     out.error ? out.error : "message too large", args[1]);
  etf_buf_free (&out);
  return result;
}

static emacs_value
fclose (emacs_env *env, ptrdiff_t nargs, emacs_value *args, void *data)
{
  (void) nargs, (void) data;
  long id = (long) arg_int (env, args[0]);
  if (ok (env))
    node_close (id);
  return sym (env, "nil");
}

static emacs_value
fepmd_port_please (emacs_env *env, ptrdiff_t nargs, emacs_value *args,
                   void *data)
{
  (void) nargs, (void) data;
  char *host = arg_cstring (env, args[0]);
  char *alive = host ? arg_cstring (env, args[2]) : NULL;
  emacs_value result = NULL;
  if (alive)
    {
      int port = (int) arg_int (env, args[1]);
      unsigned timeout = (unsigned) arg_int (env, args[3]);
      if (ok (env))
        result = connect_result (env, node_epmd_port_please (host, port,
                                                             alive, timeout));
    }
  free (host);
  free (alive);
  return result;
}

static emacs_value
fepmd_names (emacs_env *env, ptrdiff_t nargs, emacs_value *args, void *data)
{
  (void) nargs, (void) data;
  char *host = arg_cstring (env, args[0]);
  emacs_value result = NULL;
  if (host)
    {
      int port = (int) arg_int (env, args[1]);
      unsigned timeout = (unsigned) arg_int (env, args[2]);
      if (ok (env))
        result = connect_result (env, node_epmd_names (host, port, timeout));
    }
  free (host);
  return result;
}

static const char *
error_symbol (node_error e)
{
  switch (e)
    {
    case NODE_ERR_HOST: return "host";
    case NODE_ERR_EPMD: return "epmd";
    case NODE_ERR_NOT_REGISTERED: return "not-registered";
    case NODE_ERR_CONNECT: return "connect";
    case NODE_ERR_AUTH: return "auth";
    case NODE_ERR_PROTOCOL: return "protocol";
    case NODE_ERR_REFUSED: return "refused";
    case NODE_ERR_TIMEOUT: return "timeout";
    case NODE_ERR_CLOSED: return "closed";
    case NODE_ERR_TICK: return "tick";
    case NODE_ERR_TOO_LARGE: return "too-large";
    case NODE_ERR_LOCAL: return "local";
    default: return "unknown";
    }
}

/* Decode the term at OFFSET (a version byte) of EV's frame.  */
static emacs_value
frame_term (emacs_env *env, const node_event *ev, size_t offset, size_t len,
            const lispterm_options *opt, const char **why)
{
  etf_reader r;
  size_t skip = ev->frame.versioned ? 1 : 0;
  etf_reader_init (&r, ev->data + offset + skip, len - skip);
  r.atom_refs = ev->atom_refs;
  r.atom_ref_count = ev->frame.atom_ref_count;
  emacs_value v = lispterm_decode (env, &r, opt);
  if (!v && ok (env))
    *why = r.error ? r.error : "cannot decode";
  return v;
}

static emacs_value
frame_event (emacs_env *env, const node_event *ev, const lispterm_options *opt)
{
  const char *why = NULL;
  emacs_value items[4];
  items[0] = sym (env, "frame");
  items[1] = env->make_integer (env, ev->id);
  items[2] = frame_term (env, ev, ev->frame.control_offset,
                         ev->frame.control_len, opt, &why);
  ptrdiff_t n = 3;
  if (items[2] && ev->frame.message_len)
    {
      items[3] = frame_term (env, ev, ev->frame.message_offset,
                             ev->frame.message_len, opt, &why);
      n = 4;
      if (!items[3])
        items[2] = NULL;
    }
  if (items[2])
    return list (env, n, items);
  if (!ok (env))
    {
      /* An Emacs limit (integer-width, memory): report, don't lose the
         other events.  */
      env->non_local_exit_clear (env);
      why = "the message exceeds an Emacs limit";
    }
  items[0] = sym (env, "bad-frame");
  items[2] = lispterm_string (env, why ? why : "cannot decode");
  return list (env, 3, items);
}

static emacs_value
names_event (emacs_env *env, const node_event *ev)
{
  emacs_value head = sym (env, "nil");
  emacs_value *pairs = NULL;
  size_t n = 0, cap = 0, pos = 0;
  epmd_name_entry e;
  const char *why;
  epmd_result r;
  while ((r = epmd_names_next (ev->data, ev->len, &pos, &e, &why)) == EPMD_OK)
    {
      if (n == cap)
        {
          size_t ncap = cap ? 2 * cap : 16;
          emacs_value *np = realloc (pairs, ncap * sizeof *np);
          if (!np)
            break;
          pairs = np;
          cap = ncap;
        }
      emacs_value kv[2] = { env->make_string (env, e.name,
                                              (ptrdiff_t) e.name_len),
                            env->make_integer (env, e.port) };
      pairs[n++] = env->funcall (env, sym (env, "cons"), 2, kv);
    }
  emacs_value items[3] = { sym (env, "epmd-names"),
                           env->make_integer (env, ev->id), head };
  if (r == EPMD_BAD_RESPONSE)
    {
      items[0] = sym (env, "epmd-error");
      emacs_value e4[4] = { items[0], items[1], sym (env, "epmd"),
                            lispterm_string (env, why) };
      free (pairs);
      return list (env, 4, e4);
    }
  items[2] = list (env, (ptrdiff_t) n, pairs);
  free (pairs);
  return list (env, 3, items);
}

static emacs_value
event_value (emacs_env *env, const node_event *ev, const lispterm_options *opt)
{
  emacs_value id = env->make_integer (env, ev->id);
  emacs_value items[5];
  switch (ev->kind)
    {
    case NODE_EV_UP:
      items[0] = sym (env, "up");
      items[1] = id;
      items[2] = env->make_string (env, ev->peer_name,
                                   (ptrdiff_t) strlen (ev->peer_name));
      items[3] = env->make_integer (env, ev->peer_creation);
      items[4] = env->make_integer (env, (intmax_t) ev->peer_flags);
      return list (env, 5, items);
    case NODE_EV_DOWN:
    case NODE_EV_EPMD_ERROR:
      items[0] = sym (env, ev->kind == NODE_EV_DOWN ? "down" : "epmd-error");
      items[1] = id;
      items[2] = sym (env, error_symbol (ev->error));
      items[3] = lispterm_string (env, ev->reason);
      return list (env, 4, items);
    case NODE_EV_FRAME:
      return frame_event (env, ev, opt);
    case NODE_EV_EPMD_PORT:
      items[0] = sym (env, "epmd-port");
      items[1] = id;
      items[2] = env->make_integer (env, ev->port);
      items[3] = env->make_integer (env, ev->version);
      return list (env, 4, items);
    case NODE_EV_EPMD_NAMES:
      return names_event (env, ev);
    }
  return sym (env, "nil");
}

/* (derl--module-events LOSSLESS MAX-DEPTH): every pending event, oldest
   first.  */
static emacs_value
fevents (emacs_env *env, ptrdiff_t nargs, emacs_value *args, void *data)
{
  (void) data;
  lispterm_options opt = {
    .binaries_tagged = nargs > 0 && arg_true (env, args[0]),
    .max_depth = nargs > 1 ? arg_size (env, args[1], DEFAULT_MAX_DEPTH)
                           : DEFAULT_MAX_DEPTH,
  };
  node_event *evs = node_take_events ();
  size_t n = 0;
  for (node_event *e = evs; e; e = e->next)
    n++;
  emacs_value *items = malloc ((n ? n : 1) * sizeof *items);
  if (!items)
    {
      node_free_events (evs);
      lispterm_signal (env, "derl-error", "out of memory", NULL);
      return NULL;
    }
  size_t k = 0;
  for (node_event *e = evs; e; e = e->next)
    {
      emacs_value v = event_value (env, e, &opt);
      if (!ok (env))
        env->non_local_exit_clear (env);
      else
        items[k++] = v;
    }
  node_free_events (evs);
  emacs_value result = list (env, (ptrdiff_t) k, items);
  free (items);
  return result;
}

/* ---------------------------------------------------------------- */
/* Load-time set-up */

static void
defun (emacs_env *env, const char *name, ptrdiff_t min, ptrdiff_t max,
       emacs_value (*fn) (emacs_env *, ptrdiff_t, emacs_value *, void *),
       const char *doc)
{
  emacs_value args[2] = {
    env->intern (env, name),
    env->make_function (env, min, max, fn, doc, NULL),
  };
  env->funcall (env, env->intern (env, "defalias"), 2, args);
}

EXPORT int
emacs_module_init (struct emacs_runtime *runtime)
{
  if ((size_t) runtime->size < sizeof *runtime)
    return 1;
  emacs_env *env = runtime->get_environment (runtime);
  /* make_unibyte_string and open_channel arrived in Emacs 28.  */
  if ((size_t) env->size < sizeof (struct emacs_env_28))
    return 2;

  if (!initialized)
    {
      if (!lispterm_init (env))
        return 3;
      initialized = true;
    }

  defun (env, "derl--module-decode", 1, 4, fdecode,
         "Decode STRING, an external term, to a Lisp value.\n\n"
         "(derl--module-decode STRING LOSSLESS MAX-DEPTH MAX-SIZE)");
  defun (env, "derl--module-encode", 1, 3, fencode,
         "Encode TERM as an external term, a unibyte string.\n\n"
         "(derl--module-encode TERM COMPRESS MAX-DEPTH)");
  defun (env, "derl--module-start", 1, 1, fstart,
         "Start the I/O thread, its events waking PIPE-PROCESS.\n\n"
         "(derl--module-start PIPE-PROCESS)");
  defun (env, "derl--module-stop", 0, 0, fstop,
         "Stop the I/O thread and close every connection.");
  defun (env, "derl--module-connect", 9, 9, fconnect,
         "Start connecting to a node; return the connection id.\n\n"
         "(derl--module-connect ALIVE HOST EPMD-PORT COOKIE OUR-NAME "
         "CREATION TICKTIME-MS TIMEOUT-MS MAX-MESSAGE-SIZE)");
  defun (env, "derl--module-send", 2, 3, fsend,
         "Queue a control message and optional message on CONN.\n\n"
         "(derl--module-send CONN CONTROL [MESSAGE])");
  defun (env, "derl--module-close", 1, 1, fclose,
         "Close connection CONN.\n\n(derl--module-close CONN)");
  defun (env, "derl--module-epmd-port-please", 4, 4, fepmd_port_please,
         "Ask EPMD on HOST:PORT for ALIVE's port; return the query id.\n\n"
         "(derl--module-epmd-port-please HOST PORT ALIVE TIMEOUT-MS)");
  defun (env, "derl--module-epmd-names", 3, 3, fepmd_names,
         "Ask EPMD on HOST:PORT for its names; return the query id.\n\n"
         "(derl--module-epmd-names HOST PORT TIMEOUT-MS)");
  defun (env, "derl--module-events", 0, 2, fevents,
         "Return every pending event, oldest first.\n\n"
         "(derl--module-events LOSSLESS MAX-DEPTH)");
  return 0;
}
