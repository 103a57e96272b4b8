/* derl_module.c --- the Emacs module: load-time set-up and the functions
   that Lisp calls.  Everything here is private to lisp/; the public API is
   the Lisp layer's.  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#include <emacs-module.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "digest.h"
#include "elisp.h"
#include "etf.h"
#include "etf_print.h"
#include "lispterm.h"
#include "node.h"
#include "stamps.h"
#include "tls.h"

#define EXPORT __attribute__ ((visibility ("default")))

EXPORT int plugin_is_GPL_compatible;

static bool initialized;

/* ---------------------------------------------------------------- */
/* Symbols, all interned once at load.  */

/* The events.  */
static emacs_value Qframes, Qtraced_frames, Qbad_frame, Qtoo_big, Qup, Qdown,
    Qepmd_error, Qepmd_port, Qepmd_names, Qderl_busy, Qlistening, Qaccepted,
    Qrefused, Qmerged, Qderl_tls_error;
/* The options of connecting and listening.  */
static emacs_value Qk_ticktime_ms, Qk_timeout_ms, Qk_max_message_size,
    Qk_max_send_queue, Qk_max_pending, Qk_tls, Qk_hold;
/* Error kinds, by node_error.  */
static emacs_value error_symbols[NODE_ERR_TLS + 1];
/* Who woke Lisp or sent, by stamp_by.  */
static emacs_value stamp_by_symbols[STAMP_BY_IO + 1];

static const char *error_name (node_error e);

static bool
intern_symbols (emacs_env *env)
{
  static const elisp_symbol_def symbols[] = {
    { &Qframes, "frames" },         { &Qbad_frame, "bad-frame" },
    { &Qtraced_frames, "traced-frames" }, { &Qtoo_big, "too-big" },
    { &Qup, "up" },                 { &Qdown, "down" },
    { &Qepmd_error, "epmd-error" }, { &Qepmd_port, "epmd-port" },
    { &Qepmd_names, "epmd-names" }, { &Qderl_busy, "derl-busy" },
    { &Qlistening, "listening" },   { &Qaccepted, "accepted" },
    { &Qrefused, "refused" },       { &Qmerged, "merged" },
    { &Qderl_tls_error, "derl-tls-error" },
    { &Qk_ticktime_ms, ":ticktime-ms" }, { &Qk_timeout_ms, ":timeout-ms" },
    { &Qk_max_message_size, ":max-message-size" },
    { &Qk_max_send_queue, ":max-send-queue" },
    { &Qk_max_pending, ":max-pending" }, { &Qk_tls, ":tls" },
    { &Qk_hold, ":hold" },
    { &stamp_by_symbols[STAMP_BY_PIPE], "pipe" },
    { &stamp_by_symbols[STAMP_BY_WAITER], "waiter" },
    { &stamp_by_symbols[STAMP_BY_SELF], "self" },
    { &stamp_by_symbols[STAMP_BY_MAIN], "main" },
    { &stamp_by_symbols[STAMP_BY_IO], "io" },
  };
  if (!elisp_intern_symbols (env, symbols, sizeof symbols / sizeof *symbols))
    return false;
  stamp_by_symbols[STAMP_BY_NONE] = Qnil;
  for (int e = NODE_ERR_NONE; e <= NODE_ERR_TLS; e++)
    error_symbols[e] = elisp_global_symbol (env, error_name (e));
  return elisp_ok (env);
}

/* ---------------------------------------------------------------- */
/* Argument helpers */

static bool
arg_true (emacs_env *env, ptrdiff_t nargs, emacs_value *args, ptrdiff_t k)
{
  return k < nargs && !elisp_nilp (env, args[k]);
}

/* A size limit: argument K when given and non-nil, else the value of
   VARIABLE (the Lisp option is the one place defaults live).  */
static size_t
arg_limit (emacs_env *env, ptrdiff_t nargs, emacs_value *args, ptrdiff_t k,
           emacs_value variable)
{
  emacs_value v = arg_true (env, nargs, args, k)
                    ? args[k] : elisp_symbol_value (env, variable);
  if (!elisp_ok (env))
    return 0;
  intmax_t i = env->extract_integer (env, v);
  return i < 0 ? 0 : (size_t) i;
}

static intmax_t
arg_int (emacs_env *env, emacs_value v)
{
  return env->extract_integer (env, v);
}

/* A string argument as a NUL-terminated malloc'd C string (UTF-8).  */
static char *
arg_cstring (emacs_env *env, emacs_value v)
{
  size_t len;
  uint8_t *bytes = elisp_string_bytes (env, v, &len);
  if (bytes && memchr (bytes, 0, len))
    {
      free (bytes);
      elisp_signal (env, Qderl_error, "string contains a NUL byte", v);
      return NULL;
    }
  return (char *) bytes;
}

/* ---------------------------------------------------------------- */
/* Exported functions */

static emacs_value
fdecode (emacs_env *env, ptrdiff_t nargs, emacs_value *args, void *data)
{
  (void) data;
  lispterm_options opt = {
    .binaries_tagged = arg_true (env, nargs, args, 1),
    .max_depth = arg_limit (env, nargs, args, 2, Qerlext_max_depth),
  };
  size_t max_size = arg_limit (env, nargs, args, 3, Qerlext_max_term_size);
  if (!elisp_ok (env))
    return NULL;
  size_t len;
  uint8_t *bytes = elisp_string_bytes (env, args[0], &len);
  if (!bytes)
    return NULL;

  etf_reader r;
  uint8_t *inflated = NULL;
  emacs_value result = NULL;
  emacs_value gc = elisp_gc_hold (env);
  if (elisp_ok (env) && etf_open (&r, bytes, len, max_size, &inflated) == ETF_OK)
    {
      result = lispterm_decode (env, &r, &opt);
      if (result && etf_expect_end (&r) != ETF_OK)
        result = NULL;
    }
  if (!result && elisp_ok (env))
    lispterm_signal_decode_error (env, &r, inflated != NULL);
  elisp_gc_restore (env, gc);
  free (inflated);
  free (bytes);
  return elisp_ok (env) ? result : NULL;
}

