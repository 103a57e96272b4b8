/* lispterm.c --- External Term Format <-> Lisp values (the term mapping of README.org).

   Both directions walk the term with explicit heap stacks, never the C
   stack, so nesting depth is bounded only by `erlext-max-depth'.  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#include "lispterm.h"

#include "elisp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- */
/* The tags after erl-tag, interned once at load.  */

static emacs_value Qerl_pid, Qerl_port, Qerl_ref, Qerl_new_ref, Qerl_fun,
    Qerl_export, Qerl_binary, Qerl_bitstring;

bool
lispterm_init (emacs_env *env)
{
  static const elisp_symbol_def tags[] = {
    { &Qerl_pid, "erl-pid" },         { &Qerl_port, "erl-port" },
    { &Qerl_ref, "erl-ref" },         { &Qerl_new_ref, "erl-new-ref" },
    { &Qerl_fun, "erl-fun" },         { &Qerl_export, "erl-export" },
    { &Qerl_binary, "erl-binary" },   { &Qerl_bitstring, "erl-bitstring" },
  };
  return elisp_intern_symbols (env, tags, sizeof tags / sizeof *tags);
}

void
lispterm_signal_decode_error (emacs_env *env, const etf_reader *r,
                              bool decompressed)
{
  char msg[200];
  snprintf (msg, sizeof msg, "%s at byte %zu%s",
            r->error ? r->error : "malformed term", r->error_offset,
            decompressed ? " of the decompressed term" : "");
  emacs_value datum = elisp_integer (env, (intmax_t) r->error_offset);
  elisp_signal (env, Qerlext_decode_error, msg, datum);
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
  return elisp_call (env, Qintern, 1, &str);
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
  if (!elisp_ok (env) || atom_cache_count >= ATOM_CACHE_LIMIT)
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
  args[0] = Qerl_tag;
  args[1] = type;
  for (ptrdiff_t k = 0; k < n; k++)
    args[2 + k] = rest[k];
  return elisp_call (d->env, Qvector, n + 2, args);
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
      elisp_signal (env, Qerlext_decode_error, "out of memory",
                       env->make_integer (env, (intmax_t) it->offset));
      return NULL;
    }
  for (size_t k = 0; k < n; k++)
    limbs[k / limb_bytes] |= (emacs_limb_t) it->v.big.digits[k]
                             << (8 * (k % limb_bytes));
  emacs_value v = env->make_big_integer (env, it->v.big.negative ? -1 : 1,
                                         (ptrdiff_t) count, limbs);
  free (limbs);
  if (!elisp_ok (env))
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
  emacs_value s = elisp_unibyte (d->env, it->v.bytes.data, it->v.bytes.len);
  return d->opt->binaries_tagged ? tagged (d, Qerl_binary, 1, &s) : s;
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
      return Qnil;
    case ETF_STRING:
      return elisp_unibyte (env, it->v.bytes.data, it->v.bytes.len);
    case ETF_BINARY:
      return decode_binary (d, it);
    case ETF_BITSTRING:
      a[0] = elisp_unibyte (env, it->v.bytes.data, it->v.bytes.len);
      a[1] = env->make_integer (env, it->v.bytes.bits);
      return tagged (d, Qerl_bitstring, 2, a);
    case ETF_PID:
      a[0] = atom_symbol (env, &it->v.pid.node);
      a[1] = env->make_integer (env, it->v.pid.id);
      a[2] = env->make_integer (env, it->v.pid.serial);
      a[3] = env->make_integer (env, it->v.pid.creation);
      return tagged (d, Qerl_pid, 4, a);
    case ETF_PORT:
      a[0] = atom_symbol (env, &it->v.port.node);
      a[1] = make_u64 (env, it->v.port.id);
      a[2] = env->make_integer (env, it->v.port.creation);
      return tagged (d, Qerl_port, 3, a);
    case ETF_REF:
      a[0] = atom_symbol (env, &it->v.ref.node);
      a[1] = env->make_integer (env, it->v.ref.creation);
      a[2] = elisp_unibyte (env, it->v.ref.id, 4 * it->v.ref.words);
      return tagged (d, Qerl_new_ref, 3, a);
    case ETF_OLD_REF:
      a[0] = atom_symbol (env, &it->v.old_ref.node);
      a[1] = env->make_integer (env, it->v.old_ref.id);
      a[2] = env->make_integer (env, it->v.old_ref.creation);
      return tagged (d, Qerl_ref, 3, a);
    case ETF_EXPORT:
      a[0] = atom_symbol (env, &it->v.export.module);
      a[1] = atom_symbol (env, &it->v.export.function);
      a[2] = env->make_integer (env, it->v.export.arity);
      return tagged (d, Qerl_export, 3, a);
    case ETF_FUN:
      /* Opaque and byte-exact; its free variables are checked, not
         decoded.  */
      if (etf_skip_fun_body (d->r, it) != ETF_OK)
        return NULL;
      a[0] = elisp_unibyte (env, it->v.fun.data, it->v.fun.len);
      return tagged (d, Qerl_fun, 1, a);
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
      return elisp_call (env, Qvector, (ptrdiff_t) n, items);
    case ETF_LIST:
      {
        size_t elems = n - 1;
        emacs_value tail = items[elems];
        if (!env->is_not_nil (env, tail))
          return elisp_call (env, Qlist, (ptrdiff_t) elems, items);
        /* Improper: a dotted list.  */
        emacs_value v = tail;
        for (size_t k = elems; k-- > 0;)
          {
            emacs_value pair[2] = { items[k], v };
            v = elisp_call (env, Qcons, 2, pair);
          }
        return v;
      }
    case ETF_MAP:
      {
        emacs_value args[4] = { Qk_test, Qequal, Qk_size,
                                env->make_integer (env, (intmax_t) (n / 2)) };
        emacs_value h = elisp_call (env, Qmake_hash_table, 4, args);
        for (size_t k = 0; k + 1 < n && elisp_ok (env); k += 2)
          {
            emacs_value kv[3] = { items[k], items[k + 1], h };
            elisp_call (env, Qputhash, 3, kv);
          }
        return h;
      }
    default:
      return Qnil;
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
      if (!v || !elisp_ok (env))
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
          if (!elisp_ok (env))
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

