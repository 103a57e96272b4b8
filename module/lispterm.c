/* lispterm.c --- External Term Format <-> Lisp values (DESIGN.md's mapping).

   Both directions walk the term with explicit heap stacks, never the C
   stack, so nesting depth is bounded only by `erlext-max-depth'.  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#include "lispterm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- */
/* Symbols and functions interned once at load.  */

static struct
{
  emacs_value nil, t, erl_tag;
  /* Type names as `type-of' returns them.  */
  emacs_value integer, float_, symbol, string, cons, vector, hash_table;
  /* Tags after erl-tag.  */
  emacs_value erl_pid, erl_port, erl_ref, erl_new_ref, erl_fun, erl_export,
      erl_binary, erl_bitstring;
  /* Functions.  */
  emacs_value list, vector_fn, cons_fn, make_hash_table, puthash, intern,
      symbol_name, car, cdr, proper_list_p, safe_length, vconcat,
      hash_table_flatten, symbol_value, multibyte_string_p;
  /* Keywords.  */
  emacs_value k_test, k_size, equal;
} q;

static emacs_value
global_symbol (emacs_env *env, const char *name)
{
  return env->make_global_ref (env, env->intern (env, name));
}

bool
lispterm_init (emacs_env *env)
{
  q.nil = global_symbol (env, "nil");
  q.t = global_symbol (env, "t");
  q.integer = global_symbol (env, "integer");
  q.float_ = global_symbol (env, "float");
  q.symbol = global_symbol (env, "symbol");
  q.string = global_symbol (env, "string");
  q.cons = global_symbol (env, "cons");
  q.vector = global_symbol (env, "vector");
  q.hash_table = global_symbol (env, "hash-table");
  q.erl_pid = global_symbol (env, "erl-pid");
  q.erl_port = global_symbol (env, "erl-port");
  q.erl_ref = global_symbol (env, "erl-ref");
  q.erl_new_ref = global_symbol (env, "erl-new-ref");
  q.erl_fun = global_symbol (env, "erl-fun");
  q.erl_export = global_symbol (env, "erl-export");
  q.erl_binary = global_symbol (env, "erl-binary");
  q.erl_bitstring = global_symbol (env, "erl-bitstring");
  q.list = global_symbol (env, "list");
  q.vector_fn = q.vector;
  q.cons_fn = q.cons;
  q.make_hash_table = global_symbol (env, "make-hash-table");
  q.puthash = global_symbol (env, "puthash");
  q.intern = global_symbol (env, "intern");
  q.symbol_name = global_symbol (env, "symbol-name");
  q.car = global_symbol (env, "car");
  q.cdr = global_symbol (env, "cdr");
  q.proper_list_p = global_symbol (env, "proper-list-p");
  q.safe_length = global_symbol (env, "safe-length");
  q.vconcat = global_symbol (env, "vconcat");
  q.hash_table_flatten = global_symbol (env, "erlext--hash-table-flatten");
  q.symbol_value = global_symbol (env, "symbol-value");
  q.multibyte_string_p = global_symbol (env, "multibyte-string-p");
  q.k_test = global_symbol (env, ":test");
  q.k_size = global_symbol (env, ":size");
  q.equal = global_symbol (env, "equal");

  /* erl-tag is the uninterned symbol erlext.el made; use that object.  */
  emacs_value tag_name = global_symbol (env, "erl-tag");
  emacs_value tag = env->funcall (env, q.symbol_value, 1, &tag_name);
  if (env->non_local_exit_check (env) != emacs_funcall_exit_return)
    return false;
  q.erl_tag = env->make_global_ref (env, tag);
  return env->non_local_exit_check (env) == emacs_funcall_exit_return;
}

/* ---------------------------------------------------------------- */
/* Small wrappers */

static inline emacs_value
call (emacs_env *env, emacs_value fn, ptrdiff_t n, emacs_value *args)
{
  return env->funcall (env, fn, n, args);
}

static inline bool
ok (emacs_env *env)
{
  return env->non_local_exit_check (env) == emacs_funcall_exit_return;
}

emacs_value
lispterm_string (emacs_env *env, const char *s)
{
  return env->make_string (env, s, (ptrdiff_t) strlen (s));
}

emacs_value
lispterm_unibyte (emacs_env *env, const void *data, size_t len)
{
  return env->make_unibyte_string (env, (const char *) data, (ptrdiff_t) len);
}

void
lispterm_signal (emacs_env *env, const char *condition, const char *message,
                 emacs_value datum)
{
  emacs_value args[2] = { lispterm_string (env, message), datum };
  emacs_value data = call (env, q.list, datum ? 2 : 1, args);
  env->non_local_exit_signal (env, env->intern (env, condition), data);
}