static emacs_value
fencode (emacs_env *env, ptrdiff_t nargs, emacs_value *args, void *data)
{
  (void) data;
  lispterm_options opt = {
    .binaries_tagged = false,
    .max_depth = arg_limit (env, nargs, args, 2, Qerlext_max_depth),
  };
  if (!elisp_ok (env))
    return NULL;
  int level = 0;
  if (arg_true (env, nargs, args, 1))
    {
      level = 6;
      if (elisp_eq (env, elisp_type_of (env, args[1]), Qinteger))
        {
          intmax_t l = env->extract_integer (env, args[1]);
          level = l < 1 ? 1 : l > 9 ? 9 : (int) l;
        }
    }
  etf_buf out;
  etf_buf_init (&out);
  etf_put_version (&out);
  emacs_value result = NULL;
  /* Encoding makes garbage (list and map copies) but the term is live:
     a collection now would only mark it.  */
  emacs_value gc = elisp_gc_hold (env);
  bool good = elisp_ok (env) && lispterm_encode (env, args[0], &out, &opt);
  elisp_gc_restore (env, gc);
  if (good && elisp_ok (env))
    {
      if (level)
        etf_compress (&out, 1, level);
      if (out.status == ETF_OK)
        result = elisp_unibyte (env, out.data, out.len);
      else
        lispterm_signal_encode_error (env, out.error, args[0]);
    }
  etf_buf_free (&out);
  return result;
}

/* ---------------------------------------------------------------- */
/* Connections */

/* Whether Emacs, listening, is a published node: its connections say
   so too.  LISTENER is the listener that made it so.  */
static bool published;
static long published_by;

static emacs_value
fstart (emacs_env *env, ptrdiff_t nargs, emacs_value *args, void *data)
{
  (void) nargs, (void) data;
  int fd = env->open_channel (env, args[0]);
  if (!elisp_ok (env))
    return NULL;
  const char *error = NULL;
  if (!node_start (fd, &error))
    {
      close (fd);
      elisp_signal (env, Qderl_error, error, NULL);
      return NULL;
    }
  return Qt;
}

static emacs_value
fstop (emacs_env *env, ptrdiff_t nargs, emacs_value *args, void *data)
{
  (void) env, (void) nargs, (void) args, (void) data;
  node_stop ();
  return Qnil;
}

static emacs_value
connect_result (emacs_env *env, long id)
{
  if (id < 0)
    {
      elisp_signal (env, Qderl_error,
                    node_running () ? "out of memory"
                                    : "the derl I/O thread is not running",
                    NULL);
      return NULL;
    }
  return env->make_integer (env, id);
}

/* Element K of vector V as a C string, or NULL for nil (or on error,
   then pending).  */
static char *
vector_cstring (emacs_env *env, emacs_value v, ptrdiff_t k)
{
  emacs_value item = env->vec_get (env, v, k);
  if (!elisp_ok (env) || elisp_nilp (env, item))
    return NULL;
  return arg_cstring (env, item);
}

/* A TLS context from [CERTFILE KEYFILE CACERTFILE VERIFY-PEER] (SERVER
   says which side), or NULL: for nil (plain TCP), and on failure, with
   `derl-tls-error' signalled.  */
static tls_context *
tls_from_options (emacs_env *env, emacs_value v, bool server)
{
  if (elisp_nilp (env, v))
    return NULL;
  char *cert = vector_cstring (env, v, 0);
  char *key = elisp_ok (env) ? vector_cstring (env, v, 1) : NULL;
  char *ca = elisp_ok (env) ? vector_cstring (env, v, 2) : NULL;
  emacs_value verify = elisp_ok (env) ? env->vec_get (env, v, 3) : NULL;
  tls_context *ctx = NULL;
  if (elisp_ok (env))
    {
      tls_options o = { .certfile = cert, .keyfile = key, .cacertfile = ca,
                        .verify_peer = !elisp_nilp (env, verify) };
      char error[600];
      ctx = tls_context_new (server, &o, error, sizeof error);
      if (!ctx)
        elisp_signal (env, Qderl_tls_error, error, NULL);
    }
  free (cert);
  free (key);
  free (ca);
  return ctx;
}

/* What connecting and listening take beyond who is who.  */
typedef struct
{
  session_limits limits;
  tls_context *tls;          /* NULL: plain TCP */
  unsigned max_pending;      /* listening only */
  emacs_value hold;          /* listening only: see hold_back_from */
} conn_options;

/* OPTIONS, a plist, into *O: :ticktime-ms, :timeout-ms (to connect, or
   for an incoming handshake), :max-message-size, :max-send-queue (0 or
   absent: no limit), :tls (nil for plain TCP, else [CERTFILE KEYFILE
   CACERTFILE VERIFY-PEER]), and for a listener (SERVER) :max-pending
   and :hold.  Absent numbers are 0.  The caller frees O->tls.  */
static void
options_from (emacs_env *env, emacs_value options, bool server,
              conn_options *o)
{
  *o = (conn_options) { .hold = Qnil };
  o->limits.max_depth = arg_limit (env, 0, NULL, 0, Qerlext_max_depth);
  emacs_value tls = Qnil;
  while (elisp_ok (env) && !elisp_nilp (env, options))
    {
      emacs_value key = elisp_call1 (env, Qcar, options);
      emacs_value rest = elisp_call1 (env, Qcdr, options);
      emacs_value v = elisp_call1 (env, Qcar, rest);
      options = elisp_call1 (env, Qcdr, rest);
      if (!elisp_ok (env))
        return;
      if (env->eq (env, key, Qk_ticktime_ms))
        o->limits.ticktime_ms = (unsigned) arg_int (env, v);
      else if (env->eq (env, key, Qk_timeout_ms))
        o->limits.timeout_ms = (unsigned) arg_int (env, v);
      else if (env->eq (env, key, Qk_max_message_size))
        o->limits.max_message = (size_t) arg_int (env, v);
      else if (env->eq (env, key, Qk_max_send_queue))
        o->limits.max_send_queue = (size_t) arg_int (env, v);
      else if (env->eq (env, key, Qk_tls))
        tls = v;
      else if (server && env->eq (env, key, Qk_max_pending))
        o->max_pending = (unsigned) arg_int (env, v);
      else if (server && env->eq (env, key, Qk_hold))
        o->hold = v;
      else
        elisp_signal (env, Qderl_error, "unknown option", key);
    }
  if (elisp_ok (env))
    o->tls = tls_from_options (env, tls, server);
}