void
lispterm_signal_encode_error (emacs_env *env, const char *reason,
                              emacs_value obj)
{
  /* The object as an error shows it: never a whole 200 MB string.  */
  emacs_value shown = elisp_call1 (env, Qerlext_shorten, obj);
  if (!elisp_ok (env))
    {
      env->non_local_exit_clear (env);
      shown = elisp_string (env, "#<object that cannot be shown>");
    }
  elisp_signal (env, Qerlext_encode_error, reason, shown);
}

/* Signal `erlext-encode-error' with REASON and the offending OBJ, unless
   an error is already pending.  */
static bool
encode_error (encoder *e, const char *reason, emacs_value obj)
{
  if (elisp_ok (e->env))
    lispterm_signal_encode_error (e->env, reason, obj);
  return false;
}

/* A Lisp string's bytes: in SMALL when they fit, else malloc'd.  */
typedef struct
{
  char small[256];
  uint8_t *bytes;
  uint8_t *heap;
  size_t len;
  emacs_value string;  /* the string the bytes are of */
} string_bytes;

static void
string_bytes_free (string_bytes *sb)
{
  free (sb->heap);
  sb->heap = NULL;
}

/* Copy STR's bytes (UTF-8 for text, a unibyte string's bytes as they
   are) into SB.  A multibyte string that is not Unicode text (it holds
   raw-byte characters) is first passed through Lisp function FIX,
   which returns a string that is, or nil; nil refuses OBJ.  */
