/* etf.c --- Erlang External Term Format: bounds-checked reader, growable writer.  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#include "etf.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* ---------------------------------------------------------------- */
/* Names */

size_t
etf_latin1_to_utf8 (const uint8_t *in, size_t len, uint8_t *out)
{
  size_t o = 0;
  for (size_t i = 0; i < len; i++)
    {
      uint8_t c = in[i];
      if (c < 0x80)
        out[o++] = c;
      else
        {
          out[o++] = (uint8_t) (0xC0 | (c >> 6));
          out[o++] = (uint8_t) (0x80 | (c & 0x3F));
        }
    }
  return o;
}

long
etf_utf8_chars (const uint8_t *s, size_t len)
{
  long chars = 0;
  size_t i = 0;
  while (i < len)
    {
      uint8_t c = s[i];
      size_t n;
      uint32_t cp, min;
      if (c < 0x80)
        {
          i++;
          chars++;
          continue;
        }
      else if ((c & 0xE0) == 0xC0)
        n = 1, cp = c & 0x1F, min = 0x80;
      else if ((c & 0xF0) == 0xE0)
        n = 2, cp = c & 0x0F, min = 0x800;
      else if ((c & 0xF8) == 0xF0)
        n = 3, cp = c & 0x07, min = 0x10000;
      else
        return -1;
      if (len - i - 1 < n)
        return -1;
      for (size_t k = 1; k <= n; k++)
        {
          uint8_t cc = s[i + k];
          if ((cc & 0xC0) != 0x80)
            return -1;
          cp = (cp << 6) | (cc & 0x3F);
        }
      if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return -1;
      i += n + 1;
      chars++;
    }
  return chars;
}

/* ---------------------------------------------------------------- */
/* Reader */

void
etf_reader_init (etf_reader *r, const uint8_t *buf, size_t len)
{
  memset (r, 0, sizeof *r);
  r->buf = buf;
  r->len = len;
}

etf_status
etf_fail (etf_reader *r, size_t offset, const char *reason)
{
  r->error = reason;
  r->error_offset = offset;
  return ETF_ERROR;
}

static inline size_t
remaining (const etf_reader *r)
{
  return r->len - r->pos;
}

/* Make sure N more bytes exist; WHAT names them in the error.  */
static inline etf_status
need (etf_reader *r, size_t n, const char *what)
{
  if (remaining (r) < n)
    return etf_fail (r, r->pos, what);
  return ETF_OK;
}

#define TRY(expr)                              \
  do                                           \
    {                                          \
      etf_status try_status_ = (expr);         \
      if (try_status_ != ETF_OK)               \
        return try_status_;                    \
    }                                          \
  while (0)

static etf_status
read_atom_body (etf_reader *r, size_t tag_offset, size_t len, bool latin1,
                etf_atom *atom)
{
  TRY (need (r, len, "truncated atom"));
  const uint8_t *name = r->buf + r->pos;
  if (latin1)
    {
      if (len > ETF_MAX_ATOM_CHARS)
        return etf_fail (r, tag_offset, "atom longer than 255 characters");
    }
  else
    {
      long chars = etf_utf8_chars (name, len);
      if (chars < 0)
        return etf_fail (r, tag_offset, "atom name is not valid UTF-8");
      if (chars > ETF_MAX_ATOM_CHARS)
        return etf_fail (r, tag_offset, "atom longer than 255 characters");
    }
  atom->name = name;
  atom->len = len;
  atom->latin1 = latin1;
  r->pos += len;
  return ETF_OK;
}

/* Read an atom in any of its encodings, for the atoms inside pids,
   ports, references, funs and exports.  */
static etf_status
read_atom (etf_reader *r, etf_atom *atom)
{
  size_t start = r->pos;
  TRY (need (r, 1, "truncated term: atom expected"));
  uint8_t tag = r->buf[r->pos++];
  switch (tag)
    {
    case ETF_TAG_ATOM:
    case ETF_TAG_ATOM_UTF8:
      TRY (need (r, 2, "truncated atom length"));
      r->pos += 2;
      return read_atom_body (r, start, etf_get_u16 (r->buf + r->pos - 2),
                             tag == ETF_TAG_ATOM, atom);
    case ETF_TAG_SMALL_ATOM:
    case ETF_TAG_SMALL_ATOM_UTF8:
      TRY (need (r, 1, "truncated atom length"));
      r->pos += 1;
      return read_atom_body (r, start, r->buf[r->pos - 1],
                             tag == ETF_TAG_SMALL_ATOM, atom);
    case ETF_TAG_ATOM_CACHE_REF:
      TRY (need (r, 1, "truncated atom cache reference"));
      {
        uint8_t index = r->buf[r->pos++];
        if (!r->atom_refs)
          return etf_fail (r, start,
                           "atom cache reference outside a distribution "
                           "header");
        if (index >= r->atom_ref_count)
          return etf_fail (r, start, "atom cache reference out of range");
        *atom = r->atom_refs[index];
      }
      return ETF_OK;
    default:
      return etf_fail (r, start, "atom expected");
    }
}

/* SMALL_INTEGER_EXT or INTEGER_EXT, as inside funs.  */
static etf_status
read_small_int (etf_reader *r, int64_t *v)
{
  size_t start = r->pos;
  TRY (need (r, 1, "truncated term: integer expected"));
  uint8_t tag = r->buf[r->pos++];
  if (tag == ETF_TAG_SMALL_INTEGER)
    {
      TRY (need (r, 1, "truncated integer"));
      *v = r->buf[r->pos++];
      return ETF_OK;
    }
  if (tag == ETF_TAG_INTEGER)
    {
      TRY (need (r, 4, "truncated integer"));
      *v = (int32_t) etf_get_u32 (r->buf + r->pos);
      r->pos += 4;
      return ETF_OK;
    }
  return etf_fail (r, start, "integer expected");
}