/* (derl--module-connect ALIVE HOST EPMD-PORT COOKIE OUR-NAME CREATION
   OPTIONS), OPTIONS as for options_from.  */
static emacs_value
fconnect (emacs_env *env, ptrdiff_t nargs, emacs_value *args, void *data)
{
  (void) data;
  (void) nargs;
  conn_options o;
  options_from (env, args[6], false, &o);
  tls_context *tls = o.tls;
  if (!elisp_ok (env))
    return NULL;
  char *alive = arg_cstring (env, args[0]);
  char *host = alive ? arg_cstring (env, args[1]) : NULL;
  size_t cookie_len = 0;
  uint8_t *cookie = host ? elisp_string_bytes (env, args[3], &cookie_len)
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
        .published = published,
        .limits = o.limits,
        .tls = tls,
      };
      tls = NULL;  /* node_connect takes it */
      if (elisp_ok (env))
        result = connect_result (env, node_connect (&a));
      else
        tls_context_free (a.tls);
    }
  tls_context_free (tls);
  free (alive);
  free (host);
  digest_free (cookie, cookie_len);
  free (our);
  return result;
}

/* Encode CONTROL and MESSAGE (NULL for none) into OUT.  With FORM
   below 0, as bare terms without version bytes, for node_send to
   frame (*LEN: the control's length); else as one whole frame of FORM
   (see node_frame_form; *LEN: the bytes of both terms).  False with
   an error pending on failure.  */
static bool
encode_request (emacs_env *env, emacs_value control, emacs_value message,
                int form, etf_buf *out, size_t *len)
{
  lispterm_options opt = {
    .binaries_tagged = false,
    .max_depth = arg_limit (env, 0, NULL, 0, Qerlext_max_depth),
  };
  if (!elisp_ok (env))
    return false;
  bool framed = form >= 0;
  size_t start = framed ? node_frame_begin (out, form) : 0;
  size_t begin = out->len;
  emacs_value gc = elisp_gc_hold (env);
  bool good = elisp_ok (env) && lispterm_encode (env, control, out, &opt);
  *len = out->len - begin;
  if (good && message)
    {
      if (framed)
        node_frame_message (out, form);
      begin = out->len;
      good = lispterm_encode (env, message, out, &opt);
      if (framed)
        *len += out->len - begin;
    }
  elisp_gc_restore (env, gc);
  if (!good || !elisp_ok (env))
    return false;
  if (framed)
    node_frame_end (out, start);
  if (out->status != ETF_OK)
    {
      lispterm_signal_encode_error (env, out->error ? out->error
                                                    : "message too large",
                                    message ? message : control);
      return false;
    }
  return true;
}

/* (derl--module-send CONN CONTROL [MESSAGE]): encode and queue.
   C-g while a big message is encoded quits before anything is queued:
   the message is then not sent at all.  Once queued it goes out and
   this returns normally.  A connection that is up gets the frame
   encoded in place; one that is not gets the terms, framed once it
   is up.  */
static emacs_value
fsend (emacs_env *env, ptrdiff_t nargs, emacs_value *args, void *data)
{
  (void) data;
  long id = (long) arg_int (env, args[0]);
  if (!elisp_ok (env))
    return NULL;
  if (stamps_on ())
    {
      stamp (STAMP_SEND);
      stamp_at (STAMP_ENCODED, 0);
      stamp_at (STAMP_SENT, 0);
    }
  emacs_value message = nargs > 2 ? args[2] : NULL;
  etf_buf out;
  etf_buf_init (&out);
  size_t len = 0;
  int form = node_frame_form (id);
  bool encoded = encode_request (env, args[1], message, form, &out, &len);
  emacs_value result = NULL;
  if (encoded && env->process_input (env) == emacs_process_input_continue)
    {
      stamp (STAMP_ENCODED);
      node_send_result r
        = form >= 0 ? node_send_frame (id, &out, len)
                    : node_send (id, out.data, len,
                                 message ? out.data + len : NULL,
                                 out.len - len);
      if (r == NODE_SEND_BUSY)
        elisp_signal (env, Qderl_busy,
                      "the output queue to the node is full "
                      "(derl-max-send-queue); nothing was sent", NULL);
      result = r == NODE_SEND_OK ? Qt : Qnil;
    }
  etf_buf_free (&out);
  return result;
}

static emacs_value
fclose (emacs_env *env, ptrdiff_t nargs, emacs_value *args, void *data)
{
  (void) nargs, (void) data;
  long id = (long) arg_int (env, args[0]);
  if (elisp_ok (env))
    node_close (id);
  if (published && id == published_by)
    published = false;
  return Qnil;
}

/* HOLD, [MAX-FAILURES WINDOW-MS HOLD-MS MAX-HOLD-MS] or nil (never
   hold an address back), into A (see node_listen_args).  */
static void
hold_back_from (emacs_env *env, emacs_value hold, node_listen_args *a)
{
  if (elisp_nilp (env, hold))
    return;
  unsigned *to[4] = { &a->max_failures, &a->failure_window_ms,
                      &a->hold_back_ms, &a->max_hold_back_ms };
  if (env->vec_size (env, hold) != 4)
    {
      if (elisp_ok (env))
        elisp_signal (env, Qderl_error,
                      "holding back wants [MAX-FAILURES WINDOW-MS HOLD-MS "
                      "MAX-HOLD-MS]", hold);
      return;
    }
  for (int k = 0; k < 4 && elisp_ok (env); k++)
    {
      intmax_t v = arg_int (env, env->vec_get (env, hold, k));
      /* A day at most: any longer is forever.  */
      *to[k] = v < 0 ? 0 : v > 86400000 ? 86400000 : (unsigned) v;
    }
}

/* (derl--module-listen ADDRESS PORT ALIVE OUR-NAME COOKIE EPMD-PORT
   PUBLISHED OPTIONS): (LISTENER-ID REGISTRATION-ID PORT).  OPTIONS as
   for options_from.  */