static bool
copy_string (encoder *e, emacs_value str, emacs_value fix, emacs_value obj,
             string_bytes *sb)
{
  emacs_env *env = e->env;
  ptrdiff_t size = sizeof sb->small;
  sb->heap = NULL;
  sb->string = str;
  if (env->copy_string_contents (env, str, sb->small, &size))
    {
      sb->bytes = (uint8_t *) sb->small;
      sb->len = (size_t) size - 1;
      return true;
    }
  env->non_local_exit_clear (env);
  sb->heap = elisp_string_bytes (env, str, &sb->len);
  if (!sb->heap)
    {
      env->non_local_exit_clear (env);
      sb->string = elisp_call1 (env, fix, str);
      if (!elisp_ok (env))
        return false;
      if (elisp_nilp (env, sb->string))
        return encode_error (e, "characters outside Unicode have no Erlang "
                             "form", obj);
      sb->heap = elisp_string_bytes (env, sb->string, &sb->len);
      if (!sb->heap)
        return false;
    }
  sb->bytes = sb->heap;
  return true;
}

/* True when SB holds bytes >= 0x80 of a unibyte string: then each byte
   is a character (Latin-1 for a name), as in Distel.  */
static bool
unibyte_high (encoder *e, const string_bytes *sb)
{
  bool high = false;
  for (size_t i = 0; i < sb->len && !high; i++)
    high = sb->bytes[i] >= 0x80;
  if (!high)
    return false;
  emacs_value mb = elisp_call1 (e->env, Qmultibyte_string_p, sb->string);
  return elisp_ok (e->env) && elisp_nilp (e->env, mb);
}

#define ATOM_BUF (4 * ETF_MAX_ATOM_CHARS + 1)

/* A symbol's name as UTF-8 into BUF (ATOM_BUF bytes).  A raw-byte
   character counts as the character of its byte value, as in strings.  */
static bool
symbol_utf8 (encoder *e, emacs_value sym, char *buf, size_t *len)
{
  emacs_env *env = e->env;
  emacs_value name = elisp_call1 (env, Qsymbol_name, sym);
  if (!elisp_ok (env))
    return false;
  string_bytes sb;
  if (!copy_string (e, name, Qerlext_unicode_text, sym, &sb))
    return false;
  bool good = true;
  if (unibyte_high (e, &sb))
    {
      /* Latin-1 doubles at most; past ATOM_BUF it is too long anyway.  */
      if (2 * sb.len < ATOM_BUF)
        *len = etf_latin1_to_utf8 (sb.bytes, sb.len, (uint8_t *) buf);
      else
        good = encode_error (e, "atom longer than 255 characters", sym);
    }
  else if (sb.len < ATOM_BUF)
    memcpy (buf, sb.bytes, *len = sb.len);
  else
    good = encode_error (e, "atom longer than 255 characters", sym);
  string_bytes_free (&sb);
  return good && elisp_ok (env);
}