void
lispterm_signal_decode_error (emacs_env *env, const etf_reader *r,
                              bool decompressed)
{
  char msg[200];
  snprintf (msg, sizeof msg, "%s at byte %zu%s",
            r->error ? r->error : "malformed term", r->error_offset,
            decompressed ? " of the decompressed term" : "");
  emacs_value datum = env->make_integer (env, (intmax_t) r->error_offset);
  lispterm_signal (env, "erlext-decode-error", msg, datum);
}

uint8_t *
lispterm_string_bytes (emacs_env *env, emacs_value s, size_t *len)
{
  ptrdiff_t size = 0;
  if (!env->copy_string_contents (env, s, NULL, &size))
    return NULL;
  uint8_t *buf = malloc ((size_t) size);
  if (!buf)
    {
      lispterm_signal (env, "erlext-encode-error", "out of memory", s);
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

/* A growable array of anything, for the explicit stacks.  */
static bool
grow (void **items, size_t *cap, size_t need, size_t item_size)
{
  if (need <= *cap)
    return true;
  size_t ncap = *cap ? *cap : 64;
  while (ncap < need)
    ncap *= 2;
  void *n = realloc (*items, ncap * item_size);
  if (!n)
    return false;
  *items = n;
  *cap = ncap;
  return true;
}

/* ---------------------------------------------------------------- */
/* Atom -> symbol, cached so that a repeated atom costs no `intern'.  */

#define ATOM_CACHE_SLOTS 32768u   /* a power of two */
#define ATOM_CACHE_LIMIT 16384u   /* then stop caching: peers choose atoms */

typedef struct
{
  uint8_t *name;
  size_t len;
  emacs_value symbol;  /* a global reference */
} atom_slot;

static atom_slot *atom_cache;
static size_t atom_cache_count;

static uint32_t
hash_bytes (const uint8_t *s, size_t len)
{
  uint32_t h = 2166136261u;
  for (size_t k = 0; k < len; k++)
    h = (h ^ s[k]) * 16777619u;
  return h;
}

static emacs_value
intern_utf8 (emacs_env *env, const uint8_t *name, size_t len)
{
  bool plain = true;
  for (size_t k = 0; k < len; k++)
    if (name[k] == 0 || name[k] >= 0x80)
      plain = false;
  if (plain)
    {
      char cname[ETF_MAX_ATOM_CHARS + 1];
      memcpy (cname, name, len);
      cname[len] = '\0';
      return env->intern (env, cname);
    }
  /* `intern' in the module API takes a C string of ASCII; anything else
     goes through a Lisp string.  */
  emacs_value str = env->make_string (env, (const char *) name,
                                      (ptrdiff_t) len);
  return call (env, q.intern, 1, &str);
}

static emacs_value
atom_symbol (emacs_env *env, const etf_atom *atom)
{
  uint8_t converted[2 * ETF_MAX_ATOM_CHARS];
  const uint8_t *name = atom->name;
  size_t len = atom->len;
  if (atom->latin1)
    {
      len = etf_latin1_to_utf8 (atom->name, atom->len, converted);
      name = converted;
    }

  if (!atom_cache)
    atom_cache = calloc (ATOM_CACHE_SLOTS, sizeof *atom_cache);
  if (!atom_cache)
    return intern_utf8 (env, name, len);

  uint32_t i = hash_bytes (name, len) & (ATOM_CACHE_SLOTS - 1);
  for (;;)
    {
      atom_slot *slot = &atom_cache[i];
      if (!slot->name)
        break;
      if (slot->len == len && memcmp (slot->name, name, len) == 0)
        return slot->symbol;
      i = (i + 1) & (ATOM_CACHE_SLOTS - 1);
    }
  emacs_value sym = intern_utf8 (env, name, len);
  if (!ok (env) || atom_cache_count >= ATOM_CACHE_LIMIT)
    return sym;
  uint8_t *copy = malloc (len + 1);
  if (!copy)
    return sym;
  memcpy (copy, name, len);
  atom_cache[i].name = copy;
  atom_cache[i].len = len;
  atom_cache[i].symbol = env->make_global_ref (env, sym);
  atom_cache_count++;
  return atom_cache[i].symbol;
}

/* ---------------------------------------------------------------- */
/* Decoding */

typedef struct
{
  etf_kind kind;      /* ETF_LIST, ETF_TUPLE or ETF_MAP */
  uint64_t left;      /* items still to come */
  size_t base;        /* where its items start on the value stack */
} decode_frame;

typedef struct
{
  emacs_env *env;
  etf_reader *r;
  const lispterm_options *opt;
  emacs_value *vals;
  size_t nvals, vals_cap;
  decode_frame *frames;
  size_t nframes, frames_cap;
} decoder;

static emacs_value
tagged (decoder *d, emacs_value type, ptrdiff_t n, emacs_value *rest)
{
  emacs_value args[6];
  args[0] = q.erl_tag;
  args[1] = type;
  for (ptrdiff_t k = 0; k < n; k++)
    args[2 + k] = rest[k];
  return call (d->env, q.vector_fn, n + 2, args);
}

static emacs_value
make_u64 (emacs_env *env, uint64_t v)
{
  if (v <= (uint64_t) INTMAX_MAX)
    return env->make_integer (env, (intmax_t) v);
  emacs_limb_t limb = (emacs_limb_t) v;
  return env->make_big_integer (env, 1, 1, &limb);
}

static emacs_value
decode_big (decoder *d, const etf_item *it)
{
  emacs_env *env = d->env;
  size_t n = it->v.big.n;
  size_t limb_bytes = sizeof (emacs_limb_t);
  size_t count = (n + limb_bytes - 1) / limb_bytes;
  emacs_limb_t *limbs = calloc (count, sizeof *limbs);
  if (!limbs)
    {
      lispterm_signal (env, "erlext-decode-error", "out of memory",
                       env->make_integer (env, (intmax_t) it->offset));
      return NULL;
    }
  for (size_t k = 0; k < n; k++)
    limbs[k / limb_bytes] |= (emacs_limb_t) it->v.big.digits[k]
                             << (8 * (k % limb_bytes));
  emacs_value v = env->make_big_integer (env, it->v.big.negative ? -1 : 1,
                                         (ptrdiff_t) count, limbs);
  free (limbs);
  if (!ok (env))
    {
      env->non_local_exit_clear (env);
      etf_fail (d->r, it->offset,
                "integer too large for Emacs (see `integer-width')");
      return NULL;
    }
  return v;
}

static emacs_value
decode_binary (decoder *d, const etf_item *it)
{
  emacs_value s = lispterm_unibyte (d->env, it->v.bytes.data, it->v.bytes.len);
  return d->opt->binaries_tagged ? tagged (d, q.erl_binary, 1, &s) : s;
}

/* A leaf item as a Lisp value; NULL with the reader's error set or a
   Lisp error pending.  */
static emacs_value
decode_leaf (decoder *d, const etf_item *it)
{
  emacs_env *env = d->env;
  emacs_value a[4];
  switch (it->kind)
    {
    case ETF_INT:
      return env->make_integer (env, it->v.i);
    case ETF_BIG:
      return decode_big (d, it);
    case ETF_FLOAT:
      return env->make_float (env, it->v.f);
    case ETF_ATOM:
      return atom_symbol (env, &it->v.atom);
    case ETF_NIL:
      return q.nil;
    case ETF_STRING:
      return lispterm_unibyte (env, it->v.bytes.data, it->v.bytes.len);
    case ETF_BINARY:
      return decode_binary (d, it);
    case ETF_BITSTRING:
      a[0] = lispterm_unibyte (env, it->v.bytes.data, it->v.bytes.len);
      a[1] = env->make_integer (env, it->v.bytes.bits);
      return tagged (d, q.erl_bitstring, 2, a);
    case ETF_PID:
      a[0] = atom_symbol (env, &it->v.pid.node);
      a[1] = env->make_integer (env, it->v.pid.id);
      a[2] = env->make_integer (env, it->v.pid.serial);
      a[3] = env->make_integer (env, it->v.pid.creation);
      return tagged (d, q.erl_pid, 4, a);
    case ETF_PORT:
      a[0] = atom_symbol (env, &it->v.port.node);
      a[1] = make_u64 (env, it->v.port.id);
      a[2] = env->make_integer (env, it->v.port.creation);
      return tagged (d, q.erl_port, 3, a);
    case ETF_REF:
      a[0] = atom_symbol (env, &it->v.ref.node);
      a[1] = env->make_integer (env, it->v.ref.creation);
      a[2] = lispterm_unibyte (env, it->v.ref.id, 4 * it->v.ref.words);
      return tagged (d, q.erl_new_ref, 3, a);
    case ETF_OLD_REF:
      a[0] = atom_symbol (env, &it->v.old_ref.node);
      a[1] = env->make_integer (env, it->v.old_ref.id);
      a[2] = env->make_integer (env, it->v.old_ref.creation);
      return tagged (d, q.erl_ref, 3, a);
    case ETF_EXPORT:
      a[0] = atom_symbol (env, &it->v.export.module);
      a[1] = atom_symbol (env, &it->v.export.function);
      a[2] = env->make_integer (env, it->v.export.arity);
      return tagged (d, q.erl_export, 3, a);
    case ETF_FUN:
      /* Opaque and byte-exact; its free variables are checked, not
         decoded.  */
      if (etf_skip_fun_body (d->r, it) != ETF_OK)
        return NULL;
      a[0] = lispterm_unibyte (env, it->v.fun.data, it->v.fun.len);
      return tagged (d, q.erl_fun, 1, a);
    default:
      etf_fail (d->r, it->offset, "unexpected item");
      return NULL;
    }
}

/* Build a finished container from its N items at ITEMS.  */
static emacs_value
build (decoder *d, const decode_frame *f, emacs_value *items, size_t n)
{
  emacs_env *env = d->env;
  switch (f->kind)
    {
    case ETF_TUPLE:
      return call (env, q.vector_fn, (ptrdiff_t) n, items);
    case ETF_LIST:
      {
        size_t elems = n - 1;
        emacs_value tail = items[elems];
        if (!env->is_not_nil (env, tail))
          return call (env, q.list, (ptrdiff_t) elems, items);
        /* Improper: a dotted list.  */
        emacs_value v = tail;
        for (size_t k = elems; k-- > 0;)
          {
            emacs_value pair[2] = { items[k], v };
            v = call (env, q.cons_fn, 2, pair);
          }
        return v;
      }
    case ETF_MAP:
      {
        emacs_value args[4] = { q.k_test, q.equal, q.k_size,
                                env->make_integer (env, (intmax_t) (n / 2)) };
        emacs_value h = call (env, q.make_hash_table, 4, args);
        for (size_t k = 0; k + 1 < n && ok (env); k += 2)
          {
            emacs_value kv[3] = { items[k], items[k + 1], h };
            call (env, q.puthash, 3, kv);
          }
        return h;
      }
    default:
      return q.nil;
    }
}

static bool
push_value (decoder *d, emacs_value v)
{
  if (!grow ((void **) &d->vals, &d->vals_cap, d->nvals + 1, sizeof v))
    return false;
  d->vals[d->nvals++] = v;
  return true;
}

static emacs_value
decode_loop (decoder *d)
{
  emacs_env *env = d->env;
  size_t items = 0;
  for (;;)
    {
      etf_item it;
      if (etf_read_item (d->r, &it) != ETF_OK)
        return NULL;
      if ((++items & 0xFFFF) == 0
          && env->process_input (env) == emacs_process_input_quit)
        return NULL;

      emacs_value v;
      bool container = it.kind == ETF_LIST || it.kind == ETF_TUPLE
                       || it.kind == ETF_MAP;
      if (container && etf_item_children (&it) > 0)
        {
          if (d->nframes >= d->opt->max_depth)
            {
              etf_fail (d->r, it.offset,
                        "nesting deeper than `erlext-max-depth'");
              return NULL;
            }
          if (!grow ((void **) &d->frames, &d->frames_cap, d->nframes + 1,
                     sizeof *d->frames))
            {
              etf_fail (d->r, it.offset, "out of memory");
              return NULL;
            }
          d->frames[d->nframes++] = (decode_frame){
            it.kind, etf_item_children (&it), d->nvals
          };
          continue;
        }
      if (container)
        v = build (d, &(decode_frame){ it.kind, 0, 0 }, NULL, 0);
      else
        v = decode_leaf (d, &it);
      if (!v || !ok (env))
        return NULL;

      /* Hand V to its container; finishing one may finish its parent.  */
      for (;;)
        {
          if (d->nframes == 0)
            return v;
          if (!push_value (d, v))
            {
              etf_fail (d->r, d->r->pos, "out of memory");
              return NULL;
            }
          decode_frame *f = &d->frames[d->nframes - 1];
          if (--f->left > 0)
            break;
          v = build (d, f, d->vals + f->base, d->nvals - f->base);
          if (!ok (env))
            return NULL;
          d->nvals = f->base;
          d->nframes--;
        }
    }
}

emacs_value
lispterm_decode (emacs_env *env, etf_reader *r, const lispterm_options *opt)
{
  decoder d = { .env = env, .r = r, .opt = opt };
  r->error = NULL;
  emacs_value v = decode_loop (&d);
  free (d.vals);
  free (d.frames);
  return v;
}

/* ---------------------------------------------------------------- */
/* Encoding */

typedef enum
{
  EF_ELEMENTS,  /* a vector's elements from index I; then nothing */
  EF_LIST,      /* a proper list's elements (as a vector); then [] */
  EF_DOTTED,    /* a dotted list: SEQ is the next cons; then TAIL */
} eframe_kind;

typedef struct
{
  eframe_kind kind;
  emacs_value seq;
  emacs_value tail;
  intmax_t i, n;
} encode_frame;

typedef struct
{
  emacs_env *env;
  etf_buf *out;
  const lispterm_options *opt;
  encode_frame *frames;
  size_t nframes, frames_cap;
} encoder;

/* Signal `erlext-encode-error' with REASON and the offending OBJ.  */
static bool
encode_error (encoder *e, const char *reason, emacs_value obj)
{
  if (ok (e->env))
    lispterm_signal (e->env, "erlext-encode-error", reason, obj);
  return false;
}

/* A symbol's name as UTF-8 into BUF (at least 4 * 255 + 1 bytes).  */
static bool
symbol_utf8 (encoder *e, emacs_value sym, char *buf, ptrdiff_t bufsize,
             size_t *len)
{
  emacs_env *env = e->env;
  emacs_value name = call (env, q.symbol_name, 1, &sym);
  ptrdiff_t size = bufsize;
  if (!ok (env))
    return false;
  if (!env->copy_string_contents (env, name, buf, &size))
    {
      env->non_local_exit_clear (env);
      return encode_error (e, "atom longer than 255 characters", sym);
    }
  *len = (size_t) size - 1;
  return true;
}

#define ATOM_BUF (4 * ETF_MAX_ATOM_CHARS + 1)

static bool
put_symbol (encoder *e, emacs_value sym)
{
  char name[ATOM_BUF];
  size_t len;
  if (!symbol_utf8 (e, sym, name, sizeof name, &len))
    return false;
  etf_put_atom (e->out, (const uint8_t *) name, len);
  if (e->out->status != ETF_OK)
    return encode_error (e, e->out->error, sym);
  return true;
}

/* Decode one code point of lenient UTF-8: bytes that do not start a
   valid sequence (raw bytes from unibyte strings) stand for themselves.  */
static uint32_t
next_char (const uint8_t *s, size_t len, size_t *i)
{
  uint8_t c = s[*i];
  size_t n = 0;
  uint32_t cp = c, min = 0;
  if (c >= 0xC0 && c < 0xE0)
    n = 1, cp = c & 0x1F, min = 0x80;
  else if (c >= 0xE0 && c < 0xF0)
    n = 2, cp = c & 0x0F, min = 0x800;
  else if (c >= 0xF0 && c < 0xF8)
    n = 3, cp = c & 0x07, min = 0x10000;
  if (n == 0 || len - *i - 1 < n)
    {
      (*i)++;
      return c;
    }
  for (size_t k = 1; k <= n; k++)
    {
      if ((s[*i + k] & 0xC0) != 0x80)
        {
          (*i)++;
          return c;
        }
      cp = (cp << 6) | (s[*i + k] & 0x3F);
    }
  if (cp < min)
    {
      (*i)++;
      return c;
    }
  *i += n + 1;
  return cp;
}

/* A Lisp string is an Erlang string: a list of its characters.  */
static bool
put_string (encoder *e, emacs_value str)
{
  char small[256];
  ptrdiff_t size = sizeof small;
  uint8_t *bytes = (uint8_t *) small;
  uint8_t *heap = NULL;
  size_t len;
  emacs_env *env = e->env;
  if (env->copy_string_contents (env, str, small, &size))
    len = (size_t) size - 1;
  else
    {
      env->non_local_exit_clear (env);
      heap = lispterm_string_bytes (env, str, &len);
      if (!heap)
        return false;
      bytes = heap;
    }

  /* A unibyte string's bytes are its characters, as in Distel.  */
  bool raw = false;
  for (size_t i = 0; i < len && !raw; i++)
    raw = bytes[i] >= 0x80;
  if (raw)
    {
      emacs_value mb = call (env, q.multibyte_string_p, 1, &str);
      raw = ok (env) && !env->is_not_nil (env, mb);
    }

  if (len == 0)
    etf_put_nil (e->out);
  else if (raw && len <= 0xFFFF)
    etf_put_string (e->out, bytes, len);
  else if (raw)
    {
      etf_put_list_header (e->out, (uint32_t) len);
      for (size_t i = 0; i < len; i++)
        etf_put_int (e->out, bytes[i]);
      etf_put_nil (e->out);
    }
  else
    {
      /* Latin-1 text of at most 65535 characters fits STRING_EXT.  */
      bool latin1 = true;
      size_t chars = 0;
      for (size_t i = 0; i < len;)
        {
          if (next_char (bytes, len, &i) > 0xFF)
            latin1 = false;
          chars++;
        }
      if (latin1 && chars <= 0xFFFF && chars == len)
        etf_put_string (e->out, bytes, len);
      else if (latin1 && chars <= 0xFFFF)
        {
          if (etf_buf_reserve (e->out, 3 + chars))
            {
              etf_put_u8 (e->out, ETF_TAG_STRING);
              etf_put_u16 (e->out, (uint16_t) chars);
              for (size_t i = 0; i < len;)
                e->out->data[e->out->len++] = (uint8_t) next_char (bytes, len,
                                                                   &i);
            }
        }
      else
        {
          etf_put_list_header (e->out, (uint32_t) chars);
          for (size_t i = 0; i < len;)
            etf_put_int (e->out, next_char (bytes, len, &i));
          etf_put_nil (e->out);
        }
    }
  free (heap);
  if (e->out->status != ETF_OK)
    return encode_error (e, e->out->error, str);
  return true;
}

static bool
put_integer (encoder *e, emacs_value v)
{
  emacs_env *env = e->env;
  intmax_t i = env->extract_integer (env, v);
  if (ok (env))
    {
      etf_put_int (e->out, i);
      return true;
    }
  env->non_local_exit_clear (env);
  int sign;
  ptrdiff_t count;
  if (!env->extract_big_integer (env, v, &sign, &count, NULL))
    return false;
  emacs_limb_t *limbs = malloc ((size_t) count * sizeof *limbs);
  if (!limbs)
    return encode_error (e, "out of memory", v);
  if (!env->extract_big_integer (env, v, &sign, &count, limbs))
    {
      free (limbs);
      return false;
    }
  /* Limbs are little-endian, as are ETF digits.  */
  size_t n = (size_t) count * sizeof (emacs_limb_t);
  uint8_t *digits = malloc (n);
  if (!digits)
    {
      free (limbs);
      return encode_error (e, "out of memory", v);
    }
  for (size_t k = 0; k < n; k++)
    digits[k] = (uint8_t) (limbs[k / sizeof (emacs_limb_t)]
                           >> (8 * (k % sizeof (emacs_limb_t))));
  etf_put_big (e->out, sign < 0, digits, n);
  free (digits);
  free (limbs);
  if (e->out->status != ETF_OK)
    return encode_error (e, e->out->error, v);
  return true;
}

/* An integer field of a tagged vector, within [0, MAX].  */
static bool
field_uint (encoder *e, emacs_value vec, ptrdiff_t k, uint64_t max,
            uint64_t *out)
{
  emacs_env *env = e->env;
  emacs_value v = env->vec_get (env, vec, k);
  if (!ok (env))
    return false;
  if (!env->eq (env, env->type_of (env, v), q.integer))
    return encode_error (e, "field is not an integer", vec);
  intmax_t i = env->extract_integer (env, v);
  if (!ok (env))
    {
      env->non_local_exit_clear (env);
      if (max <= (uint64_t) INTMAX_MAX)
        return encode_error (e, "field out of range", vec);
      int sign;
      ptrdiff_t count = 1;
      emacs_limb_t limb;
      if (!env->extract_big_integer (env, v, &sign, &count, &limb))
        {
          env->non_local_exit_clear (env);
          return encode_error (e, "field out of range", vec);
        }
      if (sign < 0 || limb > max)
        return encode_error (e, "field out of range", vec);
      *out = limb;
      return true;
    }
  if (i < 0 || (uint64_t) i > max)
    return encode_error (e, "field out of range", vec);
  *out = (uint64_t) i;
  return true;
}

static bool
field_symbol (encoder *e, emacs_value vec, ptrdiff_t k, char *buf,
              size_t *len)
{
  emacs_env *env = e->env;
  emacs_value v = env->vec_get (env, vec, k);
  if (!ok (env))
    return false;
  if (!env->eq (env, env->type_of (env, v), q.symbol))
    return encode_error (e, "field is not a symbol", vec);
  if (!symbol_utf8 (e, v, buf, ATOM_BUF, len))
    return false;
  if (!env->is_not_nil (env, v))
    *len = 3, memcpy (buf, "nil", 4);
  return true;
}

/* Bytes of a string field, malloc'd.  */
static uint8_t *
field_bytes (encoder *e, emacs_value vec, ptrdiff_t k, size_t *len)
{
  emacs_env *env = e->env;
  emacs_value v = env->vec_get (env, vec, k);
  if (!ok (env))
    return NULL;
  if (!env->eq (env, env->type_of (env, v), q.string))
    {
      encode_error (e, "field is not a string", vec);
      return NULL;
    }
  return lispterm_string_bytes (env, v, len);
}

static bool
put_fun (encoder *e, emacs_value vec, const uint8_t *bytes, size_t len)
{
  /* Opaque bytes must still be exactly one well-formed fun.  */
  etf_reader r;
  etf_item it;
  etf_reader_init (&r, bytes, len);
  if (etf_read_item (&r, &it) != ETF_OK || it.kind != ETF_FUN
      || etf_skip_fun_body (&r, &it) != ETF_OK
      || etf_expect_end (&r) != ETF_OK)
    return encode_error (e, "not the bytes of an encoded fun", vec);
  etf_put_bytes (e->out, bytes, len);
  return true;
}

/* [erl-tag TYPE ...]: pids, ports, references, binaries and the rest.  */
static bool
put_tagged (encoder *e, emacs_value vec, ptrdiff_t size)
{
  emacs_env *env = e->env;
  emacs_value type = size >= 2 ? env->vec_get (env, vec, 1) : q.nil;
  char node[ATOM_BUF], fun[ATOM_BUF];
  size_t node_len, fun_len;
  uint64_t a, b, c;
  uint8_t *bytes = NULL;
  size_t len;
  bool good = false;

#define SHAPE(n)                                                        \
  if (size != (n))                                                      \
    return encode_error (e, "tagged vector of the wrong length", vec)

  if (env->eq (env, type, q.erl_binary))
    {
      SHAPE (3);
      if ((bytes = field_bytes (e, vec, 2, &len)))
        etf_put_binary (e->out, bytes, len), good = true;
    }
  else if (env->eq (env, type, q.erl_pid))
    {
      SHAPE (6);
      good = field_symbol (e, vec, 2, node, &node_len)
             && field_uint (e, vec, 3, UINT32_MAX, &a)
             && field_uint (e, vec, 4, UINT32_MAX, &b)
             && field_uint (e, vec, 5, UINT32_MAX, &c);
      if (good)
        etf_put_pid (e->out, (uint8_t *) node, node_len, (uint32_t) a,
                     (uint32_t) b, (uint32_t) c);
    }
  else if (env->eq (env, type, q.erl_port))
    {
      SHAPE (5);
      good = field_symbol (e, vec, 2, node, &node_len)
             && field_uint (e, vec, 3, UINT64_MAX, &a)
             && field_uint (e, vec, 4, UINT32_MAX, &c);
      if (good)
        etf_put_port (e->out, (uint8_t *) node, node_len, a, (uint32_t) c);
    }
  else if (env->eq (env, type, q.erl_new_ref))
    {
      SHAPE (5);
      good = field_symbol (e, vec, 2, node, &node_len)
             && field_uint (e, vec, 3, UINT32_MAX, &c)
             && (bytes = field_bytes (e, vec, 4, &len));
      if (good && (len % 4 != 0 || len == 0 || len > 4 * ETF_MAX_REF_WORDS))
        good = encode_error (e, "reference id must be 4 to 20 bytes, "
                             "a multiple of 4", vec);
      if (good)
        etf_put_ref (e->out, (uint8_t *) node, node_len, (uint32_t) c, bytes,
                     len / 4);
    }
  else if (env->eq (env, type, q.erl_ref))
    {
      SHAPE (5);
      good = field_symbol (e, vec, 2, node, &node_len)
             && field_uint (e, vec, 3, UINT32_MAX, &a)
             && field_uint (e, vec, 4, 255, &c);
      if (good)
        etf_put_old_ref (e->out, (uint8_t *) node, node_len, (uint32_t) a,
                         (uint32_t) c);
    }
  else if (env->eq (env, type, q.erl_bitstring))
    {
      SHAPE (4);
      good = (bytes = field_bytes (e, vec, 2, &len))
             && field_uint (e, vec, 3, 8, &b);
      if (good && ((len == 0) != (b == 0) || (len > 0 && b == 0)))
        good = encode_error (e, "bitstring bit count must be 1 to 8", vec);
      if (good)
        etf_put_bitstring (e->out, bytes, len, (unsigned) b);
    }
  else if (env->eq (env, type, q.erl_export))
    {
      SHAPE (5);
      good = field_symbol (e, vec, 2, node, &node_len)
             && field_symbol (e, vec, 3, fun, &fun_len)
             && field_uint (e, vec, 4, 255, &a);
      if (good)
        etf_put_export (e->out, (uint8_t *) node, node_len, (uint8_t *) fun,
                        fun_len, (unsigned) a);
    }
  else if (env->eq (env, type, q.erl_fun))
    {
      SHAPE (3);
      if ((bytes = field_bytes (e, vec, 2, &len)))
        good = put_fun (e, vec, bytes, len);
    }
  else
    good = encode_error (e, "unknown erl-tag type", vec);
#undef SHAPE

  free (bytes);
  if (good && e->out->status != ETF_OK)
    good = encode_error (e, e->out->error, vec);
  return good;
}

static bool
push_frame (encoder *e, encode_frame f, emacs_value obj)
{
  if (e->nframes >= e->opt->max_depth)
    return encode_error (e, "nesting deeper than `erlext-max-depth' "
                         "(circular structure?)", obj);
  if (!grow ((void **) &e->frames, &e->frames_cap, e->nframes + 1,
             sizeof f))
    return encode_error (e, "out of memory", obj);
  e->frames[e->nframes++] = f;
  return true;
}

static bool
put_list (encoder *e, emacs_value list)
{
  emacs_env *env = e->env;
  emacs_value n = call (env, q.proper_list_p, 1, &list);
  if (!ok (env))
    return false;
  if (env->is_not_nil (env, n))
    {
      intmax_t len = env->extract_integer (env, n);
      if (len > UINT32_MAX)
        return encode_error (e, "list too long", list);
      emacs_value vec = call (env, q.vconcat, 1, &list);
      if (!ok (env))
        return false;
      etf_put_list_header (e->out, (uint32_t) len);
      return push_frame (e, (encode_frame){ EF_LIST, vec, NULL, 0, len },
                         list);
    }
  /* Dotted or circular: count the conses, then look past the last.  */
  emacs_value count = call (env, q.safe_length, 1, &list);
  intmax_t len = env->extract_integer (env, count);
  emacs_value tail = list;
  for (intmax_t k = 0; k < len && ok (env); k++)
    tail = call (env, q.cdr, 1, &tail);
  if (!ok (env))
    return false;
  if (env->eq (env, env->type_of (env, tail), q.cons))
    return encode_error (e, "circular list", list);
  if (len > UINT32_MAX)
    return encode_error (e, "list too long", list);
  etf_put_list_header (e->out, (uint32_t) len);
  return push_frame (e, (encode_frame){ EF_DOTTED, list, tail, 0, len },
                     list);
}

/* Encode one value: a leaf completely, a container's header with a frame
   for its elements.  */
static bool
put_value (encoder *e, emacs_value v)
{
  emacs_env *env = e->env;
  if (!env->is_not_nil (env, v))
    {
      etf_put_nil (e->out);
      return true;
    }
  emacs_value type = env->type_of (env, v);
  if (env->eq (env, type, q.integer))
    return put_integer (e, v);
  if (env->eq (env, type, q.symbol))
    return put_symbol (e, v);
  if (env->eq (env, type, q.cons))
    return put_list (e, v);
  if (env->eq (env, type, q.string))
    return put_string (e, v);
  if (env->eq (env, type, q.vector))
    {
      ptrdiff_t size = env->vec_size (env, v);
      if (size > 0 && env->eq (env, env->vec_get (env, v, 0), q.erl_tag))
        return put_tagged (e, v, size);
      if (size > UINT32_MAX)
        return encode_error (e, "vector too long", v);
      etf_put_tuple_header (e->out, (uint32_t) size);
      if (size == 0)
        return true;
      return push_frame (e, (encode_frame){ EF_ELEMENTS, v, NULL, 0, size },
                         v);
    }
  if (env->eq (env, type, q.float_))
    {
      etf_put_float (e->out, env->extract_float (env, v));
      if (e->out->status != ETF_OK)
        return encode_error (e, e->out->error, v);
      return true;
    }
  if (env->eq (env, type, q.hash_table))
    {
      emacs_value pairs = call (env, q.hash_table_flatten, 1, &v);
      if (!ok (env))
        return false;
      ptrdiff_t size = env->vec_size (env, pairs);
      etf_put_map_header (e->out, (uint32_t) (size / 2));
      if (size == 0)
        return true;
      return push_frame (e, (encode_frame){ EF_ELEMENTS, pairs, NULL, 0,
                                            size }, v);
    }
  return encode_error (e, "no Erlang term for this object", v);
}

/* The next value a frame owes, or NULL when it is finished (then its
   closing, if any, is written and a dotted list's tail returned in
   *TAIL).  */
static emacs_value
frame_next (encoder *e, encode_frame *f, emacs_value *tail)
{
  emacs_env *env = e->env;
  *tail = NULL;
  if (f->i < f->n)
    {
      f->i++;
      if (f->kind == EF_DOTTED)
        {
          emacs_value cell = f->seq;
          f->seq = call (env, q.cdr, 1, &cell);
          return call (env, q.car, 1, &cell);
        }
      return env->vec_get (env, f->seq, (ptrdiff_t) (f->i - 1));
    }
  if (f->kind == EF_LIST)
    etf_put_nil (e->out);
  else if (f->kind == EF_DOTTED)
    *tail = f->tail;
  return NULL;
}

bool
lispterm_encode (emacs_env *env, emacs_value value, etf_buf *out,
                 const lispterm_options *opt)
{
  encoder e = { .env = env, .out = out, .opt = opt };
  bool good = put_value (&e, value);
  size_t steps = 0;
  while (good && e.nframes > 0)
    {
      if ((++steps & 0xFFFF) == 0
          && env->process_input (env) == emacs_process_input_quit)
        {
          good = false;
          break;
        }
      emacs_value tail;
      emacs_value next = frame_next (&e, &e.frames[e.nframes - 1], &tail);
      if (!ok (env))
        {
          good = false;
          break;
        }
      if (!next)
        {
          e.nframes--;
          if (!tail)
            continue;
          next = tail;
        }
      good = put_value (&e, next);
    }
  if (good && out->status != ETF_OK)
    good = encode_error (&e, out->error, value);
  free (e.frames);
  return good && ok (env);
}