static emacs_value
flisten (emacs_env *env, ptrdiff_t nargs, emacs_value *args, void *data)
{
  (void) data;
  conn_options o;
  options_from (env, args[7], true, &o);
  tls_context *tls = o.tls;
  if (!elisp_ok (env))
    return NULL;
  char *address = arg_cstring (env, args[0]);
  char *alive = address ? arg_cstring (env, args[2]) : NULL;
  char *our = alive ? arg_cstring (env, args[3]) : NULL;
  size_t cookie_len = 0;
  uint8_t *cookie = our ? elisp_string_bytes (env, args[4], &cookie_len)
                        : NULL;
  emacs_value result = NULL;
  if (cookie)
    {
      bool publish = arg_true (env, nargs, args, 6);
      node_listen_args a = {
        .address = address,
        .port = (int) arg_int (env, args[1]),
        .alive = alive,
        .epmd_port = (int) arg_int (env, args[5]),
        .cookie = cookie,
        .cookie_len = cookie_len,
        .our_name = our,
        .published = publish,
        .limits = o.limits,
        .max_pending = o.max_pending,
        .tls = tls,
      };
      hold_back_from (env, o.hold, &a);
      tls = NULL;  /* node_listen takes it */
      char error[400];
      int port = 0;
      long alive_id = 0;
      long id = 0;
      if (elisp_ok (env))
        id = node_listen (&a, &port, &alive_id, error, sizeof error);
      else
        tls_context_free (a.tls);
      if (id < 0)
        elisp_signal (env, Qderl_error, error, NULL);
      else if (elisp_ok (env))
        {
          published = publish;
          published_by = id;
          emacs_value items[3] = { elisp_integer (env, id),
                                   elisp_integer (env, alive_id),
                                   elisp_integer (env, port) };
          result = elisp_list (env, 3, items);
        }
      digest_free (cookie, cookie_len);
    }
  tls_context_free (tls);
  free (address);
  free (alive);
  free (our);
  return result;
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
      if (elisp_ok (env))
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
      if (elisp_ok (env))
        result = connect_result (env, node_epmd_names (host, port, timeout));
    }
  free (host);
  return result;
}

/* (derl--module-stats CONN): (STATE MESSAGES-IN BYTES-IN MESSAGES-OUT
   BYTES-OUT DIRECTION TRANSPORT), all texts but the counts: DIRECTION
   "in" or "out", TRANSPORT "tcp" or "tls"; or nil when CONN is gone.  */
static emacs_value
fstats (emacs_env *env, ptrdiff_t nargs, emacs_value *args, void *data)
{
  (void) nargs, (void) data;
  long id = (long) arg_int (env, args[0]);
  node_conn_stats st;
  if (!elisp_ok (env) || !node_stats (id, &st))
    return Qnil;
  emacs_value items[] = {
    elisp_string (env, st.state),
    elisp_integer (env, (intmax_t) st.messages_in),
    elisp_integer (env, (intmax_t) st.bytes_in),
    elisp_integer (env, (intmax_t) st.messages_out),
    elisp_integer (env, (intmax_t) st.bytes_out),
    elisp_string (env, st.incoming ? "in" : "out"),
    elisp_string (env, st.tls ? "tls" : "tcp"),
  };
  return elisp_list (env, 7, items);
}

static const char *
error_name (node_error e)
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
    case NODE_ERR_NAME_IN_USE: return "name-in-use";
    case NODE_ERR_TLS: return "tls";
    default: return "unknown";
    }
}

/* The symbol for error kind E.  */
static emacs_value
error_symbol (node_error e)
{
  return e <= NODE_ERR_TLS ? error_symbols[e] : error_symbols[NODE_ERR_NONE];
}

/* A reader of the term at OFFSET (a version byte) of EV's frame.  */
static void
frame_reader (etf_reader *r, const node_event *ev, size_t offset, size_t len)
{
  size_t skip = ev->frame.versioned ? 1 : 0;
  etf_reader_init (r, ev->data + offset + skip, len - skip);
  r->atom_refs = ev->atom_refs;
  r->atom_ref_count = ev->frame.atom_ref_count;
}

/* Decode the term at OFFSET (a version byte) of EV's frame.  */
static emacs_value
frame_term (emacs_env *env, const node_event *ev, size_t offset, size_t len,
            const lispterm_options *opt, const char **why)
{
  etf_reader r;
  frame_reader (&r, ev, offset, len);
  emacs_value v = lispterm_decode (env, &r, opt);
  if (!v && elisp_ok (env))
    *why = r.error ? r.error : "cannot decode";
  return v;
}

/* Longest term the module prints for a trace line; longer limits are
   left to the Lisp printer.  */
#define TRACE_TERM_MAX 1024

/* Room for the text of one trace line.  */
#define TRACE_TEXT_MAX (3 * (TRACE_TERM_MAX + 1))

/* Print into BUF (TRACE_TEXT_MAX bytes) what the trace line of a SEND,
   SEND_SENDER or REG_SEND frame shows after its label: the terms
   derl.el's handlers print (the addressee, the sender and name where
   there are, and the message), each at most LIMIT characters, in
   ASCII.  Return its length, or -1 when the Lisp printer must print
   them.  */
static ptrdiff_t
frame_trace_print (const node_event *ev, bool tagged, size_t limit, char *buf)
{
  if (!ev->frame.message_len || limit == 0 || limit > TRACE_TERM_MAX)
    return -1;
  etf_reader r;
  frame_reader (&r, ev, ev->frame.control_offset, ev->frame.control_len);
  etf_item it;
  if (etf_read_item (&r, &it) != ETF_OK || it.kind != ETF_TUPLE)
    return -1;
  uint32_t arity = it.v.arity;
  if (arity < 3 || arity > 4 || etf_read_item (&r, &it) != ETF_OK
      || it.kind != ETF_INT)
    return -1;
  unsigned shown;   /* bit K: the control's element K */
  switch (it.v.i)
    {
    case DOP_SEND: shown = 1u << 2; break;
    case DOP_SEND_SENDER: shown = 1u << 1 | 1u << 2; break;
    case DOP_REG_SEND: shown = 1u << 1 | 1u << 3; break;
    default: return -1;
    }
  etf_text text = { buf, 0, TRACE_TEXT_MAX };
  for (uint32_t k = 1; k < arity; k++)
    {
      if (!(shown & 1u << k))
        {
          if (etf_skip_terms (&r, 1) != ETF_OK)
            return -1;
          continue;
        }
      if (text.len > 0)
        {
          if (text.len == text.cap)
            return -1;
          buf[text.len++] = ' ';
        }
      if (!etf_print_term (&r, tagged, limit, &text))
        return -1;
    }
  frame_reader (&r, ev, ev->frame.message_offset, ev->frame.message_len);
  if (text.len == text.cap)
    return -1;
  buf[text.len++] = ' ';
  if (!etf_print_term (&r, tagged, limit, &text))
    return -1;
  return (ptrdiff_t) text.len;
}

