/* fuzz_etf.c --- libFuzzer target for etf.c.

   Each input is checked three ways, which must agree: etf_validate, an
   etf_skip_terms pass, and an item-by-item walk with etf_read_item that
   re-encodes the term with the etf_put_* writer.  When the term is good,
   the re-encoding must be good too, must decode to the same items, must
   re-encode to itself, and must survive etf_compress and etf_open.
   The writer's atom check is also held against the reader's, with the
   input bytes as a name.  What a term costs Emacs (etf_measure_terms)
   must come from the same walk as the check, agree with the items'
   own costs, and stay within a bounded multiple of the input.

   Input: an external term, version byte first.  When the first byte is
   below 8 it is instead the size of an atom cache table handed to the
   reader (ATOM_CACHE_REF then resolves, as inside a distribution
   message), and the term follows it.  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#include "etf.h"
#include "etf_print.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* Small, so that a compression bomb costs little.  */
#define MAX_SIZE ((size_t) 1 << 20)

/* Any disagreement is a bug: let libFuzzer see a crash.  */
#define ASSERT(cond) ((cond) ? (void) 0 : abort ())

static const etf_atom cache_table[8] = {
  {(const uint8_t *) "a", 1, false},
  {(const uint8_t *) "derl@host", 9, false},
  {(const uint8_t *) "", 0, false},
  {(const uint8_t *) "h\xe9", 2, true},
  {(const uint8_t *) "\xe2\x9c\x93", 3, false},
  {(const uint8_t *) "lists", 5, false},
  {(const uint8_t *) "\xff\xfe", 2, true},
  {(const uint8_t *) "nonode@nohost", 13, false},
};

typedef struct
{
  const etf_atom *refs;  /* NULL: no distribution header */
  size_t nrefs;
} atom_cache;

/* Open BUF as a whole external term under CACHE.  */
static etf_status
open_term (etf_reader *r, const uint8_t *buf, size_t len,
           const atom_cache *cache, uint8_t **dec)
{
  etf_status s = etf_open (r, buf, len, MAX_SIZE, dec);
  r->atom_refs = cache->refs;
  r->atom_ref_count = cache->nrefs;
  return s;
}

/* Check BUF the way etf_validate does, but with CACHE.  */
static etf_status
check_term (const uint8_t *buf, size_t len, const atom_cache *cache)
{
  etf_reader r;
  uint8_t *dec;
  etf_status s = open_term (&r, buf, len, cache, &dec);
  if (s == ETF_OK)
    s = etf_skip_terms (&r, 1);
  if (s == ETF_OK)
    s = etf_expect_end (&r);
  if (s != ETF_OK)
    ASSERT (r.error != NULL);
  free (dec);
  return s;
}

/* The worst ratio of cost to bytes: an empty map, 5 bytes, costs
   ETF_COST_HASH.  */
#define MAX_COST_PER_BYTE 52

/* etf_measure_terms agrees with etf_skip_terms, with the sum of
   etf_item_cost over the items outside funs, and stays bounded.  */
static void
check_cost (const uint8_t *buf, size_t len, const atom_cache *cache,
            etf_status skipped)
{
  etf_reader r, w;
  uint8_t *dec, *dec2;
  etf_status s = open_term (&r, buf, len, cache, &dec);
  etf_status s2 = open_term (&w, buf, len, cache, &dec2);
  ASSERT (s == s2);
  if (s != ETF_OK)
    goto out;
  etf_cost cost = { 0, 0 };
  s = etf_measure_terms (&r, 1, &cost);
  if (s == ETF_OK)
    s = etf_expect_end (&r);
  ASSERT (s == skipped);
  if (s != ETF_OK)
    goto out;
  size_t term_len = r.len - 1;
  ASSERT (etf_cost_total (&cost, true)
          <= MAX_COST_PER_BYTE * (uint64_t) term_len);
  ASSERT (etf_cost_total (&cost, false) == cost.bytes);
  /* The items one by one: a fun's free variables cost nothing.  */
  uint64_t owed = 1, sum = 0, binaries = 0;
  while (owed > 0)
    {
      etf_item it;
      ASSERT (etf_read_item (&w, &it) == ETF_OK);
      owed = owed - 1 + etf_item_children (&it);
      sum += etf_item_cost (&it);
      binaries += it.kind == ETF_BINARY;
      if (it.kind == ETF_FUN)
        ASSERT (etf_skip_fun_body (&w, &it) == ETF_OK);
    }
  ASSERT (sum == cost.bytes && binaries == cost.binaries);
out:
  free (dec);
  free (dec2);
}

