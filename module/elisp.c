/* elisp.c --- a thin layer over the Emacs module API.  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#include "elisp.h"

#include <stdlib.h>
#include <string.h>

emacs_value Qnil, Qt, Qerl_tag;
emacs_value Qinteger, Qfloat, Qsymbol, Qstring, Qcons, Qvector, Qhash_table;
emacs_value Qerl_pid, Qerl_port, Qerl_ref, Qerl_new_ref, Qerl_fun, Qerl_export,
    Qerl_binary, Qerl_bitstring;
emacs_value Qlist, Qmake_hash_table, Qputhash, Qintern, Qsymbol_name, Qcar,
    Qcdr, Qnreverse, Qproper_list_p, Qsafe_length, Qhash_table_count,
    Qmake_vector, Qsymbol_value,
    Qmultibyte_string_p, Qfunctionp, Qerror_message_string, Qdefalias,
    Qerlext_hash_table_flatten, Qerlext_list_chunk, Qerlext_list_start,
    Qerlext_small_map, Qerlext_shorten,
    Qerlext_unicode_text,
    Qerlext_binary_bytes, Qerlext_interpreted_function_p;
emacs_value Qk_test, Qk_size, Qequal, Qclosure, Qlambda;
emacs_value Qderl_error, Qerlext_encode_error, Qerlext_decode_error;
emacs_value Qerlext_max_depth, Qerlext_max_term_size,
    Qerlext_decode_binaries_as, Qgc_cons_threshold, Qset,
    Qmost_positive_fixnum, Qquit, Qquit_flag, Qinhibit_quit;

static bool initialized;

emacs_value
elisp_global_symbol (emacs_env *env, const char *name)
{
  return env->make_global_ref (env, env->intern (env, name));
}

bool
elisp_intern_symbols (emacs_env *env, const elisp_symbol_def *defs, size_t n)
{
  for (size_t k = 0; k < n; k++)
    *defs[k].var = elisp_global_symbol (env, defs[k].name);
  return elisp_ok (env);
}

bool
elisp_init (emacs_env *env)
{
  if (initialized)
    return true;
  static const elisp_symbol_def symbols[] = {
    { &Qnil, "nil" },
    { &Qt, "t" },
    { &Qinteger, "integer" },
    { &Qfloat, "float" },
    { &Qsymbol, "symbol" },
    { &Qstring, "string" },
    { &Qcons, "cons" },
    { &Qvector, "vector" },
    { &Qhash_table, "hash-table" },
    { &Qerl_pid, "erl-pid" },
    { &Qerl_port, "erl-port" },
    { &Qerl_ref, "erl-ref" },
    { &Qerl_new_ref, "erl-new-ref" },
    { &Qerl_fun, "erl-fun" },
    { &Qerl_export, "erl-export" },
    { &Qerl_binary, "erl-binary" },
    { &Qerl_bitstring, "erl-bitstring" },
    { &Qlist, "list" },
    { &Qmake_hash_table, "make-hash-table" },
    { &Qputhash, "puthash" },
    { &Qintern, "intern" },
    { &Qsymbol_name, "symbol-name" },
    { &Qcar, "car" },
    { &Qcdr, "cdr" },
    { &Qnreverse, "nreverse" },
    { &Qproper_list_p, "proper-list-p" },
    { &Qsafe_length, "safe-length" },
    { &Qhash_table_count, "hash-table-count" },
    { &Qmake_vector, "make-vector" },
    { &Qsymbol_value, "symbol-value" },
    { &Qmultibyte_string_p, "multibyte-string-p" },
    { &Qfunctionp, "functionp" },
    { &Qerror_message_string, "error-message-string" },
    { &Qdefalias, "defalias" },
    { &Qerlext_hash_table_flatten, "erlext--hash-table-flatten" },
    { &Qerlext_list_chunk, "erlext--list-chunk" },
    { &Qerlext_list_start, "erlext--list-start" },
    { &Qerlext_small_map, "erlext--small-map" },
    { &Qerlext_shorten, "erlext--shorten" },
    { &Qerlext_unicode_text, "erlext--unicode-text" },
    { &Qerlext_binary_bytes, "erlext--binary-bytes" },
    { &Qerlext_interpreted_function_p, "erlext--interpreted-function-p" },
    { &Qclosure, "closure" },
    { &Qlambda, "lambda" },
    { &Qk_test, ":test" },
    { &Qk_size, ":size" },
    { &Qequal, "equal" },
    { &Qderl_error, "derl-error" },
    { &Qerlext_encode_error, "erlext-encode-error" },
    { &Qerlext_decode_error, "erlext-decode-error" },
    { &Qerlext_max_depth, "erlext-max-depth" },
    { &Qerlext_max_term_size, "erlext-max-term-size" },
    { &Qerlext_decode_binaries_as, "erlext-decode-binaries-as" },
    { &Qgc_cons_threshold, "gc-cons-threshold" },
    { &Qset, "set" },
    { &Qmost_positive_fixnum, "most-positive-fixnum" },
    { &Qquit, "quit" },
    { &Qquit_flag, "quit-flag" },
    { &Qinhibit_quit, "inhibit-quit" },
  };
  if (!elisp_intern_symbols (env, symbols, sizeof symbols / sizeof *symbols))
    return false;

  /* erl-tag is the uninterned symbol erlext.el made; use that object.  */
  emacs_value tag = elisp_symbol_value (env, env->intern (env, "erl-tag"));
  if (!elisp_ok (env))
    return false;
  Qerl_tag = env->make_global_ref (env, tag);
  initialized = elisp_ok (env);
  return initialized;
}