static etf_status
read_pid_body (etf_reader *r, bool new_pid, etf_item *it)
{
  TRY (read_atom (r, &it->v.pid.node));
  TRY (need (r, new_pid ? 12 : 9, "truncated pid"));
  const uint8_t *p = r->buf + r->pos;
  it->v.pid.id = etf_get_u32 (p);
  it->v.pid.serial = etf_get_u32 (p + 4);
  it->v.pid.creation = new_pid ? etf_get_u32 (p + 8) : p[8];
  r->pos += new_pid ? 12 : 9;
  it->kind = ETF_PID;
  return ETF_OK;
}

static etf_status
read_fun (etf_reader *r, etf_item *it)
{
  /* Size counts itself and everything after it, not the tag.  */
  TRY (need (r, 4, "truncated fun"));
  uint32_t size = etf_get_u32 (r->buf + r->pos);
  if (size < 4 || size - 4 > remaining (r) - 4)
    return etf_fail (r, it->offset, "fun size exceeds the input");
  size_t end = r->pos + size;
  r->pos += 4;
  /* Arity, Uniq, Index, NumFree.  */
  TRY (need (r, 1 + 16 + 4 + 4, "truncated fun"));
  uint32_t num_free = etf_get_u32 (r->buf + r->pos + 21);
  r->pos += 25;
  etf_atom module;
  int64_t old_index, old_uniq;
  TRY (read_atom (r, &module));
  TRY (read_small_int (r, &old_index));
  TRY (read_small_int (r, &old_uniq));
  {
    size_t pid_start = r->pos;
    TRY (need (r, 1, "truncated fun"));
    uint8_t tag = r->buf[r->pos++];
    if (tag != ETF_TAG_PID && tag != ETF_TAG_NEW_PID)
      return etf_fail (r, pid_start, "fun without a pid");
    etf_item pid;
    TRY (read_pid_body (r, tag == ETF_TAG_NEW_PID, &pid));
  }
  if (r->pos > end)
    return etf_fail (r, it->offset, "fun size too small for its contents");
  if (num_free > end - r->pos)
    return etf_fail (r, it->offset, "fun free variable count exceeds its size");
  it->kind = ETF_FUN;
  it->v.fun.data = r->buf + it->offset;
  it->v.fun.len = end - it->offset;
  it->v.fun.num_free = num_free;
  it->v.fun.end = end;
  return ETF_OK;
}

/* Decode a big integer's magnitude; fold it into an int64 when it fits.  */
static etf_status
read_big_body (etf_reader *r, etf_item *it, size_t n)
{
  TRY (need (r, 1, "truncated big integer"));
  uint8_t sign = r->buf[r->pos++];
  if (sign > 1)
    return etf_fail (r, it->offset, "big integer sign is neither 0 nor 1");
  TRY (need (r, n, "truncated big integer"));
  const uint8_t *digits = r->buf + r->pos;
  r->pos += n;
  while (n > 0 && digits[n - 1] == 0)
    n--;
  if (n <= 8)
    {
      uint64_t mag = 0;
      for (size_t k = n; k-- > 0;)
        mag = (mag << 8) | digits[k];
      if (!sign && mag <= (uint64_t) INT64_MAX)
        {
          it->kind = ETF_INT;
          it->v.i = (int64_t) mag;
          return ETF_OK;
        }
      if (sign && mag <= (uint64_t) INT64_MAX + 1)
        {
          it->kind = ETF_INT;
          it->v.i = mag == (uint64_t) INT64_MAX + 1 ? INT64_MIN
                                                    : -(int64_t) mag;
          return ETF_OK;
        }
    }
  it->kind = ETF_BIG;
  it->v.big.negative = sign;
  it->v.big.digits = digits;
  it->v.big.n = n;
  return ETF_OK;
}

static etf_status
read_old_float (etf_reader *r, etf_item *it)
{
  TRY (need (r, 31, "truncated float"));
  char text[32];
  memcpy (text, r->buf + r->pos, 31);
  text[31] = '\0';
  r->pos += 31;
  size_t textlen = strlen (text);
  for (size_t k = 0; k < textlen; k++)
    if (!strchr ("0123456789+-.eE", text[k]))
      return etf_fail (r, it->offset, "malformed float text");
  for (size_t k = textlen; k < 31; k++)
    if (text[k] != '\0')
      return etf_fail (r, it->offset, "malformed float text");
  char *end;
  double v = strtod (text, &end);
  if (textlen == 0 || *end != '\0')
    return etf_fail (r, it->offset, "malformed float text");
  if (!isfinite (v))
    return etf_fail (r, it->offset, "float is not finite");
  it->kind = ETF_FLOAT;
  it->v.f = v;
  return ETF_OK;
}

/* A big-endian unsigned field of N bytes (1, 2 or 4); WHAT names it when
   it is cut short.  */
static etf_status
read_uint (etf_reader *r, size_t n, const char *what, uint32_t *v)
{
  TRY (need (r, n, what));
  const uint8_t *p = r->buf + r->pos;
  *v = n == 1 ? p[0] : n == 2 ? etf_get_u16 (p) : etf_get_u32 (p);
  r->pos += n;
  return ETF_OK;
}

/* SMALL_INTEGER_EXT, INTEGER_EXT.  */
static etf_status
read_int (etf_reader *r, uint8_t tag, etf_item *it)
{
  uint32_t v;
  if (tag == ETF_TAG_SMALL_INTEGER)
    TRY (read_uint (r, 1, "truncated integer", &v));
  else
    TRY (read_uint (r, 4, "truncated integer", &v));
  it->kind = ETF_INT;
  it->v.i = tag == ETF_TAG_SMALL_INTEGER ? (int64_t) v : (int32_t) v;
  return ETF_OK;
}

/* SMALL_BIG_EXT, LARGE_BIG_EXT.  */
static etf_status
read_big (etf_reader *r, uint8_t tag, etf_item *it)
{
  uint32_t n;
  TRY (read_uint (r, tag == ETF_TAG_SMALL_BIG ? 1 : 4,
                  "truncated big integer", &n));
  return read_big_body (r, it, n);
}