/* An atom's name as UTF-8, in OUT (at least 2 * 255 bytes) when it must
   be converted from Latin-1.  */
static const uint8_t *
utf8_name (const etf_atom *a, uint8_t *out, size_t *len)
{
  if (!a->latin1)
    {
      ASSERT (etf_utf8_chars (a->name, a->len) >= 0);
      *len = a->len;
      return a->name;
    }
  ASSERT (a->len <= ETF_MAX_ATOM_CHARS);
  *len = etf_latin1_to_utf8 (a->name, a->len, out);
  ASSERT (etf_utf8_chars (out, *len) == (long) a->len);
  return out;
}

static void
put_atom (etf_buf *b, const etf_atom *a)
{
  uint8_t tmp[2 * ETF_MAX_ATOM_CHARS];
  size_t len;
  const uint8_t *name = utf8_name (a, tmp, &len);
  etf_put_atom (b, name, len);
}


/* Write IT with the writer.  A fun is copied whole, free variables
   included, and they are skipped in R.  */
static etf_status
put_item (etf_buf *b, etf_reader *r, const etf_item *it)
{
  uint8_t tmp[2 * ETF_MAX_ATOM_CHARS], tmp2[2 * ETF_MAX_ATOM_CHARS];
  const uint8_t *name, *name2;
  size_t len, len2;

  switch (it->kind)
    {
    case ETF_INT:
      etf_put_int (b, it->v.i);
      break;
    case ETF_BIG:
      ASSERT (it->v.big.n > 7 && it->v.big.digits[it->v.big.n - 1] != 0);
      etf_put_big (b, it->v.big.negative, it->v.big.digits, it->v.big.n);
      break;
    case ETF_FLOAT:
      etf_put_float (b, it->v.f);
      break;
    case ETF_ATOM:
      put_atom (b, &it->v.atom);
      break;
    case ETF_NIL:
      etf_put_nil (b);
      break;
    case ETF_STRING:
      etf_put_string (b, it->v.bytes.data, it->v.bytes.len);
      break;
    case ETF_LIST:
      etf_put_list_header (b, it->v.arity);
      break;
    case ETF_TUPLE:
      etf_put_tuple_header (b, it->v.arity);
      break;
    case ETF_MAP:
      etf_put_map_header (b, it->v.arity);
      break;
    case ETF_BINARY:
      ASSERT (it->v.bytes.bits == 8);
      etf_put_binary (b, it->v.bytes.data, it->v.bytes.len);
      break;
    case ETF_BITSTRING:
      ASSERT (it->v.bytes.len > 0 && it->v.bytes.bits >= 1
              && it->v.bytes.bits <= 7);
      etf_put_bitstring (b, it->v.bytes.data, it->v.bytes.len,
                         it->v.bytes.bits);
      break;
    case ETF_PID:
      name = utf8_name (&it->v.pid.node, tmp, &len);
      etf_put_pid (b, name, len, it->v.pid.id, it->v.pid.serial,
                   it->v.pid.creation);
      break;
    case ETF_PORT:
      name = utf8_name (&it->v.port.node, tmp, &len);
      etf_put_port (b, name, len, it->v.port.id, it->v.port.creation);
      break;
    case ETF_REF:
      ASSERT (it->v.ref.words >= 1 && it->v.ref.words <= ETF_MAX_REF_WORDS);
      name = utf8_name (&it->v.ref.node, tmp, &len);
      etf_put_ref (b, name, len, it->v.ref.creation, it->v.ref.id,
                   it->v.ref.words);
      break;
    case ETF_OLD_REF:
      ASSERT (it->v.old_ref.creation <= 255);
      name = utf8_name (&it->v.old_ref.node, tmp, &len);
      etf_put_old_ref (b, name, len, it->v.old_ref.id,
                       it->v.old_ref.creation);
      break;
    case ETF_FUN:
      {
        ASSERT (it->v.fun.data == r->buf + it->offset
                && it->offset + it->v.fun.len == it->v.fun.end
                && it->v.fun.end <= r->len);
        etf_status s = etf_skip_terms (r, it->v.fun.num_free);
        if (s != ETF_OK)
          return s;
        if (r->pos != it->v.fun.end)
          return etf_fail (r, r->pos, "fun free variables do not fill it");
        etf_put_bytes (b, it->v.fun.data, it->v.fun.len);
        break;
      }
    case ETF_EXPORT:
      ASSERT (it->v.export.arity <= 255);
      name = utf8_name (&it->v.export.module, tmp, &len);
      name2 = utf8_name (&it->v.export.function, tmp2, &len2);
      etf_put_export (b, name, len, name2, len2, it->v.export.arity);
      break;
    default:
      abort ();
    }
  return ETF_OK;
}