emacs_value
elisp_list (emacs_env *env, ptrdiff_t n, emacs_value *items)
{
  return env->funcall (env, Qlist, n, items);
}

emacs_value
elisp_vector (emacs_env *env, ptrdiff_t n, emacs_value *items)
{
  return env->funcall (env, Qvector, n, items);
}

emacs_value
elisp_cons (emacs_env *env, emacs_value car, emacs_value cdr)
{
  emacs_value pair[2] = { car, cdr };
  return env->funcall (env, Qcons, 2, pair);
}

emacs_value
elisp_string (emacs_env *env, const char *s)
{
  return env->make_string (env, s, (ptrdiff_t) strlen (s));
}

emacs_value
elisp_unibyte (emacs_env *env, const void *data, size_t len)
{
  /* Emacs copies with memcpy, which must not see a null pointer even
     for no bytes: an empty buffer may have none.  */
  if (len == 0)
    data = "";
  return env->make_unibyte_string (env, (const char *) data, (ptrdiff_t) len);
}

uint8_t *
elisp_string_bytes (emacs_env *env, emacs_value s, size_t *len)
{
  ptrdiff_t size = 0;
  if (!env->copy_string_contents (env, s, NULL, &size))
    return NULL;
  uint8_t *buf = malloc ((size_t) size);
  if (!buf)
    {
      elisp_signal (env, Qderl_error, "out of memory", NULL);
      return NULL;
    }
  if (!env->copy_string_contents (env, s, (char *) buf, &size))
    {
      free (buf);
      return NULL;
    }
  *len = (size_t) size - 1;  /* without the terminating NUL */
  return buf;
}

emacs_value
elisp_symbol_value (emacs_env *env, emacs_value sym)
{
  return env->funcall (env, Qsymbol_value, 1, &sym);
}

void
elisp_signal (emacs_env *env, emacs_value condition, const char *message,
              emacs_value datum)
{
  emacs_value args[2] = { elisp_string (env, message), datum };
  emacs_value data = elisp_list (env, datum ? 2 : 1, args);
  env->non_local_exit_signal (env, condition, data);
}

emacs_value
elisp_take_error_message (emacs_env *env)
{
  emacs_value symbol, data;
  enum emacs_funcall_exit kind = env->non_local_exit_get (env, &symbol, &data);
  env->non_local_exit_clear (env);
  if (kind == emacs_funcall_exit_throw)
    return elisp_string (env, "a `throw' with no `catch'");
  emacs_value message = elisp_call1 (env, Qerror_message_string,
                                     elisp_cons (env, symbol, data));
  if (elisp_ok (env))
    return message;
  env->non_local_exit_clear (env);
  return elisp_string (env, "an error that cannot be shown");
}