static etf_status
read_new_float (etf_reader *r, etf_item *it)
{
  TRY (need (r, 8, "truncated float"));
  uint64_t bits = etf_get_u64 (r->buf + r->pos);
  double v;
  memcpy (&v, &bits, sizeof v);
  if (!isfinite (v))
    return etf_fail (r, it->offset, "float is not finite");
  it->kind = ETF_FLOAT;
  it->v.f = v;
  r->pos += 8;
  return ETF_OK;
}

/* STRING_EXT (a 2-byte length) and BINARY_EXT (4): LEN bytes.  */
static etf_status
read_bytes (etf_reader *r, etf_item *it, etf_kind kind, size_t len_size,
            const char *what)
{
  uint32_t len;
  TRY (read_uint (r, len_size, what, &len));
  TRY (need (r, len, what));
  it->kind = kind;
  it->v.bytes.data = r->buf + r->pos;
  it->v.bytes.len = len;
  it->v.bytes.bits = 8;
  r->pos += len;
  return ETF_OK;
}

/* BIT_BINARY_EXT: a binary when every bit of the last byte is used.  */
static etf_status
read_bit_binary (etf_reader *r, etf_item *it)
{
  uint32_t len, bits;
  TRY (read_uint (r, 4, "truncated bitstring", &len));
  TRY (read_uint (r, 1, "truncated bitstring", &bits));
  if (bits > 8 || (bits == 0) != (len == 0))
    return etf_fail (r, it->offset, "bad bitstring bit count");
  TRY (need (r, len, "truncated bitstring"));
  it->kind = (bits == 8 || len == 0) ? ETF_BINARY : ETF_BITSTRING;
  it->v.bytes.data = r->buf + r->pos;
  it->v.bytes.len = len;
  it->v.bytes.bits = len == 0 ? 8 : bits;
  r->pos += len;
  return ETF_OK;
}

/* A container of ARITY items, each at least one byte.  */
static etf_status
check_arity (etf_reader *r, etf_item *it, uint64_t items)
{
  if (items > remaining (r))
    return etf_fail (r, it->offset, "element count exceeds the input");
  return ETF_OK;
}

/* LIST_EXT, SMALL_TUPLE_EXT, LARGE_TUPLE_EXT, MAP_EXT: the header; the
   items follow in the stream.  */
static etf_status
read_container (etf_reader *r, uint8_t tag, etf_item *it)
{
  uint32_t arity;
  switch (tag)
    {
    case ETF_TAG_LIST:
      TRY (read_uint (r, 4, "truncated list", &arity));
      it->kind = ETF_LIST;
      break;
    case ETF_TAG_SMALL_TUPLE:
      TRY (read_uint (r, 1, "truncated tuple", &arity));
      it->kind = ETF_TUPLE;
      break;
    case ETF_TAG_LARGE_TUPLE:
      TRY (read_uint (r, 4, "truncated tuple", &arity));
      it->kind = ETF_TUPLE;
      break;
    default:
      TRY (read_uint (r, 4, "truncated map", &arity));
      it->kind = ETF_MAP;
      break;
    }
  it->v.arity = arity;
  return check_arity (r, it, etf_item_children (it));
}

/* PORT_EXT, NEW_PORT_EXT, V4_PORT_EXT.  */
static etf_status
read_port (etf_reader *r, uint8_t tag, etf_item *it)
{
  TRY (read_atom (r, &it->v.port.node));
  size_t n = tag == ETF_TAG_PORT ? 5 : tag == ETF_TAG_NEW_PORT ? 8 : 12;
  TRY (need (r, n, "truncated port"));
  const uint8_t *q = r->buf + r->pos;
  if (tag == ETF_TAG_V4_PORT)
    {
      it->v.port.id = etf_get_u64 (q);
      it->v.port.creation = etf_get_u32 (q + 8);
    }
  else
    {
      it->v.port.id = etf_get_u32 (q);
      it->v.port.creation = tag == ETF_TAG_PORT ? q[4] : etf_get_u32 (q + 4);
    }
  r->pos += n;
  it->kind = ETF_PORT;
  return ETF_OK;
}

/* REFERENCE_EXT.  */
static etf_status
read_old_ref (etf_reader *r, etf_item *it)
{
  TRY (read_atom (r, &it->v.old_ref.node));
  TRY (need (r, 5, "truncated reference"));
  const uint8_t *q = r->buf + r->pos;
  it->v.old_ref.id = etf_get_u32 (q);
  it->v.old_ref.creation = q[4];
  r->pos += 5;
  it->kind = ETF_OLD_REF;
  return ETF_OK;
}

/* NEW_REFERENCE_EXT, NEWER_REFERENCE_EXT.  */
static etf_status
read_ref (etf_reader *r, uint8_t tag, etf_item *it)
{
  uint32_t words;
  TRY (read_uint (r, 2, "truncated reference", &words));
  if (words < 1 || words > ETF_MAX_REF_WORDS)
    return etf_fail (r, it->offset, "reference with a bad id length");
  TRY (read_atom (r, &it->v.ref.node));
  size_t cre = tag == ETF_TAG_NEWER_REFERENCE ? 4 : 1;
  TRY (need (r, cre + 4 * words, "truncated reference"));
  const uint8_t *q = r->buf + r->pos;
  it->v.ref.creation = cre == 4 ? etf_get_u32 (q) : q[0];
  it->v.ref.id = q + cre;
  it->v.ref.words = words;
  r->pos += cre + 4 * words;
  it->kind = ETF_REF;
  return ETF_OK;
}

/* EXPORT_EXT: module, function, and the arity as a small integer.  */
static etf_status
read_export (etf_reader *r, etf_item *it)
{
  TRY (read_atom (r, &it->v.export.module));
  TRY (read_atom (r, &it->v.export.function));
  size_t arity_at = r->pos;
  TRY (need (r, 2, "truncated export"));
  if (r->buf[r->pos] != ETF_TAG_SMALL_INTEGER)
    return etf_fail (r, arity_at, "export arity is not a small integer");
  it->v.export.arity = r->buf[r->pos + 1];
  r->pos += 2;
  it->kind = ETF_EXPORT;
  return ETF_OK;
}