/* A frame whose terms cost Emacs less than this is built with garbage
   collection free to run: a collection marks little of it.  */
#define GC_HOLD_MIN ((uint64_t) 256 << 10)

/* What EV's terms will cost Emacs, in bytes (see etf_cost); the
   control's alone in *CONTROL.  */
static uint64_t
frame_cost (const node_event *ev, const lispterm_options *opt,
            uint64_t *control)
{
  *control = etf_cost_total (&ev->frame.control_cost, opt->binaries_tagged);
  return *control + etf_cost_total (&ev->frame.message_cost,
                                    opt->binaries_tagged);
}

/* (too-big ID ESTIMATE CONTROL) for a frame that would cost Emacs
   ESTIMATE bytes, over the limit: the message is not built.  CONTROL is
   the control tuple when it is within the limit itself (WITH_CONTROL)
   and decodes, else nil.  NULL with a quit pending.  */
static emacs_value
too_big_event (emacs_env *env, const node_event *ev,
               const lispterm_options *opt, uint64_t estimate,
               bool with_control)
{
  emacs_value items[4] = { Qtoo_big, elisp_integer (env, ev->id),
                           elisp_integer (env, (intmax_t) estimate), Qnil };
  if (with_control)
    {
      const char *why = NULL;
      emacs_value control = frame_term (env, ev, ev->frame.control_offset,
                                        ev->frame.control_len, opt, &why);
      if (elisp_quit_pending (env))
        return NULL;
      if (!elisp_ok (env))
        env->non_local_exit_clear (env);  /* an Emacs limit: no control */
      else if (control)
        items[3] = control;
    }
  return elisp_list (env, 4, items);
}

/* What a frame made: its terms, or another event in their place.  */
typedef enum { FRAME_TERMS, FRAME_OTHER, FRAME_QUIT } frame_outcome;

/* A frame's terms: CONTROL and MESSAGE (nil for none), and the length
   of its trace line's terms as the module printed them into the
   caller's buffer (-1 when it did not).  */
typedef struct
{
  emacs_value control, message;
  ptrdiff_t text_len;
} frame_parts;

/* Make the terms of frame EV into PARTS (FRAME_TERMS).  When a term
   does not decode, *OTHER is (bad-frame ID REASON); when the frame
   would cost Emacs more than MAX_MEMORY bytes (0: no limit), (too-big
   ...) (FRAME_OTHER).  With TRACE_LIMIT non-zero, the module prints
   the frame's trace line into TEXT (TRACE_TEXT_MAX bytes) where it
   can: see frame_trace_print.
   FRAME_QUIT with a quit pending: the frame is left as it is, to be
   decoded again from the start.  */
static frame_outcome
frame_terms (emacs_env *env, const node_event *ev, const lispterm_options *opt,
             size_t trace_limit, uint64_t max_memory, char *text,
             frame_parts *parts, emacs_value *other)
{
  uint64_t control_cost;
  uint64_t cost = frame_cost (ev, opt, &control_cost);
  if (max_memory && cost > max_memory)
    {
      *other = too_big_event (env, ev, opt, cost, control_cost <= max_memory);
      return *other ? FRAME_OTHER : FRAME_QUIT;
    }

  const char *why = NULL;
  parts->message = Qnil;
  parts->text_len = trace_limit ? frame_trace_print (ev, opt->binaries_tagged,
                                                     trace_limit, text)
                                : -1;
  /* Garbage collection is held off while one big frame is built (a
     collection would mark the half-built term again and again), and
     never longer: the frame's cost is bounded by MAX_MEMORY.  */
  emacs_value gc = cost >= GC_HOLD_MIN ? elisp_gc_hold (env) : NULL;
  emacs_value control = NULL;
  if (elisp_ok (env))
    control = frame_term (env, ev, ev->frame.control_offset,
                          ev->frame.control_len, opt, &why);
  if (control && ev->frame.message_len)
    {
      parts->message = frame_term (env, ev, ev->frame.message_offset,
                                   ev->frame.message_len, opt, &why);
      if (!parts->message)
        control = NULL;
    }
  elisp_gc_restore (env, gc);
  if (control && elisp_ok (env))
    {
      parts->control = control;
      return FRAME_TERMS;
    }
  if (elisp_quit_pending (env))
    return FRAME_QUIT;  /* not an error: the caller keeps the frame */
  if (!elisp_ok (env))
    {
      /* An Emacs limit (integer-width, memory): report, don't lose the
         other events.  */
      env->non_local_exit_clear (env);
      why = "the message exceeds an Emacs limit";
    }
  emacs_value items[3] = { Qbad_frame, elisp_integer (env, ev->id),
                           elisp_string (env, why ? why : "cannot decode") };
  *other = elisp_list (env, 3, items);
  return elisp_ok (env) ? FRAME_OTHER : FRAME_QUIT;
}

/* (epmd-names ID ((NAME . PORT) ...)), in EPMD's order.  */
static emacs_value
names_event (emacs_env *env, const node_event *ev)
{
  emacs_value pairs = Qnil;
  for (size_t k = ev->name_count; k-- > 0;)
    {
      const node_epmd_name *e = &ev->names[k];
      emacs_value name = env->make_string (env, e->name, (ptrdiff_t) e->len);
      pairs = elisp_cons (env, elisp_cons (env, name,
                                           elisp_integer (env, e->port)),
                          pairs);
    }
  emacs_value items[3] = { Qepmd_names, elisp_integer (env, ev->id), pairs };
  return elisp_list (env, 3, items);
}

/* (refused LISTENER-ID KIND ADDRESS REASON REFUSED CLOSED HOLD-MS NAME):
   a report of the connections from ADDRESS refused since the last
   one, REASON and KIND the last's; NAME, the name it claimed, is only
   ever a string (printable ASCII, see node_refusal) or nil.  */
