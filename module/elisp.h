/* elisp.h --- a thin layer over the Emacs module API.

   Each module-API call the rest of the module needs, as a small named
   function, and the Lisp symbols it uses, interned once at load into
   globals.  Only the lispterm_*.c files and derl_module.c include
   this: everything else in module/ knows no Emacs.  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#ifndef DERL_ELISP_H
#define DERL_ELISP_H

#include <emacs-module.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Symbols, as global references made by `elisp_init'.  */
extern emacs_value Qnil, Qt, Qerl_tag;
/* Type names, as `type-of' returns them.  */
extern emacs_value Qinteger, Qfloat, Qsymbol, Qstring, Qcons, Qvector,
    Qhash_table;
/* The tags after erl-tag.  */
extern emacs_value Qerl_pid, Qerl_port, Qerl_ref, Qerl_new_ref, Qerl_fun,
    Qerl_export, Qerl_binary, Qerl_bitstring;
/* Functions the mapping calls.  */
extern emacs_value Qlist, Qmake_hash_table, Qputhash, Qintern, Qsymbol_name,
    Qcar, Qcdr, Qnreverse, Qproper_list_p, Qsafe_length, Qhash_table_count,
    Qmake_vector, Qsymbol_value,
    Qmultibyte_string_p, Qfunctionp, Qerror_message_string, Qdefalias,
    Qerlext_hash_table_flatten, Qerlext_list_chunk, Qerlext_list_start,
    Qerlext_small_map, Qerlext_shorten,
    Qerlext_unicode_text,
    Qerlext_binary_bytes, Qerlext_interpreted_function_p;
/* Keywords and other constants.  */
extern emacs_value Qk_test, Qk_size, Qequal, Qclosure, Qlambda;
/* Error conditions.  */
extern emacs_value Qderl_error, Qerlext_encode_error, Qerlext_decode_error;
/* Variables: the Lisp defaults are the only ones.  */
extern emacs_value Qerlext_max_depth, Qerlext_max_term_size,
    Qerlext_decode_binaries_as, Qgc_cons_threshold, Qset,
    Qmost_positive_fixnum, Qquit, Qquit_flag, Qinhibit_quit;

/* A global reference to the symbol NAME (ASCII), for callers' own
   symbols interned at load.  */
emacs_value elisp_global_symbol (emacs_env *env, const char *name);

/* Set each *VAR to a global reference to the symbol NAME.  */
typedef struct
{
  emacs_value *var;
  const char *name;
} elisp_symbol_def;
bool elisp_intern_symbols (emacs_env *env, const elisp_symbol_def *defs,
                           size_t n);

/* Intern every symbol above, once per process (later calls do nothing).
   False with a Lisp error pending on failure.  `erl-tag' must already be
   defined (erlext.el does it).  */
bool elisp_init (emacs_env *env);

/* True when no non-local exit is pending.  */
static inline bool
elisp_ok (emacs_env *env)
{
  return env->non_local_exit_check (env) == emacs_funcall_exit_return;
}

static inline emacs_value
elisp_call (emacs_env *env, emacs_value fn, ptrdiff_t n, emacs_value *args)
{
  return env->funcall (env, fn, n, args);
}

static inline emacs_value
elisp_call1 (emacs_env *env, emacs_value fn, emacs_value arg)
{
  return env->funcall (env, fn, 1, &arg);
}

static inline bool
elisp_eq (emacs_env *env, emacs_value a, emacs_value b)
{
  return env->eq (env, a, b);
}

static inline bool
elisp_nilp (emacs_env *env, emacs_value v)
{
  return !env->is_not_nil (env, v);
}

static inline emacs_value
elisp_type_of (emacs_env *env, emacs_value v)
{
  return env->type_of (env, v);
}

static inline emacs_value
elisp_integer (emacs_env *env, intmax_t i)
{
  return env->make_integer (env, i);
}

emacs_value elisp_list (emacs_env *env, ptrdiff_t n, emacs_value *items);
emacs_value elisp_vector (emacs_env *env, ptrdiff_t n, emacs_value *items);
emacs_value elisp_cons (emacs_env *env, emacs_value car, emacs_value cdr);

/* A multibyte Lisp string from a NUL-terminated UTF-8 C string.  */
emacs_value elisp_string (emacs_env *env, const char *s);
/* A unibyte string of LEN bytes.  */
emacs_value elisp_unibyte (emacs_env *env, const void *data, size_t len);

/* Copy a Lisp string's bytes (UTF-8 for multibyte text, raw bytes as
   themselves) into a malloc'd buffer; NULL with an error pending on
   failure.  */
uint8_t *elisp_string_bytes (emacs_env *env, emacs_value s, size_t *len);

/* The value of variable SYM.  */
emacs_value elisp_symbol_value (emacs_env *env, emacs_value sym);

/* Signal CONDITION with a message and an optional datum (NULL: none).  */
void elisp_signal (emacs_env *env, emacs_value condition,
                   const char *message, emacs_value datum);

/* The pending non-local exit as a message string, cleared.  */
emacs_value elisp_take_error_message (emacs_env *env);

/* Hold garbage collection off while a term is built: a collection
   inside would mark the half-built term again and again, and the result
   is live anyway.  Returns what `elisp_gc_restore' needs.  */
emacs_value elisp_gc_hold (emacs_env *env);

/* Put `gc-cons-threshold' back to SAVED (from `elisp_gc_hold'), also
   when a non-local exit is pending, which then stays pending, and also
   when C-g comes just then (the quit is then pending after it).  */
void elisp_gc_restore (emacs_env *env, emacs_value saved);

/* Whether the pending non-local exit is a quit: C-g (the signal
   `quit'), or the throw `while-no-input' makes of input.  */
bool elisp_quit_pending (emacs_env *env);

/* Clear a pending quit: true.  False, with nothing cleared, when what
   is pending (if anything) is no quit.  */
bool elisp_take_quit (emacs_env *env);

/* Whether `inhibit-quit' is non-nil.  */
bool elisp_quits_inhibited (emacs_env *env);

/* Has the user asked to quit?  Pending input is read first (that is
   how a graphical Emacs sees C-g).  With INHIBITED (`inhibit-quit'
   non-nil) Emacs quits nothing itself: a non-nil `quit-flag' is then
   turned into a quit of our own, so that the caller stops and unwinds
   as for any quit, `quit-flag' left as it is for Lisp to act on later.
   True with a quit pending.  */
bool elisp_quit_requested (emacs_env *env, bool inhibited);

/* (defalias NAME (lambda ...)) for a C function.  */
void elisp_defun (emacs_env *env, const char *name, ptrdiff_t min,
                  ptrdiff_t max,
                  emacs_value (*fn) (emacs_env *, ptrdiff_t, emacs_value *,
                                     void *),
                  const char *doc);

#endif /* DERL_ELISP_H */