etf_status
etf_read_item (etf_reader *r, etf_item *it)
{
  it->offset = r->pos;
  TRY (need (r, 1, "truncated term"));
  uint8_t tag = r->buf[r->pos++];
  switch (tag)
    {
    case ETF_TAG_SMALL_INTEGER:
    case ETF_TAG_INTEGER:
      return read_int (r, tag, it);
    case ETF_TAG_SMALL_BIG:
    case ETF_TAG_LARGE_BIG:
      return read_big (r, tag, it);
    case ETF_TAG_NEW_FLOAT:
      return read_new_float (r, it);
    case ETF_TAG_FLOAT:
      return read_old_float (r, it);
    case ETF_TAG_ATOM:
    case ETF_TAG_ATOM_UTF8:
    case ETF_TAG_SMALL_ATOM:
    case ETF_TAG_SMALL_ATOM_UTF8:
    case ETF_TAG_ATOM_CACHE_REF:
      r->pos--;
      it->kind = ETF_ATOM;
      return read_atom (r, &it->v.atom);
    case ETF_TAG_NIL:
      it->kind = ETF_NIL;
      return ETF_OK;
    case ETF_TAG_STRING:
      return read_bytes (r, it, ETF_STRING, 2, "truncated string");
    case ETF_TAG_BINARY:
      return read_bytes (r, it, ETF_BINARY, 4, "truncated binary");
    case ETF_TAG_BIT_BINARY:
      return read_bit_binary (r, it);
    case ETF_TAG_LIST:
    case ETF_TAG_SMALL_TUPLE:
    case ETF_TAG_LARGE_TUPLE:
    case ETF_TAG_MAP:
      return read_container (r, tag, it);
    case ETF_TAG_PID:
    case ETF_TAG_NEW_PID:
      return read_pid_body (r, tag == ETF_TAG_NEW_PID, it);
    case ETF_TAG_PORT:
    case ETF_TAG_NEW_PORT:
    case ETF_TAG_V4_PORT:
      return read_port (r, tag, it);
    case ETF_TAG_REFERENCE:
      return read_old_ref (r, it);
    case ETF_TAG_NEW_REFERENCE:
    case ETF_TAG_NEWER_REFERENCE:
      return read_ref (r, tag, it);
    case ETF_TAG_NEW_FUN:
      return read_fun (r, it);
    case ETF_TAG_EXPORT:
      return read_export (r, it);
    case ETF_TAG_COMPRESSED:
      return etf_fail (r, it->offset, "compressed term inside a term");
    default:
      return etf_fail (r, it->offset, "unknown tag");
    }
}

uint64_t
etf_item_children (const etf_item *it)
{
  switch (it->kind)
    {
    case ETF_LIST:
      return (uint64_t) it->v.arity + 1;
    case ETF_TUPLE:
      return it->v.arity;
    case ETF_MAP:
      return 2 * (uint64_t) it->v.arity;
    default:
      return 0;
    }
}

/* Walking terms keeps one count of the terms still owed, so plain
   nesting needs no stack at all.  Funs need to know where their free
   variables end, so each open fun keeps a small frame on a heap stack;
   a copy also remembers where the fun's size goes in its output.  */
typedef struct
{
  uint64_t owed_after;
  size_t end;      /* in the input */
  size_t size_at;  /* in the output, when copying */
} fun_frame;

typedef struct
{
  fun_frame *frames;
  size_t n, cap;
} fun_stack;

/* Push F onto S; false when memory runs out.  */
static bool
fun_stack_push (fun_stack *s, fun_frame f)
{
  if (s->n == s->cap)
    {
      size_t ncap = s->cap ? 2 * s->cap : 16;
      fun_frame *nf = realloc (s->frames, ncap * sizeof *nf);
      if (!nf)
        return false;
      s->frames = nf;
      s->cap = ncap;
    }
  s->frames[s->n++] = f;
  return true;
}

/* While no term is owed, close the innermost open fun of S: R must be
   at its end; a copy into OUT (when not NULL) gets the fun's size.  The
   terms owed around it are owed again.  */
static etf_status
fun_stack_close (fun_stack *s, etf_reader *r, uint64_t *owed, etf_buf *out)
{
  while (*owed == 0 && s->n > 0)
    {
      fun_frame f = s->frames[--s->n];
      if (r->pos != f.end)
        return etf_fail (r, r->pos, "fun free variables do not fill its size");
      if (out)
        etf_patch_u32 (out, f.size_at, (uint32_t) (out->len - f.size_at));
      *owed = f.owed_after;
    }
  return ETF_OK;
}

/* Emacs's fixnums: 62 bits on a 64-bit Emacs.  */
#define FIXNUM_MAX (((int64_t) 1 << 61) - 1)
#define FIXNUM_MIN (-((int64_t) 1 << 61))

static uint64_t
bignum_cost (uint64_t digit_bytes)
{
  return ETF_COST_BIGNUM + 8 * ((digit_bytes + 7) / 8);
}

uint64_t
etf_item_cost (const etf_item *it)
{
  switch (it->kind)
    {
    case ETF_INT:
      return it->v.i > FIXNUM_MAX || it->v.i < FIXNUM_MIN ? bignum_cost (8)
                                                          : 0;
    case ETF_BIG:
      return bignum_cost (it->v.big.n);
    case ETF_FLOAT:
      return ETF_COST_FLOAT;
    case ETF_STRING:
    case ETF_BINARY:
      return etf_cost_string (it->v.bytes.len);
    case ETF_BITSTRING:
      return etf_cost_vector (4) + etf_cost_string (it->v.bytes.len);
    case ETF_LIST:
      return ETF_COST_CONS * (uint64_t) it->v.arity;
    case ETF_TUPLE:
      return etf_cost_vector (it->v.arity);
    case ETF_MAP:
      return ETF_COST_HASH + ETF_COST_HASH_PAIR * (uint64_t) it->v.arity;
    case ETF_PID:
      return etf_cost_vector (6);
    case ETF_PORT:
      return etf_cost_vector (5)
             + (it->v.port.id > (uint64_t) FIXNUM_MAX ? bignum_cost (8) : 0);
    case ETF_REF:
      return etf_cost_vector (5) + etf_cost_string (4 * it->v.ref.words);
    case ETF_OLD_REF:
    case ETF_EXPORT:
      return etf_cost_vector (5);
    case ETF_FUN:
      return etf_cost_vector (3) + etf_cost_string (it->v.fun.len);
    case ETF_ATOM:
    case ETF_NIL:
    default:
      return 0;
    }
}