/* Walk the term in BUF item by item and write it again into OUT, version
   byte first.  The items come in pre-order and containers carry their
   own arity, so the only state the walk needs is how many items are
   still owed: a one-counter stack, no recursion.  */
static etf_status
reencode (const uint8_t *buf, size_t len, const atom_cache *cache,
          etf_buf *out)
{
  etf_reader r;
  uint8_t *dec;
  etf_status s = open_term (&r, buf, len, cache, &dec);
  etf_put_version (out);
  uint64_t owed = 1;
  while (s == ETF_OK && owed > 0)
    {
      etf_item it;
      s = etf_read_item (&r, &it);
      if (s != ETF_OK)
        break;
      ASSERT (it.offset < r.pos && r.pos <= r.len);
      owed = owed - 1 + etf_item_children (&it);
      s = put_item (out, &r, &it);
    }
  if (s == ETF_OK)
    s = etf_expect_end (&r);
  if (s != ETF_OK)
    ASSERT (r.error != NULL && r.error_offset <= r.len);
  /* The writer refuses nothing the reader accepts.  */
  if (s == ETF_OK)
    ASSERT (out->status == ETF_OK);
  free (dec);
  return s;
}

static bool
same_atom (const etf_atom *a, const etf_atom *b)
{
  uint8_t ta[2 * ETF_MAX_ATOM_CHARS], tb[2 * ETF_MAX_ATOM_CHARS];
  size_t la, lb;
  const uint8_t *na = utf8_name (a, ta, &la);
  const uint8_t *nb = utf8_name (b, tb, &lb);
  return la == lb && memcmp (na, nb, la) == 0;
}

/* The writer zeroes a bitstring's unused low bits; the reader does not
   insist on it.  */
static bool
same_bytes (const etf_item *a, const etf_item *b)
{
  size_t n = a->v.bytes.len;
  if (n != b->v.bytes.len || a->v.bytes.bits != b->v.bytes.bits)
    return false;
  if (n == 0)
    return true;
  uint8_t mask = (uint8_t) (0xFF << (8 - a->v.bytes.bits));
  return memcmp (a->v.bytes.data, b->v.bytes.data, n - 1) == 0
         && (a->v.bytes.data[n - 1] & mask) == (b->v.bytes.data[n - 1] & mask);
}