emacs_value
elisp_gc_hold (emacs_env *env)
{
  emacs_value saved = elisp_symbol_value (env, Qgc_cons_threshold);
  emacs_value args[2] = { Qgc_cons_threshold,
                          elisp_symbol_value (env, Qmost_positive_fixnum) };
  elisp_call (env, Qset, 2, args);
  return elisp_ok (env) ? saved : NULL;
}

/* The pending non-local exit, cleared: *SYMBOL and *DATA as
   non_local_exit_get gives them.  A pending exit makes the module API
   refuse most calls (`eq' among them), so it is looked at cleared.  */
static enum emacs_funcall_exit
take_exit (emacs_env *env, emacs_value *symbol, emacs_value *data)
{
  enum emacs_funcall_exit kind = env->non_local_exit_get (env, symbol, data);
  env->non_local_exit_clear (env);
  return kind;
}

static void
put_back_exit (emacs_env *env, enum emacs_funcall_exit kind,
               emacs_value symbol, emacs_value data)
{
  if (kind == emacs_funcall_exit_signal)
    env->non_local_exit_signal (env, symbol, data);
  else if (kind == emacs_funcall_exit_throw)
    env->non_local_exit_throw (env, symbol, data);
}

/* Whether an exit of KIND with SYMBOL is a quit.  Nothing the module
   calls throws: only `maybe_quit' does, for input under
   `while-no-input'.  */
static bool
is_quit (emacs_env *env, enum emacs_funcall_exit kind, emacs_value symbol)
{
  return kind == emacs_funcall_exit_throw
         || (kind == emacs_funcall_exit_signal
             && env->eq (env, symbol, Qquit));
}

void
elisp_gc_restore (emacs_env *env, emacs_value saved)
{
  if (!saved)
    return;
  emacs_value symbol = NULL, data = NULL;
  enum emacs_funcall_exit pending = take_exit (env, &symbol, &data);
  /* A C-g just now makes `funcall' quit before it sets anything, and
     clears `quit-flag': the next try sets, and the quit goes on after
     it, unless something else is pending already.  */
  emacs_value args[2] = { Qgc_cons_threshold, saved };
  for (int tries = 0; tries < 8; tries++)
    {
      elisp_call (env, Qset, 2, args);
      if (elisp_ok (env))
        break;
      emacs_value s, d;
      enum emacs_funcall_exit kind = take_exit (env, &s, &d);
      bool quit = is_quit (env, kind, s);
      if (pending == emacs_funcall_exit_return)
        {
          pending = kind;
          symbol = s;
          data = d;
        }
      if (!quit)
        break;
    }
  put_back_exit (env, pending, symbol, data);
}

bool
elisp_quit_pending (emacs_env *env)
{
  if (elisp_ok (env))
    return false;
  emacs_value symbol, data;
  enum emacs_funcall_exit kind = take_exit (env, &symbol, &data);
  bool quit = is_quit (env, kind, symbol);
  put_back_exit (env, kind, symbol, data);
  return quit;
}

bool
elisp_take_quit (emacs_env *env)
{
  if (elisp_ok (env))
    return false;
  emacs_value symbol, data;
  enum emacs_funcall_exit kind = take_exit (env, &symbol, &data);
  if (is_quit (env, kind, symbol))
    return true;
  put_back_exit (env, kind, symbol, data);
  return false;
}

bool
elisp_quits_inhibited (emacs_env *env)
{
  return !elisp_nilp (env, elisp_symbol_value (env, Qinhibit_quit));
}

bool
elisp_quit_requested (emacs_env *env, bool inhibited)
{
  if (env->process_input (env) != emacs_process_input_continue)
    return true;
  if (!inhibited || elisp_nilp (env, elisp_symbol_value (env, Qquit_flag)))
    return !elisp_ok (env) && elisp_quit_pending (env);
  env->non_local_exit_signal (env, Qquit, Qnil);
  return true;
}

void
elisp_defun (emacs_env *env, const char *name, ptrdiff_t min, ptrdiff_t max,
             emacs_value (*fn) (emacs_env *, ptrdiff_t, emacs_value *, void *),
             const char *doc)
{
  emacs_value args[2] = {
    env->intern (env, name),
    env->make_function (env, min, max, fn, doc, NULL),
  };
  env->funcall (env, Qdefalias, 2, args);
}