etf_status
etf_skip_terms (etf_reader *r, uint64_t count)
{
  return etf_measure_terms (r, count, NULL);
}

/* Costs cannot overflow: each is at most about 60 times the bytes of
   input that make it.  */
etf_status
etf_measure_terms (etf_reader *r, uint64_t count, etf_cost *cost)
{
  uint64_t owed = count;
  fun_stack funs = { NULL, 0, 0 };
  etf_status status = ETF_OK;

  for (;;)
    {
      status = fun_stack_close (&funs, r, &owed, NULL);
      if (status != ETF_OK || owed == 0)
        break;
      etf_item it;
      status = etf_read_item (r, &it);
      if (status != ETF_OK)
        break;
      owed--;
      /* A fun's free variables are checked, not decoded: its bytes
         are its cost.  */
      if (cost && funs.n == 0)
        {
          cost->bytes += etf_item_cost (&it);
          cost->binaries += it.kind == ETF_BINARY;
        }
      if (it.kind != ETF_FUN)
        {
          owed += etf_item_children (&it);
          continue;
        }
      if (!fun_stack_push (&funs, (fun_frame){ owed, it.v.fun.end, 0 }))
        {
          etf_fail (r, it.offset, "out of memory");
          status = ETF_NO_MEMORY;
          break;
        }
      owed = it.v.fun.num_free;
    }
  free (funs.frames);
  return status;
}

etf_status
etf_skip_fun_body (etf_reader *r, const etf_item *fun)
{
  TRY (etf_skip_terms (r, fun->v.fun.num_free));
  if (r->pos != fun->v.fun.end)
    return etf_fail (r, r->pos, "fun free variables do not fill its size");
  return ETF_OK;
}

/* Whether ATOM came from the distribution header's atom cache rather
   than from R's own bytes: then the bytes name it only in this frame.  */
static bool
atom_from_cache (const etf_reader *r, const etf_atom *atom)
{
  return atom->name < r->buf || atom->name > r->buf + r->len;
}

/* Append the bytes of R from START to its position.  */
static void
copy_span (etf_buf *out, const etf_reader *r, size_t start)
{
  etf_put_bytes (out, r->buf + start, r->pos - start);
}

/* Whether IT, just read from R, names an atom through the atom cache.  */
static bool
names_cached_atom (const etf_reader *r, const etf_item *it)
{
  switch (it->kind)
    {
    case ETF_ATOM:
      return atom_from_cache (r, &it->v.atom);
    case ETF_PID:
      return atom_from_cache (r, &it->v.pid.node);
    case ETF_PORT:
      return atom_from_cache (r, &it->v.port.node);
    case ETF_REF:
      return atom_from_cache (r, &it->v.ref.node);
    case ETF_OLD_REF:
      return atom_from_cache (r, &it->v.old_ref.node);
    case ETF_EXPORT:
      return atom_from_cache (r, &it->v.export.module)
             || atom_from_cache (r, &it->v.export.function);
    default:
      return false;
    }
}

/* Copy the item IT, just read from R, with the atoms its own bytes name
   through the atom cache written out.  Containers copy their header
   only; funs are left to the caller.  */
static void
copy_item_resolved (etf_buf *out, const etf_reader *r, const etf_item *it)
{
  if (!names_cached_atom (r, it))
    {
      copy_span (out, r, it->offset);
      return;
    }
  switch (it->kind)
    {
    case ETF_ATOM:
      etf_put_atom (out, it->v.atom.name, it->v.atom.len);
      break;
    case ETF_PID:
      etf_put_pid (out, it->v.pid.node.name, it->v.pid.node.len,
                   it->v.pid.id, it->v.pid.serial, it->v.pid.creation);
      break;
    case ETF_PORT:
      etf_put_port (out, it->v.port.node.name, it->v.port.node.len,
                    it->v.port.id, it->v.port.creation);
      break;
    case ETF_REF:
      etf_put_ref (out, it->v.ref.node.name, it->v.ref.node.len,
                   it->v.ref.creation, it->v.ref.id, it->v.ref.words);
      break;
    case ETF_OLD_REF:
      etf_put_old_ref (out, it->v.old_ref.node.name, it->v.old_ref.node.len,
                       it->v.old_ref.id, it->v.old_ref.creation);
      break;
    default: /* ETF_EXPORT */
      etf_put_export (out, it->v.export.module.name,
                      it->v.export.module.len, it->v.export.function.name,
                      it->v.export.function.len, it->v.export.arity);
      break;
    }
}

/* Copy the header of FUN, just read from R: its size left for the
   caller to fill in at the offset returned.  */
static size_t
copy_fun_header (etf_buf *out, const etf_reader *r, const etf_item *fun)
{
  /* Tag, then Size, then Arity, Uniq, Index and NumFree (25 bytes).  */
  etf_reader h = *r;
  h.pos = fun->offset + 5 + 25;
  etf_put_u8 (out, ETF_TAG_NEW_FUN);
  size_t size_at = out->len;
  etf_put_u32 (out, 0);
  etf_put_bytes (out, r->buf + fun->offset + 5, 25);
  /* read_fun checked all of these.  */
  etf_atom module;
  int64_t ignored;
  (void) read_atom (&h, &module);
  if (atom_from_cache (&h, &module))
    etf_put_atom (out, module.name, module.len);
  else
    copy_span (out, &h, fun->offset + 30);
  size_t ints = h.pos;
  (void) read_small_int (&h, &ignored);
  (void) read_small_int (&h, &ignored);
  copy_span (out, &h, ints);
  etf_item pid;
  pid.offset = h.pos;
  pid.kind = ETF_PID;
  uint8_t tag = h.buf[h.pos++];
  (void) read_pid_body (&h, tag == ETF_TAG_NEW_PID, &pid);
  copy_item_resolved (out, &h, &pid);
  return size_at;
}

