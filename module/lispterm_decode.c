/* lispterm_decode.c --- External Term Format -> Lisp values, the term
   mapping of README.org.

   The term is walked with explicit heap stacks, never the C stack, so
   nesting depth is bounded only by `erlext-max-depth'.  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#include "lispterm.h"

#include "elisp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Pid -> vector, cached: a stream of messages names the same few pids
   again and again, and each fresh vector would be garbage for Emacs
   to collect.  A cached vector is handed out to every term that names
   the pid, so it must never be changed in place; erl.el changes only
   the pids of its own processes, which it makes itself.  */

#define PID_CACHE_SLOTS 64u   /* a power of two */

typedef struct
{
  emacs_value node;   /* global references, or NULL when the slot is free */
  emacs_value pid;
  uint32_t id, serial, creation;
  /* The last pid that missed here.  Only a pid that misses twice in a
     row takes the slot: one-off pids (a reply's fresh receiver, a
     short-lived worker) would only cost global references.  */
  uint32_t missed_id, missed_serial, missed_creation;
} pid_slot;

static pid_slot pid_cache[PID_CACHE_SLOTS];

static emacs_value
pid_vector (decoder *d, const etf_item *it)
{
  emacs_env *env = d->env;
  emacs_value node = atom_symbol (env, &it->v.pid.node);
  if (!elisp_ok (env))
    return NULL;
  uint32_t id = it->v.pid.id, serial = it->v.pid.serial;
  uint32_t creation = it->v.pid.creation;
  pid_slot *slot = &pid_cache[(id ^ (serial << 5) ^ creation)
                              & (PID_CACHE_SLOTS - 1)];
  if (slot->pid && slot->id == id && slot->serial == serial
      && slot->creation == creation && env->eq (env, slot->node, node))
    return slot->pid;

  emacs_value parts[4] = { node, env->make_integer (env, id),
                           env->make_integer (env, serial),
                           env->make_integer (env, creation) };
  emacs_value pid = tagged (d, Qerl_pid, 4, parts);
  if (!elisp_ok (env))
    return NULL;
  if (slot->missed_id != id || slot->missed_serial != serial
      || slot->missed_creation != creation)
    {
      slot->missed_id = id;
      slot->missed_serial = serial;
      slot->missed_creation = creation;
      return pid;
    }
  if (slot->pid)
    {
      env->free_global_ref (env, slot->node);
      env->free_global_ref (env, slot->pid);
    }
  slot->node = env->make_global_ref (env, node);
  slot->pid = env->make_global_ref (env, pid);
  slot->id = id;
  slot->serial = serial;
  slot->creation = creation;
  return slot->pid;
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
  if (elisp_ok (env))
    return v;
  /* Over `integer-width': a reason of the decoder's own.  A quit stays
     pending as it is.  */
  if (!elisp_quit_pending (env))
    {
      env->non_local_exit_clear (env);
      etf_fail (d->r, it->offset,
                "integer too large for Emacs (see `integer-width')");
    }
  return NULL;
}

/* A bitstring's unused low bits in its last byte are not part of it:
   Erlang ignores them, so they are cleared here and the term compares
   equal to what Erlang would re-encode.  */
static emacs_value
decode_bitstring (decoder *d, const etf_item *it)
{
  emacs_env *env = d->env;
  const uint8_t *data = it->v.bytes.data;
  size_t len = it->v.bytes.len;
  unsigned bits = it->v.bytes.bits;
  emacs_value a[2];
  uint8_t keep = (uint8_t) (0xFF << (8 - bits));
  uint8_t *copy = NULL;
  if (len > 0 && bits < 8 && (data[len - 1] & (uint8_t) ~keep) != 0)
    copy = malloc (len);
  if (copy)
    {
      memcpy (copy, data, len);
      copy[len - 1] &= keep;
      a[0] = elisp_unibyte (env, copy, len);
      free (copy);
    }
  else
    a[0] = elisp_unibyte (env, data, len);
  a[1] = env->make_integer (env, bits);
  return tagged (d, Qerl_bitstring, 2, a);
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
      return decode_bitstring (d, it);
    case ETF_PID:
      return pid_vector (d, it);
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
      /* Opaque; its free variables are checked, not decoded.  The bytes
         are kept as they came, unless they name atoms through a
         distribution header's cache: those are written out, so that
         the fun can be sent back.  */
      if (!d->r->atom_refs)
        {
          if (etf_skip_fun_body (d->r, it) != ETF_OK)
            return NULL;
          a[0] = elisp_unibyte (env, it->v.fun.data, it->v.fun.len);
          return tagged (d, Qerl_fun, 1, a);
        }
      {
        etf_buf fun;
        etf_buf_init (&fun);
        if (etf_copy_fun (d->r, it, &fun) != ETF_OK)
          {
            etf_buf_free (&fun);
            return NULL;
          }
        a[0] = elisp_unibyte (env, fun.data, fun.len);
        etf_buf_free (&fun);
        return tagged (d, Qerl_fun, 1, a);
      }
    default:
      etf_fail (d->r, it->offset, "unexpected item");
      return NULL;
    }
}

/* The most pairs of a map `erlext--small-map' makes in one call.  */
#define SMALL_MAP_PAIRS 4

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
      if (n <= 2 * SMALL_MAP_PAIRS)
        {
          emacs_value args[1 + 2 * SMALL_MAP_PAIRS];
          args[0] = env->make_integer (env, (intmax_t) (n / 2));
          for (size_t k = 0; k < n; k++)
            args[1 + k] = items[k];
          return elisp_call (env, Qerlext_small_map, 1 + (ptrdiff_t) n, args);
        }
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
  if (!lispterm_grow ((void **) &d->vals, &d->vals_cap, d->nvals + 1, sizeof v))
    return false;
  d->vals[d->nvals++] = v;
  return true;
}

/* Items decoded between two looks at C-g; a power of two.  */
#define DECODE_QUIT_INTERVAL 4096u

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
      /* C-g is looked at every few thousand items (some 100 µs): a
         big term must not hold Emacs.  A quit stays pending.  */
      if ((++items & (DECODE_QUIT_INTERVAL - 1)) == 0
          && elisp_quit_requested (env, d->opt->quits_inhibited))
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
          if (!lispterm_grow ((void **) &d->frames, &d->frames_cap, d->nframes + 1,
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