static bool
same_item (const etf_item *a, const etf_item *b)
{
  if (a->kind != b->kind)
    return false;
  switch (a->kind)
    {
    case ETF_INT:
      return a->v.i == b->v.i;
    case ETF_BIG:
      return a->v.big.negative == b->v.big.negative
             && a->v.big.n == b->v.big.n
             && memcmp (a->v.big.digits, b->v.big.digits, a->v.big.n) == 0;
    case ETF_FLOAT:
      return memcmp (&a->v.f, &b->v.f, sizeof a->v.f) == 0;
    case ETF_ATOM:
      return same_atom (&a->v.atom, &b->v.atom);
    case ETF_NIL:
      return true;
    case ETF_STRING:
    case ETF_BINARY:
    case ETF_BITSTRING:
      return same_bytes (a, b);
    case ETF_LIST:
    case ETF_TUPLE:
    case ETF_MAP:
      return a->v.arity == b->v.arity;
    case ETF_PID:
      return same_atom (&a->v.pid.node, &b->v.pid.node)
             && a->v.pid.id == b->v.pid.id
             && a->v.pid.serial == b->v.pid.serial
             && a->v.pid.creation == b->v.pid.creation;
    case ETF_PORT:
      return same_atom (&a->v.port.node, &b->v.port.node)
             && a->v.port.id == b->v.port.id
             && a->v.port.creation == b->v.port.creation;
    case ETF_REF:
      return same_atom (&a->v.ref.node, &b->v.ref.node)
             && a->v.ref.creation == b->v.ref.creation
             && a->v.ref.words == b->v.ref.words
             && memcmp (a->v.ref.id, b->v.ref.id, 4 * a->v.ref.words) == 0;
    case ETF_OLD_REF:
      return same_atom (&a->v.old_ref.node, &b->v.old_ref.node)
             && a->v.old_ref.id == b->v.old_ref.id
             && a->v.old_ref.creation == b->v.old_ref.creation;
    case ETF_FUN:
      return a->v.fun.len == b->v.fun.len
             && a->v.fun.num_free == b->v.fun.num_free
             && memcmp (a->v.fun.data, b->v.fun.data, a->v.fun.len) == 0;
    case ETF_EXPORT:
      return same_atom (&a->v.export.module, &b->v.export.module)
             && same_atom (&a->v.export.function, &b->v.export.function)
             && a->v.export.arity == b->v.export.arity;
    }
  return false;
}

/* Walk two good terms side by side; they must hold the same items.  */
static void
compare_terms (const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
               const atom_cache *cache)
{
  etf_reader ra, rb;
  uint8_t *da, *db;
  ASSERT (open_term (&ra, a, alen, cache, &da) == ETF_OK);
  ASSERT (open_term (&rb, b, blen, cache, &db) == ETF_OK);
  uint64_t owed = 1;
  while (owed > 0)
    {
      etf_item ia, ib;
      ASSERT (etf_read_item (&ra, &ia) == ETF_OK);
      ASSERT (etf_read_item (&rb, &ib) == ETF_OK);
      ASSERT (same_item (&ia, &ib));
      owed = owed - 1 + etf_item_children (&ia);
      if (ia.kind == ETF_FUN)
        {
          /* Copied whole: its free variables are compared as bytes.  */
          ASSERT (etf_skip_terms (&ra, ia.v.fun.num_free) == ETF_OK);
          ASSERT (etf_skip_terms (&rb, ib.v.fun.num_free) == ETF_OK);
        }
    }
  ASSERT (etf_expect_end (&ra) == ETF_OK && etf_expect_end (&rb) == ETF_OK);
  free (da);
  free (db);
}

/* Whatever etf_put_atom accepts must read back as that very atom, and
   it must accept exactly the UTF-8 names of at most 255 characters.  */