etf_status
etf_copy_fun (etf_reader *r, const etf_item *fun, etf_buf *out)
{
  fun_stack funs = { NULL, 0, 0 };
  etf_status status = ETF_OK;
  uint64_t owed = 0;
  etf_item it = *fun;
  for (;;)
    {
      if (it.kind != ETF_FUN)
        {
          copy_item_resolved (out, r, &it);
          owed += etf_item_children (&it);
        }
      else
        {
          size_t size_at = copy_fun_header (out, r, &it);
          if (!fun_stack_push (&funs, (fun_frame){ owed, it.v.fun.end,
                                                   size_at }))
            {
              etf_fail (r, it.offset, "out of memory");
              status = ETF_NO_MEMORY;
              break;
            }
          owed = it.v.fun.num_free;
        }
      status = fun_stack_close (&funs, r, &owed, out);
      if (status != ETF_OK || funs.n == 0)
        break;
      status = etf_read_item (r, &it);
      if (status != ETF_OK)
        break;
      owed--;
    }
  if (status == ETF_OK && out->status != ETF_OK)
    status = etf_fail (r, fun->offset, out->error);
  free (funs.frames);
  return status;
}

etf_status
etf_expect_end (etf_reader *r)
{
  if (r->pos != r->len)
    return etf_fail (r, r->pos, "trailing bytes after the term");
  return ETF_OK;
}

etf_status
etf_open (etf_reader *r, const uint8_t *buf, size_t len, size_t max_size,
          uint8_t **decompressed)
{
  *decompressed = NULL;
  etf_reader_init (r, buf, len);
  TRY (need (r, 1, "empty input"));
  if (buf[0] != ETF_VERSION)
    return etf_fail (r, 0, "not an external term (version byte is not 131)");
  r->pos = 1;
  if (len < 2 || buf[1] != ETF_TAG_COMPRESSED)
    return ETF_OK;

  r->pos = 2;
  TRY (need (r, 4, "truncated compressed term"));
  uint32_t size = etf_get_u32 (buf + 2);
  if (size == 0)
    return etf_fail (r, 1, "compressed term with size 0");
  if (size > max_size)
    return etf_fail (r, 1, "compressed term's size exceeds the limit");
  uint8_t *out = malloc (size);
  if (!out)
    {
      r->error = "out of memory";
      r->error_offset = 1;
      return ETF_NO_MEMORY;
    }
  z_stream zs;
  memset (&zs, 0, sizeof zs);
  if (inflateInit (&zs) != Z_OK)
    {
      free (out);
      r->error = "out of memory";
      r->error_offset = 1;
      return ETF_NO_MEMORY;
    }
  /* Feed the input in bounded chunks: avail_in is only 32 bits wide.  */
  const uint8_t *in = buf + 6;
  size_t in_left = len - 6;
  zs.next_out = out;
  zs.avail_out = size;
  int zret = Z_OK;
  while (zret == Z_OK)
    {
      if (zs.avail_in == 0)
        {
          uInt chunk = in_left > (1u << 30) ? (1u << 30) : (uInt) in_left;
          zs.next_in = (Bytef *) in;
          zs.avail_in = chunk;
          in += chunk;
          in_left -= chunk;
        }
      zret = inflate (&zs, Z_NO_FLUSH);
      if (zret == Z_BUF_ERROR && zs.avail_in == 0 && in_left == 0)
        break;
      if (zret == Z_OK && zs.avail_out == 0)
        {
          /* The output is full: the stream must end right here.  */
          unsigned char probe;
          zs.next_out = &probe;
          zs.avail_out = 1;
          zret = inflate (&zs, Z_NO_FLUSH);
          if (zret != Z_STREAM_END || zs.avail_out == 0)
            zret = Z_DATA_ERROR;
        }
    }
  size_t produced = zs.total_out;
  size_t unread = zs.avail_in + in_left;
  inflateEnd (&zs);
  if (zret != Z_STREAM_END || produced != size)
    {
      free (out);
      return etf_fail (r, 6, "corrupt compressed term");
    }
  if (unread != 0)
    {
      free (out);
      return etf_fail (r, len - unread, "trailing bytes after the term");
    }
  *decompressed = out;
  etf_reader_init (r, out, size);
  return ETF_OK;
}

#ifdef DERL_TESTING
etf_status
etf_validate (const uint8_t *buf, size_t len, size_t max_size,
              const char **reason, size_t *offset)
{
  etf_reader r;
  uint8_t *dec;
  etf_status status = etf_open (&r, buf, len, max_size, &dec);
  if (status == ETF_OK)
    status = etf_skip_terms (&r, 1);
  if (status == ETF_OK)
    status = etf_expect_end (&r);
  if (status != ETF_OK)
    {
      *reason = r.error;
      *offset = r.error_offset;
    }
  free (dec);
  return status;
}
#endif /* DERL_TESTING */

/* ---------------------------------------------------------------- */
/* Writer */

void
etf_buf_init (etf_buf *b)
{
  memset (b, 0, sizeof *b);
}

void
etf_buf_free (etf_buf *b)
{
  free (b->data);
  etf_buf_init (b);
}

void
etf_buf_fail (etf_buf *b, etf_status status, const char *reason)
{
  if (b->status == ETF_OK)
    {
      b->status = status;
      b->error = reason;
    }
}

bool
etf_buf_reserve (etf_buf *b, size_t n)
{
  if (b->status != ETF_OK)
    return false;
  if (b->cap - b->len >= n)
    return true;
  if (n > SIZE_MAX / 2 - b->len)
    {
      etf_buf_fail (b, ETF_NO_MEMORY, "out of memory");
      return false;
    }
  size_t ncap = b->cap ? b->cap : 256;
  while (ncap - b->len < n)
    ncap *= 2;
  uint8_t *nd = realloc (b->data, ncap);
  if (!nd)
    {
      etf_buf_fail (b, ETF_NO_MEMORY, "out of memory");
      return false;
    }
  b->data = nd;
  b->cap = ncap;
  return true;
}