static emacs_value
refused_event (emacs_env *env, const node_event *ev, emacs_value id)
{
  const node_refusal *r = (const node_refusal *) ev->bytes;
  emacs_value items[9] = {
    Qrefused, id, error_symbol (ev->error),
    elisp_string (env, r->address), elisp_string (env, ev->reason),
    elisp_integer (env, r->refused), elisp_integer (env, r->closed),
    elisp_integer (env, r->hold_ms),
    r->name ? elisp_string (env, r->name) : Qnil,
  };
  return elisp_list (env, 9, items);
}

/* EV, any event but a frame, as a Lisp value.  */
static emacs_value
event_value (emacs_env *env, const node_event *ev)
{
  emacs_value id = elisp_integer (env, ev->id);
  emacs_value items[5];
  switch (ev->kind)
    {
    case NODE_EV_UP:
    case NODE_EV_ACCEPTED:
      items[0] = ev->kind == NODE_EV_UP ? Qup : Qaccepted;
      items[1] = id;
      items[2] = env->make_string (env, ev->peer_name,
                                   (ptrdiff_t) strlen (ev->peer_name));
      items[3] = elisp_integer (env, ev->peer_creation);
      items[4] = elisp_integer (env, (intmax_t) ev->peer_flags);
      return elisp_list (env, 5, items);
    case NODE_EV_DOWN:
    case NODE_EV_EPMD_ERROR:
      items[0] = ev->kind == NODE_EV_DOWN ? Qdown : Qepmd_error;
      items[1] = id;
      items[2] = error_symbol (ev->error);
      items[3] = elisp_string (env, ev->reason);
      return elisp_list (env, 4, items);
    case NODE_EV_FRAME:
      break;  /* see frame_group */
    case NODE_EV_EPMD_PORT:
      items[0] = Qepmd_port;
      items[1] = id;
      items[2] = elisp_integer (env, ev->port);
      items[3] = elisp_integer (env, ev->version);
      return elisp_list (env, 4, items);
    case NODE_EV_EPMD_NAMES:
      return names_event (env, ev);
    case NODE_EV_LISTENING:
      items[0] = Qlistening;
      items[1] = id;
      items[2] = elisp_integer (env, ev->port);
      items[3] = elisp_integer (env, ev->peer_creation);
      return elisp_list (env, 4, items);
    case NODE_EV_REFUSED:
      return refused_event (env, ev, id);
    case NODE_EV_MERGED:
      items[0] = Qmerged;
      items[1] = id;
      items[2] = elisp_integer (env, ev->into);
      return elisp_list (env, 3, items);
    }
  return Qnil;
}

/* EV, any event but a frame, as a Lisp value; when making it failed,
   (bad-frame ID REASON) with the error's message, so Lisp reports it
   rather than losing it.  NULL with a quit pending: EV is not taken.  */
static emacs_value
event_or_report (emacs_env *env, const node_event *ev)
{
  emacs_value v = event_value (env, ev);
  if (elisp_ok (env))
    return v;
  if (elisp_quit_pending (env))
    return NULL;
  emacs_value items[3] = { Qbad_frame, NULL, elisp_take_error_message (env) };
  items[1] = elisp_integer (env, ev->id);
  v = elisp_list (env, 3, items);
  return elisp_ok (env) ? v : NULL;
}

/* Frames in a row from one connection, made into one event:
   (frames ID CONTROL MESSAGE ...) or, while the module prints trace
   lines, (traced-frames ID TEXTS END CONTROL MESSAGE ...): two or
   three conses a frame, where an event of its own took five.  TEXTS
   holds the trace texts the module printed for the group's frames, one
   after another, in one unibyte string; END is where a frame's text
   ends in it (it begins where the last one before it ended, or at 0),
   or nil when the module did not print it.  */
typedef struct
{
  emacs_value items[3 + 3 * NODE_BATCH_EVENTS];
  size_t n;      /* items used; 0: no group under way */
  uint64_t id;
  bool traced;
  char *texts;   /* the traced group's texts, malloc'd, kept for reuse */
  size_t texts_len, texts_cap;
} frame_group;

/* End GROUP, if one is under way, into VALUES.  */
static void
end_group (emacs_env *env, frame_group *group, emacs_value *values, size_t *n)
{
  if (!group->n)
    return;
  if (group->traced)
    group->items[2] = elisp_unibyte (env, (const uint8_t *) group->texts,
                                     group->texts_len);
  values[(*n)++] = elisp_list (env, (ptrdiff_t) group->n, group->items);
  group->n = 0;
}

/* Append LEN bytes of TEXT to GROUP's texts; false when out of memory.  */
static bool
group_text (frame_group *group, const char *text, size_t len)
{
  if (len > group->texts_cap - group->texts_len)
    {
      size_t cap = group->texts_cap ? group->texts_cap : 64 * 1024;
      while (len > cap - group->texts_len)
        cap *= 2;
      char *texts = realloc (group->texts, cap);
      if (!texts)
        return false;
      group->texts = texts;
      group->texts_cap = cap;
    }
  memcpy (group->texts + group->texts_len, text, len);
  group->texts_len += len;
  return true;
}

/* Add PARTS, of a frame of connection ID, to GROUP, first ending it
   into VALUES when it holds another connection's; TEXT is the frame's
   trace text, PARTS.text_len bytes, when TRACED.  */
static void
group_frame (emacs_env *env, frame_group *group, bool traced, uint64_t id,
             const frame_parts *parts, const char *text, emacs_value *values,
             size_t *n)
{
  if (group->n && group->id != id)
    end_group (env, group, values, n);
  if (!group->n)
    {
      group->items[0] = traced ? Qtraced_frames : Qframes;
      group->items[1] = elisp_integer (env, (intmax_t) id);
      group->id = id;
      group->traced = traced;
      group->texts_len = 0;
      group->n = 2;
      if (traced)
        group->items[group->n++] = Qnil;  /* TEXTS, at the end */
    }
  if (traced)
    {
      bool printed = parts->text_len >= 0
                     && group_text (group, text, (size_t) parts->text_len);
      group->items[group->n++]
          = printed ? elisp_integer (env, (intmax_t) group->texts_len) : Qnil;
    }
  group->items[group->n++] = parts->control;
  group->items[group->n++] = parts->message;
}