static bool
put_symbol (encoder *e, emacs_value sym)
{
  char name[ATOM_BUF];
  size_t len;
  if (!symbol_utf8 (e, sym, name, &len))
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

/* Every this many characters of a long string, let C-g in.  */
#define QUIT_CHECK_CHARS ((size_t) 1 << 20)

static bool
quit_requested (encoder *e, size_t i)
{
  return (i & (QUIT_CHECK_CHARS - 1)) == 0 && i > 0
         && e->env->process_input (e->env) == emacs_process_input_quit;
}

/* The characters of SB as LIST_EXT: code points, or bytes when RAW.  */
static bool
put_char_list (encoder *e, const string_bytes *sb, size_t chars, bool raw)
{
  etf_put_list_header (e->out, (uint32_t) chars);
  for (size_t i = 0, n = 0; i < sb->len; n++)
    {
      if (quit_requested (e, n))
        return false;
      etf_put_int (e->out, raw ? sb->bytes[i++]
                                : next_char (sb->bytes, sb->len, &i));
    }
  etf_put_nil (e->out);
  return true;
}

/* Latin-1 text as STRING_EXT, one byte a character.  */
static void
put_latin1_string (encoder *e, const string_bytes *sb, size_t chars)
{
  if (chars == sb->len)
    {
      etf_put_string (e->out, sb->bytes, sb->len);
      return;
    }
  if (!etf_buf_reserve (e->out, 3 + chars))
    return;
  etf_put_u8 (e->out, ETF_TAG_STRING);
  etf_put_u16 (e->out, (uint16_t) chars);
  for (size_t i = 0; i < sb->len;)
    e->out->data[e->out->len++] = (uint8_t) next_char (sb->bytes, sb->len, &i);
}

/* A Lisp string is an Erlang string: a list of its characters.  A
   unibyte string's bytes are its characters, as in Distel; so is a raw
   byte in a multibyte string.  */
static bool
put_string (encoder *e, emacs_value str)
{
  string_bytes sb;
  if (!copy_string (e, str, Qerlext_unicode_text, str, &sb))
    return false;
  bool raw = unibyte_high (e, &sb);
  bool good = elisp_ok (e->env);
  size_t chars = sb.len;
  bool latin1 = true;
  if (good && !raw)
    {
      chars = 0;
      for (size_t i = 0; i < sb.len; chars++)
        if (next_char (sb.bytes, sb.len, &i) > 0xFF)
          latin1 = false;
    }
  if (!good)
    ;
  else if (sb.len == 0)
    etf_put_nil (e->out);
  else if (latin1 && chars <= 0xFFFF)
    put_latin1_string (e, &sb, chars);
  else
    good = put_char_list (e, &sb, chars, raw);
  string_bytes_free (&sb);
  if (good && e->out->status != ETF_OK)
    return encode_error (e, e->out->error, str);
  return good;
}

static bool
put_integer (encoder *e, emacs_value v)
{
  emacs_env *env = e->env;
  intmax_t i = env->extract_integer (env, v);
  if (elisp_ok (env))
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
  if (!elisp_ok (env))
    return false;
  if (!env->eq (env, env->type_of (env, v), Qinteger))
    return encode_error (e, "field is not an integer", vec);
  intmax_t i = env->extract_integer (env, v);
  if (!elisp_ok (env))
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
  if (!elisp_ok (env))
    return false;
  if (!env->eq (env, env->type_of (env, v), Qsymbol))
    return encode_error (e, "field is not a symbol", vec);
  if (!symbol_utf8 (e, v, buf, len))
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
  if (!elisp_ok (env))
    return NULL;
  if (!env->eq (env, env->type_of (env, v), Qstring))
    {
      encode_error (e, "field is not a string", vec);
      return NULL;
    }
  string_bytes sb;
  if (!copy_string (e, v, Qerlext_binary_bytes, vec, &sb))
    return NULL;
  *len = sb.len;
  if (sb.heap)
    return sb.heap;
  uint8_t *copy = malloc (sb.len + 1);
  if (!copy)
    encode_error (e, "out of memory", vec);
  else
    memcpy (copy, sb.bytes, sb.len);
  return copy;
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

/* The writers of [erl-tag TYPE ...] vectors, one a TYPE; each gets a
   vector of the right length.  */

static bool
put_tagged_binary (encoder *e, emacs_value vec)
{
  size_t len;
  uint8_t *bytes = field_bytes (e, vec, 2, &len);
  if (!bytes)
    return false;
  etf_put_binary (e->out, bytes, len);
  free (bytes);
  return true;
}

static bool
put_tagged_bitstring (encoder *e, emacs_value vec)
{
  size_t len;
  uint64_t bits;
  uint8_t *bytes = field_bytes (e, vec, 2, &len);
  bool good = bytes && field_uint (e, vec, 3, 8, &bits);
  if (good && (len == 0) != (bits == 0))
    good = encode_error (e, "bitstring bit count must be 1 to 8", vec);
  if (good)
    etf_put_bitstring (e->out, bytes, len, (unsigned) bits);
  free (bytes);
  return good;
}

static bool
put_tagged_pid (encoder *e, emacs_value vec)
{
  char node[ATOM_BUF];
  size_t node_len;
  uint64_t id, serial, creation;
  if (!field_symbol (e, vec, 2, node, &node_len)
      || !field_uint (e, vec, 3, UINT32_MAX, &id)
      || !field_uint (e, vec, 4, UINT32_MAX, &serial)
      || !field_uint (e, vec, 5, UINT32_MAX, &creation))
    return false;
  etf_put_pid (e->out, (uint8_t *) node, node_len, (uint32_t) id,
               (uint32_t) serial, (uint32_t) creation);
  return true;
}

static bool
put_tagged_port (encoder *e, emacs_value vec)
{
  char node[ATOM_BUF];
  size_t node_len;
  uint64_t id, creation;
  if (!field_symbol (e, vec, 2, node, &node_len)
      || !field_uint (e, vec, 3, UINT64_MAX, &id)
      || !field_uint (e, vec, 4, UINT32_MAX, &creation))
    return false;
  etf_put_port (e->out, (uint8_t *) node, node_len, id, (uint32_t) creation);
  return true;
}

static bool
put_tagged_new_ref (encoder *e, emacs_value vec)
{
  char node[ATOM_BUF];
  size_t node_len, len;
  uint64_t creation;
  uint8_t *id = NULL;
  bool good = field_symbol (e, vec, 2, node, &node_len)
              && field_uint (e, vec, 3, UINT32_MAX, &creation)
              && (id = field_bytes (e, vec, 4, &len));
  if (good && (len % 4 != 0 || len == 0 || len > 4 * ETF_MAX_REF_WORDS))
    good = encode_error (e, "reference id must be 4 to 20 bytes, "
                         "a multiple of 4", vec);
  if (good)
    etf_put_ref (e->out, (uint8_t *) node, node_len, (uint32_t) creation, id,
                 len / 4);
  free (id);
  return good;
}

static bool
put_tagged_old_ref (encoder *e, emacs_value vec)
{
  char node[ATOM_BUF];
  size_t node_len;
  uint64_t id, creation;
  if (!field_symbol (e, vec, 2, node, &node_len)
      || !field_uint (e, vec, 3, UINT32_MAX, &id)
      || !field_uint (e, vec, 4, 255, &creation))
    return false;
  etf_put_old_ref (e->out, (uint8_t *) node, node_len, (uint32_t) id,
                   (uint32_t) creation);
  return true;
}

static bool
put_tagged_export (encoder *e, emacs_value vec)
{
  char module[ATOM_BUF], function[ATOM_BUF];
  size_t module_len, function_len;
  uint64_t arity;
  if (!field_symbol (e, vec, 2, module, &module_len)
      || !field_symbol (e, vec, 3, function, &function_len)
      || !field_uint (e, vec, 4, 255, &arity))
    return false;
  etf_put_export (e->out, (uint8_t *) module, module_len,
                  (uint8_t *) function, function_len, (unsigned) arity);
  return true;
}

static bool
put_tagged_fun (encoder *e, emacs_value vec)
{
  size_t len;
  uint8_t *bytes = field_bytes (e, vec, 2, &len);
  bool good = bytes && put_fun (e, vec, bytes, len);
  free (bytes);
  return good;
}

static const struct
{
  emacs_value *type;
  ptrdiff_t size;  /* of the whole vector, erl-tag and TYPE included */
  bool (*put) (encoder *e, emacs_value vec);
} tagged_types[] = {
  { &Qerl_binary, 3, put_tagged_binary },
  { &Qerl_pid, 6, put_tagged_pid },
  { &Qerl_port, 5, put_tagged_port },
  { &Qerl_new_ref, 5, put_tagged_new_ref },
  { &Qerl_ref, 5, put_tagged_old_ref },
  { &Qerl_bitstring, 4, put_tagged_bitstring },
  { &Qerl_export, 5, put_tagged_export },
  { &Qerl_fun, 3, put_tagged_fun },
};

/* [erl-tag TYPE ...]: pids, ports, references, binaries and the rest.  */
static bool
put_tagged (encoder *e, emacs_value vec, ptrdiff_t size)
{
  emacs_env *env = e->env;
  emacs_value type = size >= 2 ? env->vec_get (env, vec, 1) : Qnil;
  for (size_t k = 0; k < sizeof tagged_types / sizeof *tagged_types; k++)
    {
      if (!elisp_eq (env, type, *tagged_types[k].type))
        continue;
      if (size != tagged_types[k].size)
        return encode_error (e, "tagged vector of the wrong length", vec);
      if (!tagged_types[k].put (e, vec))
        return false;
      if (e->out->status != ETF_OK)
        return encode_error (e, e->out->error, vec);
      return true;
    }
  return encode_error (e, "unknown erl-tag type", vec);
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

#define FUNCTION_REFUSED "a function has no Erlang form"

/* True when LIST, whose elements are VEC, is an interpreted function,
   (closure ...) or (lambda ...), rather than data.  */
static bool
interpreted_function_p (encoder *e, emacs_value vec, emacs_value list)
{
  emacs_env *env = e->env;
  emacs_value head = env->vec_get (env, vec, 0);
  if (!elisp_eq (env, head, Qclosure) && !elisp_eq (env, head, Qlambda))
    return false;
  emacs_value fn = elisp_call1 (env, Qerlext_interpreted_function_p, list);
  return elisp_ok (env) && !elisp_nilp (env, fn);
}

static bool
put_list (encoder *e, emacs_value list)
{
  emacs_env *env = e->env;
  emacs_value n = elisp_call (env, Qproper_list_p, 1, &list);
  if (!elisp_ok (env))
    return false;
  if (env->is_not_nil (env, n))
    {
      intmax_t len = env->extract_integer (env, n);
      if (len > UINT32_MAX)
        return encode_error (e, "list too long", list);
      emacs_value vec = elisp_call (env, Qvconcat, 1, &list);
      if (!elisp_ok (env))
        return false;
      if (interpreted_function_p (e, vec, list))
        return encode_error (e, FUNCTION_REFUSED, list);
      etf_put_list_header (e->out, (uint32_t) len);
      return push_frame (e, (encode_frame){ EF_LIST, vec, NULL, 0, len },
                         list);
    }
  /* Dotted or circular: count the conses, then look past the last.  */
  emacs_value count = elisp_call (env, Qsafe_length, 1, &list);
  intmax_t len = env->extract_integer (env, count);
  emacs_value tail = list;
  for (intmax_t k = 0; k < len && elisp_ok (env); k++)
    tail = elisp_call (env, Qcdr, 1, &tail);
  if (!elisp_ok (env))
    return false;
  if (env->eq (env, env->type_of (env, tail), Qcons))
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
  if (env->eq (env, type, Qinteger))
    return put_integer (e, v);
  if (env->eq (env, type, Qsymbol))
    return put_symbol (e, v);
  if (env->eq (env, type, Qcons))
    return put_list (e, v);
  if (env->eq (env, type, Qstring))
    return put_string (e, v);
  if (env->eq (env, type, Qvector))
    {
      ptrdiff_t size = env->vec_size (env, v);
      if (size > 0 && env->eq (env, env->vec_get (env, v, 0), Qerl_tag))
        return put_tagged (e, v, size);
      if (size > UINT32_MAX)
        return encode_error (e, "vector too long", v);
      etf_put_tuple_header (e->out, (uint32_t) size);
      if (size == 0)
        return true;
      return push_frame (e, (encode_frame){ EF_ELEMENTS, v, NULL, 0, size },
                         v);
    }
  if (env->eq (env, type, Qfloat))
    {
      etf_put_float (e->out, env->extract_float (env, v));
      if (e->out->status != ETF_OK)
        return encode_error (e, e->out->error, v);
      return true;
    }
  if (env->eq (env, type, Qhash_table))
    {
      emacs_value pairs = elisp_call (env, Qerlext_hash_table_flatten, 1, &v);
      if (!elisp_ok (env))
        return false;
      ptrdiff_t size = env->vec_size (env, pairs);
      etf_put_map_header (e->out, (uint32_t) (size / 2));
      if (size == 0)
        return true;
      return push_frame (e, (encode_frame){ EF_ELEMENTS, pairs, NULL, 0,
                                            size }, v);
    }
  emacs_value fn = elisp_call1 (env, Qfunctionp, v);
  if (!elisp_ok (env))
    return false;
  return encode_error (e, elisp_nilp (env, fn) ? "no Erlang term for this object"
                                              : FUNCTION_REFUSED, v);
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
          f->seq = elisp_call (env, Qcdr, 1, &cell);
          return elisp_call (env, Qcar, 1, &cell);
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
      if (!elisp_ok (env))
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
  return good && elisp_ok (env);
}