void
etf_put_bytes (etf_buf *b, const void *data, size_t n)
{
  if (n == 0 || !etf_buf_reserve (b, n))
    return;
  memcpy (b->data + b->len, data, n);
  b->len += n;
}

void
etf_put_u8 (etf_buf *b, uint8_t v)
{
  if (etf_buf_reserve (b, 1))
    b->data[b->len++] = v;
}

void
etf_put_u16 (etf_buf *b, uint16_t v)
{
  if (!etf_buf_reserve (b, 2))
    return;
  b->data[b->len++] = (uint8_t) (v >> 8);
  b->data[b->len++] = (uint8_t) v;
}

void
etf_put_u32 (etf_buf *b, uint32_t v)
{
  if (!etf_buf_reserve (b, 4))
    return;
  uint8_t *p = b->data + b->len;
  p[0] = (uint8_t) (v >> 24);
  p[1] = (uint8_t) (v >> 16);
  p[2] = (uint8_t) (v >> 8);
  p[3] = (uint8_t) v;
  b->len += 4;
}

void
etf_put_u64 (etf_buf *b, uint64_t v)
{
  etf_put_u32 (b, (uint32_t) (v >> 32));
  etf_put_u32 (b, (uint32_t) v);
}

void
etf_patch_u32 (etf_buf *b, size_t offset, uint32_t v)
{
  if (b->status != ETF_OK || offset + 4 > b->len)
    return;
  uint8_t *p = b->data + offset;
  p[0] = (uint8_t) (v >> 24);
  p[1] = (uint8_t) (v >> 16);
  p[2] = (uint8_t) (v >> 8);
  p[3] = (uint8_t) v;
}

void
etf_put_version (etf_buf *b)
{
  etf_put_u8 (b, ETF_VERSION);
}

void
etf_put_int (etf_buf *b, int64_t v)
{
  if (v >= 0 && v <= 255)
    {
      if (!etf_buf_reserve (b, 2))
        return;
      b->data[b->len++] = ETF_TAG_SMALL_INTEGER;
      b->data[b->len++] = (uint8_t) v;
    }
  else if (v >= INT32_MIN && v <= INT32_MAX)
    {
      if (!etf_buf_reserve (b, 5))
        return;
      uint32_t u = (uint32_t) (int32_t) v;
      uint8_t *p = b->data + b->len;
      p[0] = ETF_TAG_INTEGER;
      p[1] = (uint8_t) (u >> 24);
      p[2] = (uint8_t) (u >> 16);
      p[3] = (uint8_t) (u >> 8);
      p[4] = (uint8_t) u;
      b->len += 5;
    }
  else
    {
      uint64_t mag = v < 0 ? (uint64_t) 0 - (uint64_t) v : (uint64_t) v;
      uint8_t digits[8];
      size_t n = 0;
      while (mag)
        {
          digits[n++] = (uint8_t) mag;
          mag >>= 8;
        }
      etf_put_u8 (b, ETF_TAG_SMALL_BIG);
      etf_put_u8 (b, (uint8_t) n);
      etf_put_u8 (b, v < 0);
      etf_put_bytes (b, digits, n);
    }
}

void
etf_put_big (etf_buf *b, bool negative, const uint8_t *digits, size_t n)
{
  while (n > 0 && digits[n - 1] == 0)
    n--;
  if (n <= 7)
    {
      int64_t mag = 0;
      for (size_t k = n; k-- > 0;)
        mag = (mag << 8) | digits[k];
      etf_put_int (b, negative ? -mag : mag);
      return;
    }
  if (n > UINT32_MAX)
    {
      etf_buf_fail (b, ETF_ERROR, "integer too large");
      return;
    }
  if (n <= 255)
    {
      etf_put_u8 (b, ETF_TAG_SMALL_BIG);
      etf_put_u8 (b, (uint8_t) n);
    }
  else
    {
      etf_put_u8 (b, ETF_TAG_LARGE_BIG);
      etf_put_u32 (b, (uint32_t) n);
    }
  etf_put_u8 (b, negative ? 1 : 0);
  etf_put_bytes (b, digits, n);
}

void
etf_put_float (etf_buf *b, double v)
{
  if (!isfinite (v))
    {
      etf_buf_fail (b, ETF_ERROR, "NaN and infinities have no Erlang form");
      return;
    }
  uint64_t bits;
  memcpy (&bits, &v, sizeof bits);
  etf_put_u8 (b, ETF_TAG_NEW_FLOAT);
  etf_put_u64 (b, bits);
}

void
etf_put_atom (etf_buf *b, const uint8_t *name, size_t len)
{
  /* Short names are checked too: a name that is not UTF-8 (raw bytes
     from a unibyte string) would make the peer reject the message.  */
  long chars = etf_utf8_chars (name, len);
  if (chars < 0 || chars > ETF_MAX_ATOM_CHARS)
    {
      etf_buf_fail (b, ETF_ERROR,
                    chars < 0 ? "atom name is not valid UTF-8"
                              : "atom longer than 255 characters");
      return;
    }
  if (!etf_buf_reserve (b, 3 + len))
    return;
  if (len <= 255)
    {
      b->data[b->len++] = ETF_TAG_SMALL_ATOM_UTF8;
      b->data[b->len++] = (uint8_t) len;
    }
  else
    {
      b->data[b->len++] = ETF_TAG_ATOM_UTF8;
      b->data[b->len++] = (uint8_t) (len >> 8);
      b->data[b->len++] = (uint8_t) len;
    }
  memcpy (b->data + b->len, name, len);
  b->len += len;
}

void
etf_put_nil (etf_buf *b)
{
  etf_put_u8 (b, ETF_TAG_NIL);
}