/* (derl--module-events LOSSLESS MAX-DEPTH TRACE-LENGTH MAX-MEMORY): a
   batch of pending events, oldest first.  MAX-DEPTH nil means
   `erlext-max-depth'.  With TRACE-LENGTH a positive integer, the module
   prints the trace lines of messages it can, each term at most that
   long: see frame_trace_print; frames come grouped, see frame_group.  A message that would cost Emacs more than
   MAX-MEMORY bytes (nil or 0: no limit) is not built: see
   too_big_event.

   C-g is looked at before each event and every few thousand items of a
   term, and a quit never drops an event: the one being made and every
   later one go back to the head of the queue untouched (a frame is
   decoded again from its start next time).  Called with `inhibit-quit'
   non-nil (as a process filter runs), the module looks at `quit-flag'
   itself, and returns the events made so far with `quit-flag' still
   set: the caller delivers them, then lets the quit go on.  Called
   with quits allowed, it cannot return a value and quit as well (Emacs
   acts on `quit-flag' as a module function returns): the events made
   go back too, and the quit goes on at once.  */
static emacs_value
fevents (emacs_env *env, ptrdiff_t nargs, emacs_value *args, void *data)
{
  (void) data;
  lispterm_options opt = {
    .binaries_tagged = arg_true (env, nargs, args, 0),
    .max_depth = arg_limit (env, nargs, args, 1, Qerlext_max_depth),
  };
  size_t trace_limit = 0;
  if (elisp_ok (env) && arg_true (env, nargs, args, 2))
    {
      intmax_t n = arg_int (env, args[2]);
      trace_limit = n > 0 && n <= TRACE_TERM_MAX ? (size_t) n : 0;
    }
  uint64_t max_memory = 0;
  if (elisp_ok (env) && arg_true (env, nargs, args, 3))
    {
      intmax_t n = arg_int (env, args[3]);
      max_memory = n > 0 ? (uint64_t) n : 0;
    }
  if (elisp_ok (env))
    opt.quits_inhibited = elisp_quits_inhibited (env);
  if (!elisp_ok (env))
    return NULL;
  node_event *evs = node_take_events ();
  /* A batch is at most NODE_BATCH_EVENTS events.  */
  emacs_value values[NODE_BATCH_EVENTS];
  static frame_group group;  /* the main thread's alone */
  char text[TRACE_TEXT_MAX];
  size_t n = 0, made = 0;
  group.n = 0;
  node_event *e = evs, *last_done = NULL;
  for (; e && made < NODE_BATCH_EVENTS; last_done = e, e = e->next, made++)
    {
      if (elisp_quit_requested (env, opt.quits_inhibited))
        break;
      if (e->kind != NODE_EV_FRAME)
        {
          end_group (env, &group, values, &n);
          emacs_value v = event_or_report (env, e);
          if (!v)
            break;
          values[n++] = v;
          continue;
        }
      bool stamped = stamps_on ();
      if (stamped)
        stamp (STAMP_DECODE_START);
      frame_parts parts;
      emacs_value other = NULL;
      frame_outcome outcome = frame_terms (env, e, &opt, trace_limit,
                                           max_memory, text, &parts, &other);
      if (stamped)
        stamp (STAMP_DECODE_END);
      if (outcome == FRAME_QUIT)
        break;
      if (outcome == FRAME_TERMS)
        group_frame (env, &group, trace_limit != 0, e->id, &parts, text,
                     values, &n);
      else
        {
          end_group (env, &group, values, &n);
          values[n++] = other;
        }
    }
  /* With quits inhibited, a quit is ours: `quit-flag' says it still.  */
  if (opt.quits_inhibited)
    elisp_take_quit (env);
  /* The frames grouped so far were made: they go with the batch.  */
  if (elisp_ok (env))
    end_group (env, &group, values, &n);
  emacs_value result = Qnil;
  if (elisp_ok (env) && n > 0)
    result = elisp_list (env, (ptrdiff_t) n, values);
  if (elisp_quit_pending (env))
    {
      /* The quit goes on as it came: nothing of the batch reaches
         Lisp, so all of it goes back.  */
      node_requeue_events (evs);
      return NULL;
    }
  if (e && elisp_ok (env))
    {
      /* Not made yet (a quit): back to the head of the queue.  */
      if (last_done)
        last_done->next = NULL;
      else
        evs = NULL;
      node_requeue_events (e);
    }
  /* Events left here with an error pending could not even be reported
     (out of memory): the error says so.  */
  node_free_events (evs);
  return elisp_ok (env) ? result : NULL;
}

/* ---------------------------------------------------------------- */
/* Waiting for events without the event pipe */

/* Longest single block: C-g is looked at (process_input) this often.  */
#define WAIT_SLICE_US 5000

/* (derl--module-wait-events TIMEOUT-US &optional SPIN-US): block until
   an event is pending, at most TIMEOUT-US microseconds; t when one is.
   The first wait after a send polls without sleeping for SPIN-US
   first.  With TIMEOUT-US nil, end the waiting instead: events left
   pending wake the event pipe again.  */
static emacs_value
fwait_events (emacs_env *env, ptrdiff_t nargs, emacs_value *args, void *data)
{
  (void) data;
  if (elisp_nilp (env, args[0]))
    {
      node_wait_done ();
      return Qnil;
    }
  intmax_t left = arg_int (env, args[0]);
  intmax_t spin = nargs > 1 && !elisp_nilp (env, args[1])
                    ? arg_int (env, args[1]) : 0;
  if (!elisp_ok (env))
    return NULL;
  spin = spin < 0 ? 0 : spin > WAIT_SLICE_US ? WAIT_SLICE_US : spin;
  for (;;)
    {
      if (env->process_input (env) != emacs_process_input_continue)
        return NULL;
      unsigned slice = left > WAIT_SLICE_US ? WAIT_SLICE_US
                       : left > 0           ? (unsigned) left
                                            : 0;
      if (node_wait_events (slice, (unsigned) spin))
        return Qt;
      left -= slice;
      if (left <= 0)
        return Qnil;
    }
}

/* ---------------------------------------------------------------- */
/* Stage time stamps, for the benchmark */

static emacs_value
fset_stamping (emacs_env *env, ptrdiff_t nargs, emacs_value *args, void *data)
{
  (void) nargs, (void) data;
  stamps_set (!elisp_nilp (env, args[0]));
  return Qnil;
}

