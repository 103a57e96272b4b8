/* derl-module.c --- the Emacs module: load-time set-up and the functions
   that Lisp calls.  Everything here is private to lisp/; the public API is
   the Lisp layer's.  */

#include <emacs-module.h>
#include <stdlib.h>
#include <string.h>

#include "etf.h"
#include "lispterm.h"

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
  return 0;
}