void
etf_put_string (etf_buf *b, const uint8_t *bytes, size_t len)
{
  if (len > 0xFFFF)
    {
      etf_buf_fail (b, ETF_ERROR, "string too long for STRING_EXT");
      return;
    }
  if (!etf_buf_reserve (b, 3 + len))
    return;
  b->data[b->len++] = ETF_TAG_STRING;
  b->data[b->len++] = (uint8_t) (len >> 8);
  b->data[b->len++] = (uint8_t) len;
  memcpy (b->data + b->len, bytes, len);
  b->len += len;
}

void
etf_put_list_header (etf_buf *b, uint32_t arity)
{
  etf_put_u8 (b, ETF_TAG_LIST);
  etf_put_u32 (b, arity);
}

void
etf_put_tuple_header (etf_buf *b, uint32_t arity)
{
  if (arity <= 255)
    {
      etf_put_u8 (b, ETF_TAG_SMALL_TUPLE);
      etf_put_u8 (b, (uint8_t) arity);
    }
  else
    {
      etf_put_u8 (b, ETF_TAG_LARGE_TUPLE);
      etf_put_u32 (b, arity);
    }
}

void
etf_put_map_header (etf_buf *b, uint32_t arity)
{
  etf_put_u8 (b, ETF_TAG_MAP);
  etf_put_u32 (b, arity);
}

void
etf_put_binary (etf_buf *b, const uint8_t *data, size_t len)
{
  if (len > UINT32_MAX)
    {
      etf_buf_fail (b, ETF_ERROR, "binary too large");
      return;
    }
  etf_put_u8 (b, ETF_TAG_BINARY);
  etf_put_u32 (b, (uint32_t) len);
  etf_put_bytes (b, data, len);
}

void
etf_put_bitstring (etf_buf *b, const uint8_t *data, size_t len,
                   unsigned bits)
{
  if (len == 0 || bits == 8)
    {
      etf_put_binary (b, data, len);
      return;
    }
  if (bits < 1 || bits > 8 || len > UINT32_MAX)
    {
      etf_buf_fail (b, ETF_ERROR, "bad bitstring");
      return;
    }
  etf_put_u8 (b, ETF_TAG_BIT_BINARY);
  etf_put_u32 (b, (uint32_t) len);
  etf_put_u8 (b, (uint8_t) bits);
  etf_put_bytes (b, data, len - 1);
  /* Erlang keeps the unused low bits of the last byte zero.  */
  etf_put_u8 (b, (uint8_t) (data[len - 1] & (0xFF << (8 - bits))));
}

void
etf_put_pid (etf_buf *b, const uint8_t *node, size_t node_len, uint32_t id,
             uint32_t serial, uint32_t creation)
{
  etf_put_u8 (b, ETF_TAG_NEW_PID);
  etf_put_atom (b, node, node_len);
  etf_put_u32 (b, id);
  etf_put_u32 (b, serial);
  etf_put_u32 (b, creation);
}

void
etf_put_port (etf_buf *b, const uint8_t *node, size_t node_len, uint64_t id,
              uint32_t creation)
{
  bool v4 = id > UINT32_MAX;
  etf_put_u8 (b, v4 ? ETF_TAG_V4_PORT : ETF_TAG_NEW_PORT);
  etf_put_atom (b, node, node_len);
  if (v4)
    etf_put_u64 (b, id);
  else
    etf_put_u32 (b, (uint32_t) id);
  etf_put_u32 (b, creation);
}

void
etf_put_ref (etf_buf *b, const uint8_t *node, size_t node_len,
             uint32_t creation, const uint8_t *id, size_t words)
{
  if (words < 1 || words > ETF_MAX_REF_WORDS)
    {
      etf_buf_fail (b, ETF_ERROR, "reference id must be 1 to 5 words");
      return;
    }
  etf_put_u8 (b, ETF_TAG_NEWER_REFERENCE);
  etf_put_u16 (b, (uint16_t) words);
  etf_put_atom (b, node, node_len);
  etf_put_u32 (b, creation);
  etf_put_bytes (b, id, 4 * words);
}

void
etf_put_old_ref (etf_buf *b, const uint8_t *node, size_t node_len,
                 uint32_t id, uint32_t creation)
{
  etf_put_u8 (b, ETF_TAG_REFERENCE);
  etf_put_atom (b, node, node_len);
  etf_put_u32 (b, id);
  etf_put_u8 (b, (uint8_t) creation);
}

void
etf_put_export (etf_buf *b, const uint8_t *module, size_t module_len,
                const uint8_t *function, size_t function_len, unsigned arity)
{
  if (arity > 255)
    {
      etf_buf_fail (b, ETF_ERROR, "export arity above 255");
      return;
    }
  etf_put_u8 (b, ETF_TAG_EXPORT);
  etf_put_atom (b, module, module_len);
  etf_put_atom (b, function, function_len);
  etf_put_u8 (b, ETF_TAG_SMALL_INTEGER);
  etf_put_u8 (b, (uint8_t) arity);
}

void
etf_compress (etf_buf *b, size_t start, int level)
{
  if (b->status != ETF_OK || start >= b->len)
    return;
  size_t raw = b->len - start;
  if (raw > UINT32_MAX)
    return;  /* COMPRESSED carries a 32-bit size; leave it plain.  */
  uLongf bound = compressBound ((uLong) raw);
  uint8_t *z = malloc (5 + bound);
  if (!z)
    {
      etf_buf_fail (b, ETF_NO_MEMORY, "out of memory");
      return;
    }
  uLongf zlen = bound;
  if (compress2 (z + 5, &zlen, b->data + start, (uLong) raw, level) != Z_OK
      || 5 + zlen >= raw)
    {
      free (z);
      return;
    }
  z[0] = ETF_TAG_COMPRESSED;
  z[1] = (uint8_t) (raw >> 24);
  z[2] = (uint8_t) (raw >> 16);
  z[3] = (uint8_t) (raw >> 8);
  z[4] = (uint8_t) raw;
  memcpy (b->data + start, z, 5 + zlen);
  b->len = start + 5 + zlen;
  free (z);
}