/* [RECV QUEUED WOKE DECODE-START DECODE-END SEND ENCODED SENT WOKE-BY
   SENT-BY]: times as `float-time' gives them, nil where none;
   WOKE-BY pipe, waiter, self (the waiting main thread read it) or
   nil, SENT-BY main, io or nil.  */
static emacs_value
fstamps (emacs_env *env, ptrdiff_t nargs, emacs_value *args, void *data)
{
  (void) nargs, (void) args, (void) data;
  double t[STAMP_COUNT];
  stamp_by woke, sent;
  stamps_get (t, &woke, &sent);
  emacs_value items[STAMP_COUNT + 2];
  for (int k = 0; k < STAMP_COUNT; k++)
    items[k] = t[k] > 0 ? env->make_float (env, t[k] / 1e6) : Qnil;
  items[STAMP_COUNT] = stamp_by_symbols[woke];
  items[STAMP_COUNT + 1] = stamp_by_symbols[sent];
  /* Qvector, the type name, is also the function.  */
  return elisp_call (env, Qvector, STAMP_COUNT + 2, items);
}

/* ---------------------------------------------------------------- */
/* Load-time set-up */

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
      if (!elisp_init (env) || !intern_symbols (env))
        return 3;
      initialized = true;
    }

  elisp_defun (env, "derl--module-decode", 1, 4, fdecode,
         "Decode STRING, an external term, to a Lisp value.\n\n"
         "(derl--module-decode STRING LOSSLESS MAX-DEPTH MAX-SIZE)");
  elisp_defun (env, "derl--module-encode", 1, 3, fencode,
         "Encode TERM as an external term, a unibyte string.\n\n"
         "(derl--module-encode TERM COMPRESS MAX-DEPTH)");
  elisp_defun (env, "derl--module-start", 1, 1, fstart,
         "Start the I/O thread, its events waking PIPE-PROCESS.\n\n"
         "(derl--module-start PIPE-PROCESS)");
  elisp_defun (env, "derl--module-stop", 0, 0, fstop,
         "Stop the I/O thread and close every connection.");
  elisp_defun (env, "derl--module-connect", 7, 7, fconnect,
         "Start connecting to a node; return the connection id.\n\n"
         "(derl--module-connect ALIVE HOST EPMD-PORT COOKIE OUR-NAME "
         "CREATION OPTIONS)\n\nOPTIONS is a plist: :ticktime-ms, "
         ":timeout-ms (to connect), :max-message-size, :max-send-queue "
         "(absent or 0: no limit), and :tls, nil for plain TCP, else "
         "[CERTFILE KEYFILE CACERTFILE VERIFY-PEER].");
  elisp_defun (env, "derl--module-send", 2, 3, fsend,
         "Queue a control message and optional message on CONN.\n\n"
         "(derl--module-send CONN CONTROL [MESSAGE])");
  elisp_defun (env, "derl--module-close", 1, 1, fclose,
         "Close connection CONN.\n\n(derl--module-close CONN)");
  elisp_defun (env, "derl--module-stats", 1, 1, fstats,
         "Return (STATE MESSAGES-IN BYTES-IN MESSAGES-OUT BYTES-OUT "
         "DIRECTION\nTRANSPORT) of CONN, or nil when it is gone.\n\n(derl--module-stats CONN)");
  elisp_defun (env, "derl--module-epmd-port-please", 4, 4, fepmd_port_please,
         "Ask EPMD on HOST:PORT for ALIVE's port; return the query id.\n\n"
         "(derl--module-epmd-port-please HOST PORT ALIVE TIMEOUT-MS)");
  elisp_defun (env, "derl--module-epmd-names", 3, 3, fepmd_names,
         "Ask EPMD on HOST:PORT for its names; return the query id.\n\n"
         "(derl--module-epmd-names HOST PORT TIMEOUT-MS)");
  elisp_defun (env, "derl--module-listen", 8, 8, flisten,
         "Listen for nodes and register with EPMD.\n\n"
         "(derl--module-listen ADDRESS PORT ALIVE OUR-NAME COOKIE EPMD-PORT "
         "PUBLISHED OPTIONS)\nReturn (LISTENER-ID REGISTRATION-ID PORT).  "
         "OPTIONS is a plist, as for `derl--module-connect' (:timeout-ms "
         "is the handshake's), and :max-pending, the handshakes under way "
         "at once, and :hold, nil (never hold an address back) or "
         "[MAX-FAILURES WINDOW-MS HOLD-MS MAX-HOLD-MS].");
  elisp_defun (env, "derl--module-events", 0, 4, fevents,
         "Return a batch of pending events, oldest first.\n\n"
         "With TRACE-LENGTH, print the trace lines of messages where the "
         "module can.  A message that would take more than MAX-MEMORY "
         "bytes in Emacs is not built: (too-big ID ESTIMATE CONTROL) "
         "stands for it.\n\nA quit keeps every event it stops: with "
         "`inhibit-quit' non-nil, return those made so far with "
         "`quit-flag' still set, the rest pending; else quit at once, "
         "all of them pending.\n\n"
         "(derl--module-events LOSSLESS MAX-DEPTH TRACE-LENGTH MAX-MEMORY)");
  elisp_defun (env, "derl--module-wait-events", 1, 2, fwait_events,
         "Wait at most TIMEOUT-US microseconds for an event; t if one is "
         "pending.\n\nThe first wait after a send polls for SPIN-US "
         "microseconds before it sleeps.  Quits on \\[keyboard-quit].  "
         "Once done waiting (however that ends), call it with nil: events "
         "left pending then wake the event pipe.\n\n"
         "(derl--module-wait-events TIMEOUT-US &optional SPIN-US)");
  elisp_defun (env, "derl--module-set-stamping", 1, 1, fset_stamping,
         "Take stage time stamps of messages when ON, clearing old ones.\n\n"
         "(derl--module-set-stamping ON)");
  elisp_defun (env, "derl--module-stamps", 0, 0, fstamps,
         "Return the last stage time stamps, a vector.\n\n"
         "[RECV QUEUED WOKE DECODE-START DECODE-END SEND ENCODED SENT "
         "WOKE-BY SENT-BY]: times as `float-time' gives them, nil where "
         "none.");
  return 0;
}