static void
check_put_atom (const uint8_t *name, size_t len)
{
  if (len > 4 * ETF_MAX_ATOM_CHARS + 4)
    len = 4 * ETF_MAX_ATOM_CHARS + 4;
  long chars = etf_utf8_chars (name, len);
  etf_buf b;
  etf_buf_init (&b);
  etf_put_version (&b);
  etf_put_atom (&b, name, len);
  bool good = chars >= 0 && chars <= ETF_MAX_ATOM_CHARS;
  ASSERT ((b.status == ETF_OK) == good);
  if (b.status == ETF_OK)
    {
      etf_reader r;
      etf_item it;
      etf_reader_init (&r, b.data, b.len);
      r.pos = 1;
      ASSERT (etf_read_item (&r, &it) == ETF_OK && it.kind == ETF_ATOM
              && !it.v.atom.latin1 && it.v.atom.len == len
              && memcmp (it.v.atom.name, name, len) == 0
              && etf_expect_end (&r) == ETF_OK);
    }
  etf_buf_free (&b);
}

/* The trace printer, on any input: it stays within its limit and its
   buffer, prints only ASCII, and leaves the text as it was when it
   gives up.  The limit comes from the input's length.  */
static void
check_print (const uint8_t *data, size_t size, const atom_cache *cache)
{
  etf_reader r;
  uint8_t *dec = NULL;
  if (open_term (&r, data, size, cache, &dec) == ETF_OK)
    {
      char buf[64 + 300];
      memcpy (buf, "prefix", 6);
      etf_text text = { buf, 6, 6 + (size % 2 ? 300 : 40) };
      size_t limit = 1 + size % 300;
      if (etf_print_term (&r, size % 3 == 0, limit, &text))
        {
          ASSERT (text.len > 6 && text.len - 6 <= limit);
          ASSERT (text.len <= text.cap);
          for (size_t k = 6; k < text.len; k++)
            ASSERT (buf[k] >= 0x20 && buf[k] < 0x7f);
        }
      else
        ASSERT (text.len == 6);
      ASSERT (memcmp (buf, "prefix", 6) == 0);
    }
  free (dec);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  /* The bytes after the first, as an atom name for the writer.  */
  if (size > 0)
    check_put_atom (data + 1, size - 1);

  atom_cache cache = {NULL, 0};
  if (size > 0 && data[0] < 8)
    {
      cache.refs = cache_table;
      cache.nrefs = data[0];
      data++, size--;
    }

  /* The three verdicts must agree.  */
  etf_status skipped = check_term (data, size, &cache);
  if (!cache.refs)
    {
      const char *reason = NULL;
      size_t offset = 0;
      etf_status validated = etf_validate (data, size, MAX_SIZE, &reason,
                                           &offset);
      ASSERT (validated == skipped);
      if (validated != ETF_OK)
        ASSERT (reason != NULL && offset <= size);
    }
  check_print (data, size, &cache);
  check_cost (data, size, &cache, skipped);
  etf_buf once;
  etf_buf_init (&once);
  etf_status walked = reencode (data, size, &cache, &once);
  ASSERT (walked == skipped);

  if (walked == ETF_OK)
    {
      /* The re-encoding is good, holds the same items, and is a fixed
         point of re-encoding.  */
      ASSERT (check_term (once.data, once.len, &cache) == ETF_OK);
      compare_terms (data, size, once.data, once.len, &cache);
      etf_buf twice;
      etf_buf_init (&twice);
      ASSERT (reencode (once.data, once.len, &cache, &twice) == ETF_OK);
      ASSERT (twice.len == once.len
              && memcmp (twice.data, once.data, once.len) == 0);
      etf_buf_free (&twice);

      /* Compressed, it opens to the very same bytes.  */
      if (once.len - 1 <= MAX_SIZE)
        {
          etf_buf z;
          etf_buf_init (&z);
          etf_put_bytes (&z, once.data, once.len);
          etf_compress (&z, 1, 1);
          ASSERT (z.status == ETF_OK && z.len <= once.len);
          etf_reader r;
          uint8_t *dec;
          ASSERT (open_term (&r, z.data, z.len, &cache, &dec) == ETF_OK);
          ASSERT (r.len - r.pos == once.len - 1
                  && memcmp (r.buf + r.pos, once.data + 1, once.len - 1)
                     == 0);
          free (dec);
          etf_buf_free (&z);
        }
    }
  etf_buf_free (&once);
  return 0;
}
