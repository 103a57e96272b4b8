/* test_etf.c --- unit tests for etf.c, the External Term Format codec.

   Built with ASan and UBSan by `make build/test_etf'.  Byte vectors
   marked "Erlang:" were produced by term_to_binary on Erlang/OTP 25 and
   are pasted here as constants, so the tests need no Erlang at run
   time.  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#include "etf.h"
#include "etf_print.h"
#include "check.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define MAX_SIZE ((size_t) 1 << 20)

/* ---------------------------------------------------------------- */
/* Helpers */

static bool
valid (const uint8_t *buf, size_t len)
{
  const char *reason = NULL;
  size_t offset = 0;
  return etf_validate (buf, len, MAX_SIZE, &reason, &offset) == ETF_OK;
}

/* True when BUF fails to validate with a reason containing TEXT.  */
static bool
fails_with (const uint8_t *buf, size_t len, const char *text)
{
  const char *reason = NULL;
  size_t offset = 0;
  if (etf_validate (buf, len, MAX_SIZE, &reason, &offset) != ETF_ERROR)
    return false;
  if (!reason || !strstr (reason, text))
    {
      fprintf (stderr, "  reason was: %s\n", reason ? reason : "(none)");
      return false;
    }
  return true;
}

/* The offset etf_validate reports for a bad BUF, or (size_t) -1.  */
static size_t
fail_offset (const uint8_t *buf, size_t len)
{
  const char *reason = NULL;
  size_t offset = 0;
  if (etf_validate (buf, len, MAX_SIZE, &reason, &offset) == ETF_OK)
    return (size_t) -1;
  return offset;
}

/* Open BUF (version byte first, not compressed) and read one item.  */
static etf_status
first_item (etf_reader *r, const uint8_t *buf, size_t len, etf_item *it)
{
  uint8_t *dec;
  etf_status s = etf_open (r, buf, len, 0, &dec);
  free (dec);
  if (s != ETF_OK)
    return s;
  return etf_read_item (r, it);
}

static bool
atom_is (const etf_atom *a, const char *name, bool latin1)
{
  return a->len == strlen (name) && memcmp (a->name, name, a->len) == 0
         && a->latin1 == latin1;
}

static bool
bytes_are (const etf_item *it, const void *data, size_t len)
{
  return it->v.bytes.len == len && memcmp (it->v.bytes.data, data, len) == 0;
}

static bool
buf_is (const etf_buf *b, const uint8_t *data, size_t len)
{
  return b->status == ETF_OK && b->len == len
         && memcmp (b->data, data, len) == 0;
}

/* Read one integer item from BUF.  */
static bool
reads_int (const uint8_t *buf, size_t len, int64_t want)
{
  etf_reader r;
  etf_item it;
  return first_item (&r, buf, len, &it) == ETF_OK && it.kind == ETF_INT
         && it.v.i == want && etf_expect_end (&r) == ETF_OK;
}

/* ---------------------------------------------------------------- */
/* Constants from Erlang */

/* Erlang: a compiled fun(Y) -> X + Y end with X = 5.  */
static const uint8_t fun_adder[] = {
  131, 112, 0, 0, 0, 84, 1, 9, 244, 22, 254, 25, 125, 235, 18, 125, 184,
  15, 122, 17, 49, 183, 169, 0, 0, 0, 0, 0, 0, 0, 1, 100, 0, 14, 100, 101,
  114, 108, 95, 115, 101, 101, 100, 95, 102, 117, 110, 115, 97, 0, 98, 0,
  79, 160, 183, 88, 100, 0, 13, 110, 111, 110, 111, 100, 101, 64, 110, 111,
  104, 111, 115, 116, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 97, 5};

/* Erlang: F = fun() -> X end with X = 7, then fun(Z) -> {F, Z} end:
   a fun whose free variable is a fun.  */
static const uint8_t fun_nested[] = {
  131, 112, 0, 0, 0, 167, 1, 9, 244, 22, 254, 25, 125, 235, 18, 125, 184,
  15, 122, 17, 49, 183, 169, 0, 0, 0, 2, 0, 0, 0, 1, 100, 0, 14, 100, 101,
  114, 108, 95, 115, 101, 101, 100, 95, 102, 117, 110, 115, 97, 2, 98, 0,
  79, 160, 183, 88, 100, 0, 13, 110, 111, 110, 111, 100, 101, 64, 110, 111,
  104, 111, 115, 116, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 112, 0, 0, 0, 84,
  0, 9, 244, 22, 254, 25, 125, 235, 18, 125, 184, 15, 122, 17, 49, 183, 169,
  0, 0, 0, 1, 0, 0, 0, 1, 100, 0, 14, 100, 101, 114, 108, 95, 115, 101, 101,
  100, 95, 102, 117, 110, 115, 97, 1, 98, 0, 79, 160, 183, 88, 100, 0, 13,
  110, 111, 110, 111, 100, 101, 64, 110, 111, 104, 111, 115, 116, 0, 0, 0,
  9, 0, 0, 0, 0, 0, 0, 0, 0, 97, 7};

/* Erlang: fun lists:map/2.  */
static const uint8_t export_map2[] = {
  131, 113, 100, 0, 5, 108, 105, 115, 116, 115, 100, 0, 3, 109, 97, 112,
  97, 2};

/* Erlang: term_to_binary(lists:duplicate(100, {a, 1}), [compressed]).  */
static const uint8_t compressed_list[] = {
  131, 80, 0, 0, 3, 38, 120, 156, 203, 97, 96, 96, 72, 201, 96, 74, 97, 96,
  76, 76, 100, 28, 165, 71, 233, 81, 26, 147, 206, 2, 0, 25, 31, 158, 67};

/* Erlang: #{a => 1}.  */
static const uint8_t map_a1[] = {
  131, 116, 0, 0, 0, 1, 100, 0, 1, 97, 97, 1};

/* Erlang: <<1, 2, 3:3>>.  */
static const uint8_t bits_123[] = {131, 77, 0, 0, 0, 3, 3, 1, 2, 96};

/* Erlang: {1, [a | b], <<"xy">>, "str", [1000], 2.5, #{k => v}}.  */
static const uint8_t tuple_mixed[] = {
  131, 104, 7, 97, 1, 108, 0, 0, 0, 1, 100, 0, 1, 97, 100, 0, 1, 98, 109, 0,
  0, 0, 2, 120, 121, 107, 0, 3, 115, 116, 114, 108, 0, 0, 0, 1, 98, 0, 0, 3,
  232, 106, 70, 64, 4, 0, 0, 0, 0, 0, 0, 116, 0, 0, 0, 1, 100, 0, 1, 107,
  100, 0, 1, 118};

/* Erlang: a pid on derl@host, <7.1> with creation 0x5eed.  */
static const uint8_t pid_remote[] = {
  131, 88, 100, 0, 9, 100, 101, 114, 108, 64, 104, 111, 115, 116, 0, 0, 0,
  7, 0, 0, 0, 1, 0, 0, 94, 237};

/* Erlang: a port on derl@host, id 42, creation 0x5eed.  */
static const uint8_t port_remote[] = {
  131, 89, 100, 0, 9, 100, 101, 114, 108, 64, 104, 111, 115, 116, 0, 0, 0,
  42, 0, 0, 94, 237};

/* Erlang: a port with a 40-bit id, 0x123456789a.  */
static const uint8_t port_v4[] = {
  131, 120, 100, 0, 9, 100, 101, 114, 108, 64, 104, 111, 115, 116, 0, 0, 0,
  18, 52, 86, 120, 154, 0, 0, 94, 237};

/* Erlang: a reference on derl@host with id words 1, 2, 3.  */
static const uint8_t ref_remote[] = {
  131, 90, 0, 3, 100, 0, 9, 100, 101, 114, 108, 64, 104, 111, 115, 116, 0,
  0, 94, 237, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3};

/* Erlang: 'héllo' with {minor_version, 2}.  */
static const uint8_t atom_utf8[] = {
  131, 119, 6, 104, 195, 169, 108, 108, 111};

/* Erlang: -0.1 with {minor_version, 0}, the old text float.  */
static const uint8_t float_old[] = {
  131, 99, 45, 49, 46, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48,
  48, 48, 48, 53, 53, 53, 49, 101, 45, 48, 49, 0, 0, 0, 0};

/* Erlang: -0.1.  */
static const uint8_t float_new[] = {
  131, 70, 191, 185, 153, 153, 153, 153, 153, 154};

/* Erlang: -(1 bsl 64) - 5.  */
static const uint8_t big_neg[] = {
  131, 110, 9, 1, 5, 0, 0, 0, 0, 0, 0, 0, 1};

/* The same terms with {minor_version, 2}, the form the writer produces.  */
static const uint8_t pid_v2[] = {
  131, 88, 119, 9, 100, 101, 114, 108, 64, 104, 111, 115, 116, 0, 0, 0, 7,
  0, 0, 0, 1, 0, 0, 94, 237};
static const uint8_t port_v2[] = {
  131, 89, 119, 9, 100, 101, 114, 108, 64, 104, 111, 115, 116, 0, 0, 0, 42,
  0, 0, 94, 237};
static const uint8_t port_v4_v2[] = {
  131, 120, 119, 9, 100, 101, 114, 108, 64, 104, 111, 115, 116, 0, 0, 0, 18,
  52, 86, 120, 154, 0, 0, 94, 237};
static const uint8_t ref_v2[] = {
  131, 90, 0, 3, 119, 9, 100, 101, 114, 108, 64, 104, 111, 115, 116, 0, 0,
  94, 237, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3};
static const uint8_t export_v2[] = {
  131, 113, 119, 5, 108, 105, 115, 116, 115, 119, 3, 109, 97, 112, 97, 2};

/* Erlang: {-5, 1 bsl 40, [1,2], [a|b], #{k => v}, <<"xyz">>,
   <<16#AB, 7:3>>, "abc", 'héllo', 2.5} with {minor_version, 2}.  */
static const uint8_t mixed_v2[] = {
  131, 104, 10, 98, 255, 255, 255, 251, 110, 6, 0, 0, 0, 0, 0, 0, 1, 107, 0,
  2, 1, 2, 108, 0, 0, 0, 1, 119, 1, 97, 119, 1, 98, 116, 0, 0, 0, 1, 119, 1,
  107, 119, 1, 118, 109, 0, 0, 0, 3, 120, 121, 122, 77, 0, 0, 0, 2, 3, 171,
  224, 107, 0, 3, 97, 98, 99, 119, 6, 104, 195, 169, 108, 108, 111, 70, 64,
  4, 0, 0, 0, 0, 0, 0};

/* ---------------------------------------------------------------- */
/* Integers */

static void
test_small_integer (void)
{
  CHECK (reads_int (BYTES (131, 97, 0), 0));
  CHECK (reads_int (BYTES (131, 97, 255), 255));  /* Erlang: 255 */
  CHECK (fails_with (BYTES (131, 97), "truncated"));
}

static void
test_integer (void)
{
  /* Erlang: -1, 256, -2147483648, 2147483647.  */
  CHECK (reads_int (BYTES (131, 98, 255, 255, 255, 255), -1));
  CHECK (reads_int (BYTES (131, 98, 0, 0, 1, 0), 256));
  CHECK (reads_int (BYTES (131, 98, 128, 0, 0, 0), INT32_MIN));
  CHECK (reads_int (BYTES (131, 98, 127, 255, 255, 255), INT32_MAX));
  CHECK (fails_with (BYTES (131, 98, 0, 0, 1), "truncated"));
}

static void
test_small_big (void)
{
  /* Erlang: 2147483648, -2147483649, INT64_MAX, INT64_MIN.  */
  CHECK (reads_int (BYTES (131, 110, 4, 0, 0, 0, 0, 128), 2147483648LL));
  CHECK (reads_int (BYTES (131, 110, 4, 1, 1, 0, 0, 128), -2147483649LL));
  CHECK (reads_int (BYTES (131, 110, 8, 0, 255, 255, 255, 255, 255, 255,
                           255, 127), INT64_MAX));
  CHECK (reads_int (BYTES (131, 110, 8, 1, 0, 0, 0, 0, 0, 0, 0, 128),
                    INT64_MIN));
  /* High zero digits are trimmed before folding.  */
  CHECK (reads_int (BYTES (131, 110, 10, 1, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0),
                    -7));
  /* No digits at all, and minus zero, are 0.  */
  CHECK (reads_int (BYTES (131, 110, 0, 0), 0));
  CHECK (reads_int (BYTES (131, 110, 1, 1, 0), 0));

  etf_reader r;
  etf_item it;
  /* 2^63 does not fit.  */
  CHECK (first_item (&r, BYTES (131, 110, 8, 0, 0, 0, 0, 0, 0, 0, 0, 128),
                     &it) == ETF_OK);
  CHECK (it.kind == ETF_BIG && !it.v.big.negative && it.v.big.n == 8
         && it.v.big.digits[7] == 128);
  /* Neither does -(2^63) - 1.  */
  CHECK (first_item (&r, BYTES (131, 110, 8, 1, 1, 0, 0, 0, 0, 0, 0, 128),
                     &it) == ETF_OK);
  CHECK (it.kind == ETF_BIG && it.v.big.negative && it.v.big.n == 8);
  /* Erlang: -(1 bsl 64) - 5.  */
  CHECK (first_item (&r, big_neg, sizeof big_neg, &it) == ETF_OK);
  CHECK (it.kind == ETF_BIG && it.v.big.negative && it.v.big.n == 9
         && it.v.big.digits[0] == 5 && it.v.big.digits[8] == 1);
  CHECK (etf_expect_end (&r) == ETF_OK);
  /* Trimming also applies to numbers that stay big.  */
  CHECK (first_item (&r, BYTES (131, 110, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
                                0), &it) == ETF_OK);
  CHECK (it.kind == ETF_BIG && it.v.big.n == 9);

  CHECK (fails_with (BYTES (131, 110, 1, 2, 1), "sign"));
  CHECK (fails_with (BYTES (131, 110, 3, 0, 1, 2), "truncated"));
  CHECK (fails_with (BYTES (131, 110, 3), "truncated"));
  CHECK (fails_with (BYTES (131, 110), "truncated"));
}

static void
test_large_big (void)
{
  /* Erlang: 1 bsl 2100 is LARGE_BIG with 263 digits, the last 16.  */
  size_t n = 263, len = 1 + 1 + 4 + 1 + n;
  uint8_t *buf = calloc (1, len);
  buf[0] = 131;
  buf[1] = 111;
  buf[4] = 1;
  buf[5] = 7;
  buf[len - 1] = 16;
  etf_reader r;
  etf_item it;
  CHECK (first_item (&r, buf, len, &it) == ETF_OK);
  CHECK (it.kind == ETF_BIG && !it.v.big.negative && it.v.big.n == 263
         && it.v.big.digits == buf + 7 && it.v.big.digits[262] == 16);
  CHECK (etf_expect_end (&r) == ETF_OK);
  CHECK (fails_with (buf, len - 1, "truncated"));
  free (buf);

  /* Values that fit fold into int64, INT64_MIN included.  */
  CHECK (reads_int (BYTES (131, 111, 0, 0, 0, 8, 1, 0, 0, 0, 0, 0, 0, 0,
                           128), INT64_MIN));
  CHECK (reads_int (BYTES (131, 111, 0, 0, 0, 1, 0, 42), 42));
  CHECK (reads_int (BYTES (131, 111, 0, 0, 0, 9, 0, 1, 0, 0, 0, 0, 0, 0, 0,
                           0), 1));
  /* A huge digit count must not be trusted.  */
  CHECK (fails_with (BYTES (131, 111, 255, 255, 255, 255, 0, 1, 2),
                     "truncated"));
  CHECK (fails_with (BYTES (131, 111, 0, 0, 0, 1, 5, 1), "sign"));
  CHECK (fails_with (BYTES (131, 111, 0, 0, 0), "truncated"));
}

/* ---------------------------------------------------------------- */
/* Floats */

/* FLOAT_EXT with TEXT in its 31 bytes; TEXTLEN may include NULs.  */
static etf_status
old_float (const char *text, size_t textlen, double *out)
{
  uint8_t buf[33] = {131, 99};
  memcpy (buf + 2, text, textlen);
  etf_reader r;
  etf_item it;
  etf_status s = first_item (&r, buf, sizeof buf, &it);
  if (s == ETF_OK)
    {
      if (it.kind != ETF_FLOAT)
        return ETF_NO_MEMORY;  /* anything but OK or ERROR */
      *out = it.v.f;
      s = etf_expect_end (&r);
    }
  return s;
}

static void
test_old_float (void)
{
  etf_reader r;
  etf_item it;
  CHECK (first_item (&r, float_old, sizeof float_old, &it) == ETF_OK);
  CHECK (it.kind == ETF_FLOAT && it.v.f == -0.1);
  CHECK (valid (float_old, sizeof float_old));

  double v = 0;
  CHECK (old_float ("1.5", 3, &v) == ETF_OK && v == 1.5);
  CHECK (old_float ("1.50000000000000000000e+00", 26, &v) == ETF_OK
         && v == 1.5);
  CHECK (old_float ("-0", 2, &v) == ETF_OK && v == 0 && signbit (v));
  /* All 31 bytes used, no NUL at all.  */
  CHECK (old_float ("1000000000000000000000000000000", 31, &v) == ETF_OK
         && v == 1e30);

  CHECK (old_float ("", 0, &v) == ETF_ERROR);
  CHECK (old_float ("abc", 3, &v) == ETF_ERROR);
  CHECK (old_float ("1.5x", 4, &v) == ETF_ERROR);
  CHECK (old_float ("1.5 ", 4, &v) == ETF_ERROR);
  CHECK (old_float (" 1.5", 4, &v) == ETF_ERROR);
  CHECK (old_float (".", 1, &v) == ETF_ERROR);
  CHECK (old_float ("-", 1, &v) == ETF_ERROR);
  CHECK (old_float ("1e", 2, &v) == ETF_ERROR);
  CHECK (old_float ("1e+", 3, &v) == ETF_ERROR);
  CHECK (old_float ("1.5.5", 5, &v) == ETF_ERROR);
  CHECK (old_float ("0x1p3", 5, &v) == ETF_ERROR);
  CHECK (old_float ("inf", 3, &v) == ETF_ERROR);
  CHECK (old_float ("nan", 3, &v) == ETF_ERROR);
  /* Overflows to infinity.  */
  CHECK (old_float ("1e999", 5, &v) == ETF_ERROR);
  CHECK (old_float ("-1e999", 6, &v) == ETF_ERROR);
  /* Anything after the NUL padding starts.  */
  CHECK (old_float ("1.5\0junk", 8, &v) == ETF_ERROR);
  char late[31] = "1.5";
  late[30] = 1;
  CHECK (old_float (late, sizeof late, &v) == ETF_ERROR);

  uint8_t shortbuf[32] = {131, 99, '1'};
  CHECK (fails_with (shortbuf, sizeof shortbuf, "truncated"));
}

static void
test_new_float (void)
{
  etf_reader r;
  etf_item it;
  CHECK (first_item (&r, float_new, sizeof float_new, &it) == ETF_OK);
  CHECK (it.kind == ETF_FLOAT && it.v.f == -0.1);
  CHECK (etf_expect_end (&r) == ETF_OK);

  CHECK (first_item (&r, BYTES (131, 70, 128, 0, 0, 0, 0, 0, 0, 0), &it)
         == ETF_OK);
  CHECK (it.v.f == 0 && signbit (it.v.f));
  CHECK (first_item (&r, BYTES (131, 70, 0, 0, 0, 0, 0, 0, 0, 1), &it)
         == ETF_OK);
  CHECK (it.v.f == 4.9406564584124654e-324);
  CHECK (first_item (&r, BYTES (131, 70, 127, 239, 255, 255, 255, 255, 255,
                                255), &it) == ETF_OK);
  CHECK (it.v.f == DBL_MAX);

  CHECK (fails_with (BYTES (131, 70, 127, 248, 0, 0, 0, 0, 0, 0),
                     "not finite"));  /* NaN */
  CHECK (fails_with (BYTES (131, 70, 255, 255, 255, 255, 255, 255, 255, 255),
                     "not finite"));  /* NaN with every bit set */
  CHECK (fails_with (BYTES (131, 70, 127, 240, 0, 0, 0, 0, 0, 0),
                     "not finite"));  /* +inf */
  CHECK (fails_with (BYTES (131, 70, 255, 240, 0, 0, 0, 0, 0, 0),
                     "not finite"));  /* -inf */
  CHECK (fails_with (BYTES (131, 70, 63, 248, 0, 0, 0, 0, 0), "truncated"));
}

/* ---------------------------------------------------------------- */
/* Atoms */

/* An atom of N copies of the LEN-byte character CH under TAG.  */
static uint8_t *
make_atom (uint8_t tag, const char *ch, size_t n, size_t *len)
{
  size_t clen = strlen (ch), name = clen * n;
  bool small = tag == ETF_TAG_SMALL_ATOM || tag == ETF_TAG_SMALL_ATOM_UTF8;
  size_t head = small ? 3 : 4;
  uint8_t *buf = malloc (head + name);
  buf[0] = 131;
  buf[1] = tag;
  if (small)
    buf[2] = (uint8_t) name;
  else
    buf[2] = (uint8_t) (name >> 8), buf[3] = (uint8_t) name;
  for (size_t k = 0; k < n; k++)
    memcpy (buf + head + k * clen, ch, clen);
  *len = head + name;
  return buf;
}

static void
test_atom_latin1 (void)
{
  etf_reader r;
  etf_item it;
  /* Erlang: abc, and 'héllo' in Latin-1.  */
  CHECK (first_item (&r, BYTES (131, 100, 0, 3, 97, 98, 99), &it) == ETF_OK);
  CHECK (it.kind == ETF_ATOM && atom_is (&it.v.atom, "abc", true));
  CHECK (first_item (&r, BYTES (131, 100, 0, 5, 104, 233, 108, 108, 111),
                     &it) == ETF_OK);
  CHECK (it.kind == ETF_ATOM && atom_is (&it.v.atom, "h\xe9llo", true));
  uint8_t utf8[10];
  size_t n = etf_latin1_to_utf8 (it.v.atom.name, it.v.atom.len, utf8);
  CHECK (n == 6 && memcmp (utf8, "h\xc3\xa9llo", 6) == 0);

  /* Erlang: ''.  */
  CHECK (first_item (&r, BYTES (131, 100, 0, 0), &it) == ETF_OK);
  CHECK (it.kind == ETF_ATOM && atom_is (&it.v.atom, "", true));
  CHECK (first_item (&r, BYTES (131, 115, 2, 111, 107), &it) == ETF_OK);
  CHECK (it.kind == ETF_ATOM && atom_is (&it.v.atom, "ok", true));
  /* Any byte is a Latin-1 character.  */
  CHECK (valid (BYTES (131, 115, 2, 0xFF, 0x80)));

  size_t len;
  uint8_t *buf = make_atom (ETF_TAG_ATOM, "\xff", 255, &len);
  CHECK (valid (buf, len));
  free (buf);
  buf = make_atom (ETF_TAG_ATOM, "a", 256, &len);
  CHECK (fails_with (buf, len, "longer than 255"));
  free (buf);
  buf = make_atom (ETF_TAG_SMALL_ATOM, "a", 255, &len);
  CHECK (valid (buf, len));
  free (buf);

  CHECK (fails_with (BYTES (131, 100, 0, 5, 97), "truncated"));
  CHECK (fails_with (BYTES (131, 100, 0), "truncated"));
  CHECK (fails_with (BYTES (131, 115), "truncated"));
  CHECK (fails_with (BYTES (131, 115, 3, 97, 98), "truncated"));
}

static void
test_atom_utf8 (void)
{
  etf_reader r;
  etf_item it;
  CHECK (first_item (&r, atom_utf8, sizeof atom_utf8, &it) == ETF_OK);
  CHECK (it.kind == ETF_ATOM && atom_is (&it.v.atom, "h\xc3\xa9llo", false));
  CHECK (first_item (&r, BYTES (131, 118, 0, 2, 111, 107), &it) == ETF_OK);
  CHECK (it.kind == ETF_ATOM && atom_is (&it.v.atom, "ok", false));

  /* 255 characters is the limit, however many bytes they take.  */
  size_t len;
  uint8_t *buf = make_atom (ETF_TAG_ATOM_UTF8, "\xf0\x9f\x98\x80", 255, &len);
  CHECK (valid (buf, len));
  free (buf);
  buf = make_atom (ETF_TAG_ATOM_UTF8, "\xf0\x9f\x98\x80", 256, &len);
  CHECK (fails_with (buf, len, "longer than 255"));
  free (buf);
  buf = make_atom (ETF_TAG_ATOM_UTF8, "\xc3\xa9", 256, &len);
  CHECK (fails_with (buf, len, "longer than 255"));
  free (buf);
  buf = make_atom (ETF_TAG_SMALL_ATOM_UTF8, "z", 255, &len);
  CHECK (valid (buf, len));
  free (buf);

  /* Invalid UTF-8, in both tags.  */
  CHECK (fails_with (BYTES (131, 119, 1, 0xFF), "UTF-8"));
  CHECK (fails_with (BYTES (131, 119, 1, 0x80), "UTF-8"));  /* lone tail */
  /* Overlong forms.  */
  CHECK (fails_with (BYTES (131, 119, 2, 0xC0, 0x80), "UTF-8"));
  CHECK (fails_with (BYTES (131, 119, 3, 0xE0, 0x80, 0x80), "UTF-8"));
  CHECK (fails_with (BYTES (131, 119, 4, 0xF0, 0x80, 0x80, 0x80), "UTF-8"));
  /* A surrogate, a code point past U+10FFFF, a cut sequence, a bad
     continuation byte.  */
  CHECK (fails_with (BYTES (131, 119, 3, 0xED, 0xA0, 0x80), "UTF-8"));
  CHECK (fails_with (BYTES (131, 119, 4, 0xF4, 0x90, 0x80, 0x80), "UTF-8"));
  CHECK (fails_with (BYTES (131, 119, 2, 0xE2, 0x82), "UTF-8"));
  CHECK (fails_with (BYTES (131, 119, 2, 0xC3, 0x41), "UTF-8"));
  CHECK (fails_with (BYTES (131, 118, 0, 1, 0xFE), "UTF-8"));
  CHECK (fails_with (BYTES (131, 118, 0, 2), "truncated"));

  CHECK (etf_utf8_chars ((const uint8_t *) "", 0) == 0);
  CHECK (etf_utf8_chars ((const uint8_t *) "h\xc3\xa9llo", 6) == 5);
  CHECK (etf_utf8_chars ((const uint8_t *) "\xf4\x8f\xbf\xbf", 4) == 1);
  CHECK (etf_utf8_chars ((const uint8_t *) "\xef\xbf\xbf", 3) == 1);
  CHECK (etf_utf8_chars ((const uint8_t *) "\xf0\x9f\x98", 3) == -1);
}

/* ---------------------------------------------------------------- */
/* Lists, strings, tuples, maps */

static void
test_nil_and_string (void)
{
  etf_reader r;
  etf_item it;
  CHECK (first_item (&r, BYTES (131, 106), &it) == ETF_OK);
  CHECK (it.kind == ETF_NIL && etf_expect_end (&r) == ETF_OK);
  /* Erlang: "hello".  */
  CHECK (first_item (&r, BYTES (131, 107, 0, 5, 104, 101, 108, 108, 111),
                     &it) == ETF_OK);
  CHECK (it.kind == ETF_STRING && bytes_are (&it, "hello", 5));
  CHECK (first_item (&r, BYTES (131, 107, 0, 0), &it) == ETF_OK);
  CHECK (it.kind == ETF_STRING && it.v.bytes.len == 0);
  CHECK (fails_with (BYTES (131, 107, 0, 6, 104, 101, 108, 108, 111),
                     "truncated"));
  CHECK (fails_with (BYTES (131, 107, 0), "truncated"));
}

/* Walk BUF and check its items' kinds against KINDS.  */
static bool
kinds_are (const uint8_t *buf, size_t len, const etf_kind *kinds, size_t n)
{
  etf_reader r;
  uint8_t *dec;
  if (etf_open (&r, buf, len, 0, &dec) != ETF_OK)
    return false;
  for (size_t k = 0; k < n; k++)
    {
      etf_item it;
      if (etf_read_item (&r, &it) != ETF_OK || it.kind != kinds[k])
        return false;
    }
  return etf_expect_end (&r) == ETF_OK;
}

static void
test_list (void)
{
  /* Erlang: [1 | 2].  */
  static const etf_kind improper[] = {ETF_LIST, ETF_INT, ETF_INT};
  CHECK (kinds_are (BYTES (131, 108, 0, 0, 0, 1, 97, 1, 97, 2), improper, 3));
  CHECK (valid (BYTES (131, 108, 0, 0, 0, 1, 97, 1, 97, 2)));
  /* [a, b] */
  static const etf_kind proper[] = {ETF_LIST, ETF_ATOM, ETF_ATOM, ETF_NIL};
  CHECK (kinds_are (BYTES (131, 108, 0, 0, 0, 2, 119, 1, 97, 119, 1, 98,
                           106), proper, 4));
  /* Erlang decodes a zero-length list as its tail.  */
  CHECK (valid (BYTES (131, 108, 0, 0, 0, 0, 106)));
  CHECK (valid (BYTES (131, 108, 0, 0, 0, 0, 97, 1)));

  /* The tail is not optional.  */
  CHECK (fails_with (BYTES (131, 108, 0, 0, 0, 1, 97, 1), "truncated"));
  CHECK (fails_with (BYTES (131, 108, 0, 0, 0, 2, 97, 1, 106), "truncated"));
  CHECK (fails_with (BYTES (131, 108, 0, 0, 0, 3, 106, 106), "exceeds"));
  CHECK (fails_with (BYTES (131, 108, 0, 0), "truncated"));

  /* The whole of an Erlang term with every container kind.  */
  etf_reader r;
  etf_item it;
  CHECK (first_item (&r, tuple_mixed, sizeof tuple_mixed, &it) == ETF_OK);
  CHECK (it.kind == ETF_TUPLE && it.v.arity == 7);
  CHECK (etf_read_item (&r, &it) == ETF_OK && it.kind == ETF_INT
         && it.v.i == 1);
  CHECK (etf_read_item (&r, &it) == ETF_OK && it.kind == ETF_LIST
         && it.v.arity == 1);
  CHECK (etf_read_item (&r, &it) == ETF_OK && it.kind == ETF_ATOM
         && atom_is (&it.v.atom, "a", true));
  CHECK (etf_read_item (&r, &it) == ETF_OK && it.kind == ETF_ATOM
         && atom_is (&it.v.atom, "b", true));
  CHECK (etf_read_item (&r, &it) == ETF_OK && it.kind == ETF_BINARY
         && bytes_are (&it, "xy", 2) && it.v.bytes.bits == 8);
  CHECK (etf_read_item (&r, &it) == ETF_OK && it.kind == ETF_STRING
         && bytes_are (&it, "str", 3));
  CHECK (etf_read_item (&r, &it) == ETF_OK && it.kind == ETF_LIST
         && it.v.arity == 1);
  CHECK (etf_read_item (&r, &it) == ETF_OK && it.kind == ETF_INT
         && it.v.i == 1000);
  CHECK (etf_read_item (&r, &it) == ETF_OK && it.kind == ETF_NIL);
  CHECK (etf_read_item (&r, &it) == ETF_OK && it.kind == ETF_FLOAT
         && it.v.f == 2.5);
  CHECK (etf_read_item (&r, &it) == ETF_OK && it.kind == ETF_MAP
         && it.v.arity == 1);
  CHECK (etf_read_item (&r, &it) == ETF_OK && it.kind == ETF_ATOM
         && atom_is (&it.v.atom, "k", true));
  CHECK (etf_read_item (&r, &it) == ETF_OK && it.kind == ETF_ATOM
         && atom_is (&it.v.atom, "v", true)
         && it.offset == sizeof tuple_mixed - 4);
  CHECK (etf_expect_end (&r) == ETF_OK);
  CHECK (etf_read_item (&r, &it) == ETF_ERROR);
  CHECK (valid (tuple_mixed, sizeof tuple_mixed));
}

static void
test_tuple (void)
{
  etf_reader r;
  etf_item it;
  /* Erlang: {1, a}.  */
  CHECK (first_item (&r, BYTES (131, 104, 2, 97, 1, 100, 0, 1, 97), &it)
         == ETF_OK);
  CHECK (it.kind == ETF_TUPLE && it.v.arity == 2);
  CHECK (valid (BYTES (131, 104, 2, 97, 1, 100, 0, 1, 97)));
  CHECK (valid (BYTES (131, 104, 0)));
  CHECK (valid (BYTES (131, 105, 0, 0, 0, 0)));

  /* {1, 2, ..., 256} is a LARGE_TUPLE.  */
  size_t len = 6 + 256 * 2;
  uint8_t *buf = malloc (len);
  memcpy (buf, (uint8_t[]) {131, 105, 0, 0, 1, 0}, 6);
  for (size_t k = 0; k < 256; k++)
    buf[6 + 2 * k] = 97, buf[7 + 2 * k] = (uint8_t) k;
  CHECK (first_item (&r, buf, len, &it) == ETF_OK);
  CHECK (it.kind == ETF_TUPLE && it.v.arity == 256);
  CHECK (etf_skip_terms (&r, 256) == ETF_OK && etf_expect_end (&r) == ETF_OK);
  CHECK (valid (buf, len));
  CHECK (fails_with (buf, 6 + 255, "exceeds"));
  CHECK (fails_with (buf, len - 1, "truncated"));
  free (buf);

  CHECK (fails_with (BYTES (131, 104, 3, 97, 1), "exceeds"));
  CHECK (fails_with (BYTES (131, 104, 2, 97, 1), "truncated"));
  CHECK (fails_with (BYTES (131, 104), "truncated"));
  CHECK (fails_with (BYTES (131, 105, 0, 0, 1), "truncated"));
}

static void
test_map (void)
{
  etf_reader r;
  etf_item it;
  CHECK (first_item (&r, map_a1, sizeof map_a1, &it) == ETF_OK);
  CHECK (it.kind == ETF_MAP && it.v.arity == 1);
  CHECK (etf_read_item (&r, &it) == ETF_OK && it.kind == ETF_ATOM
         && atom_is (&it.v.atom, "a", true));
  CHECK (etf_read_item (&r, &it) == ETF_OK && it.kind == ETF_INT
         && it.v.i == 1);
  CHECK (etf_expect_end (&r) == ETF_OK);
  CHECK (valid (map_a1, sizeof map_a1));
  CHECK (valid (BYTES (131, 116, 0, 0, 0, 0)));
  /* A key without its value.  */
  CHECK (fails_with (BYTES (131, 116, 0, 0, 0, 1, 97, 1), "truncated"));
  CHECK (fails_with (BYTES (131, 116, 0, 0, 0, 2, 97, 1, 97, 2, 97, 3),
                     "truncated"));
  /* Fewer bytes than items.  */
  CHECK (fails_with (BYTES (131, 116, 0, 0, 0, 1, 97), "exceeds"));
  CHECK (fails_with (BYTES (131, 116, 0, 0, 0, 2, 106, 106, 106), "exceeds"));
  CHECK (fails_with (BYTES (131, 116, 0), "truncated"));
}

/* ---------------------------------------------------------------- */
/* Binaries and bitstrings */

static void
test_binary (void)
{
  etf_reader r;
  etf_item it;
  /* Erlang: <<1,2,3>> and <<>>.  */
  CHECK (first_item (&r, BYTES (131, 109, 0, 0, 0, 3, 1, 2, 3), &it)
         == ETF_OK);
  CHECK (it.kind == ETF_BINARY && bytes_are (&it, "\1\2\3", 3)
         && it.v.bytes.bits == 8);
  CHECK (first_item (&r, BYTES (131, 109, 0, 0, 0, 0), &it) == ETF_OK);
  CHECK (it.kind == ETF_BINARY && it.v.bytes.len == 0);
  CHECK (fails_with (BYTES (131, 109, 0, 0, 0, 4, 1, 2, 3), "truncated"));
  CHECK (fails_with (BYTES (131, 109, 255, 255, 255, 255, 1, 2, 3),
                     "truncated"));
  CHECK (fails_with (BYTES (131, 109, 0, 0, 0), "truncated"));
}

static void
test_bitstring (void)
{
  etf_reader r;
  etf_item it;
  CHECK (first_item (&r, bits_123, sizeof bits_123, &it) == ETF_OK);
  CHECK (it.kind == ETF_BITSTRING && bytes_are (&it, "\1\2\x60", 3)
         && it.v.bytes.bits == 3);
  /* A whole last byte makes it a plain binary.  */
  CHECK (first_item (&r, BYTES (131, 77, 0, 0, 0, 2, 8, 1, 2), &it)
         == ETF_OK);
  CHECK (it.kind == ETF_BINARY && bytes_are (&it, "\1\2", 2)
         && it.v.bytes.bits == 8);
  CHECK (first_item (&r, BYTES (131, 77, 0, 0, 0, 1, 1, 128), &it)
         == ETF_OK);
  CHECK (it.kind == ETF_BITSTRING && it.v.bytes.bits == 1);
  /* Empty: bits must be 0 too, as Erlang insists.  */
  CHECK (first_item (&r, BYTES (131, 77, 0, 0, 0, 0, 0), &it) == ETF_OK);
  CHECK (it.kind == ETF_BINARY && it.v.bytes.len == 0
         && it.v.bytes.bits == 8);
  CHECK (fails_with (BYTES (131, 77, 0, 0, 0, 0, 3), "bit count"));
  CHECK (fails_with (BYTES (131, 77, 0, 0, 0, 1, 0, 5), "bit count"));
  CHECK (fails_with (BYTES (131, 77, 0, 0, 0, 1, 9, 5), "bit count"));
  CHECK (fails_with (BYTES (131, 77, 0, 0, 0, 1, 255, 5), "bit count"));
  CHECK (fails_with (BYTES (131, 77, 0, 0, 0, 2, 3, 5), "truncated"));
  CHECK (fails_with (BYTES (131, 77, 0, 0, 0, 2), "truncated"));
}

/* ---------------------------------------------------------------- */
/* Pids, ports, references */

static void
test_pid (void)
{
  etf_reader r;
  etf_item it;
  CHECK (first_item (&r, pid_remote, sizeof pid_remote, &it) == ETF_OK);
  CHECK (it.kind == ETF_PID && atom_is (&it.v.pid.node, "derl@host", true)
         && it.v.pid.id == 7 && it.v.pid.serial == 1
         && it.v.pid.creation == 0x5eed);
  CHECK (etf_expect_end (&r) == ETF_OK);
  /* PID_EXT: one creation byte.  */
  CHECK (first_item (&r, BYTES (131, 103, 119, 1, 110, 0, 0, 0, 1, 0, 0, 0,
                                2, 3), &it) == ETF_OK);
  CHECK (it.kind == ETF_PID && atom_is (&it.v.pid.node, "n", false)
         && it.v.pid.id == 1 && it.v.pid.serial == 2
         && it.v.pid.creation == 3);
  CHECK (etf_expect_end (&r) == ETF_OK);
  CHECK (fails_with (pid_remote, sizeof pid_remote - 1, "truncated"));
  CHECK (fails_with (BYTES (131, 103, 119, 1, 110, 0, 0, 0, 1, 0, 0, 0, 2),
                     "truncated"));
  CHECK (fails_with (BYTES (131, 88, 97, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0,
                            3), "atom expected"));
  CHECK (fails_with (BYTES (131, 88), "truncated"));
}

static void
test_port (void)
{
  etf_reader r;
  etf_item it;
  CHECK (first_item (&r, port_remote, sizeof port_remote, &it) == ETF_OK);
  CHECK (it.kind == ETF_PORT && atom_is (&it.v.port.node, "derl@host", true)
         && it.v.port.id == 42 && it.v.port.creation == 0x5eed);
  CHECK (first_item (&r, port_v4, sizeof port_v4, &it) == ETF_OK);
  CHECK (it.kind == ETF_PORT && it.v.port.id == 0x123456789aULL
         && it.v.port.creation == 0x5eed);
  CHECK (etf_expect_end (&r) == ETF_OK);
  /* PORT_EXT: 32-bit id, one creation byte.  */
  CHECK (first_item (&r, BYTES (131, 102, 119, 1, 110, 0, 0, 0, 42, 3), &it)
         == ETF_OK);
  CHECK (it.kind == ETF_PORT && it.v.port.id == 42
         && it.v.port.creation == 3);
  CHECK (etf_expect_end (&r) == ETF_OK);
  CHECK (fails_with (port_remote, sizeof port_remote - 1, "truncated"));
  CHECK (fails_with (port_v4, sizeof port_v4 - 1, "truncated"));
  CHECK (fails_with (BYTES (131, 102, 119, 1, 110, 0, 0, 0, 42),
                     "truncated"));
}

/* A NEW_ or NEWER_REFERENCE with WORDS id words 1, 2, ...  */
static size_t
make_ref (uint8_t tag, unsigned words, uint8_t *buf)
{
  size_t n = 0;
  buf[n++] = 131;
  buf[n++] = tag;
  buf[n++] = 0;
  buf[n++] = (uint8_t) words;
  memcpy (buf + n, (uint8_t[]) {119, 1, 110}, 3);
  n += 3;
  if (tag == ETF_TAG_NEWER_REFERENCE)
    memcpy (buf + n, (uint8_t[]) {0, 0, 0, 9}, 4), n += 4;
  else
    buf[n++] = 9;
  for (unsigned w = 1; w <= words; w++)
    memcpy (buf + n, (uint8_t[]) {0, 0, 0, (uint8_t) w}, 4), n += 4;
  return n;
}

static void
test_reference (void)
{
  etf_reader r;
  etf_item it;
  CHECK (first_item (&r, ref_remote, sizeof ref_remote, &it) == ETF_OK);
  CHECK (it.kind == ETF_REF && atom_is (&it.v.ref.node, "derl@host", true)
         && it.v.ref.creation == 0x5eed && it.v.ref.words == 3
         && it.v.ref.id == ref_remote + 20);
  CHECK (etf_expect_end (&r) == ETF_OK);

  uint8_t buf[64];
  for (unsigned words = 0; words <= 6; words++)
    {
      bool good = words >= 1 && words <= 5;
      size_t n = make_ref (ETF_TAG_NEWER_REFERENCE, words, buf);
      CHECK (valid (buf, n) == good);
      if (good)
        {
          CHECK (first_item (&r, buf, n, &it) == ETF_OK);
          CHECK (it.kind == ETF_REF && it.v.ref.words == words
                 && it.v.ref.creation == 9
                 && it.v.ref.id[4 * words - 1] == words);
          CHECK (fails_with (buf, n - 1, "truncated"));
        }
      else
        CHECK (fails_with (buf, n, "bad id length"));
      n = make_ref (ETF_TAG_NEW_REFERENCE, words, buf);
      CHECK (valid (buf, n) == good);
      if (good)
        {
          CHECK (first_item (&r, buf, n, &it) == ETF_OK);
          CHECK (it.kind == ETF_REF && it.v.ref.words == words
                 && it.v.ref.creation == 9);
        }
    }

  /* REFERENCE_EXT: one id word, one creation byte.  */
  CHECK (first_item (&r, BYTES (131, 101, 119, 1, 110, 0, 0, 0, 9, 2), &it)
         == ETF_OK);
  CHECK (it.kind == ETF_OLD_REF && atom_is (&it.v.old_ref.node, "n", false)
         && it.v.old_ref.id == 9 && it.v.old_ref.creation == 2);
  CHECK (fails_with (BYTES (131, 101, 119, 1, 110, 0, 0, 0, 9), "truncated"));
  CHECK (fails_with (BYTES (131, 90, 0), "truncated"));
}

/* ---------------------------------------------------------------- */
/* Funs and exports */

/* A copy of SRC with the 32-bit value at OFFSET replaced by V.  */
static uint8_t *
patched (const uint8_t *src, size_t len, size_t offset, uint32_t v)
{
  uint8_t *buf = malloc (len);
  memcpy (buf, src, len);
  buf[offset] = (uint8_t) (v >> 24);
  buf[offset + 1] = (uint8_t) (v >> 16);
  buf[offset + 2] = (uint8_t) (v >> 8);
  buf[offset + 3] = (uint8_t) v;
  return buf;
}

static void
test_fun (void)
{
  etf_reader r;
  etf_item it;
  CHECK (first_item (&r, fun_adder, sizeof fun_adder, &it) == ETF_OK);
  CHECK (it.kind == ETF_FUN && it.offset == 1 && it.v.fun.num_free == 1
         && it.v.fun.data == fun_adder + 1 && it.v.fun.len == 85
         && it.v.fun.end == sizeof fun_adder);
  /* The free variable follows in the item stream.  */
  CHECK (etf_read_item (&r, &it) == ETF_OK && it.kind == ETF_INT
         && it.v.i == 5);
  CHECK (etf_expect_end (&r) == ETF_OK);
  CHECK (valid (fun_adder, sizeof fun_adder));

  /* A fun whose free variable is a fun.  */
  CHECK (valid (fun_nested, sizeof fun_nested));
  CHECK (first_item (&r, fun_nested, sizeof fun_nested, &it) == ETF_OK);
  CHECK (it.kind == ETF_FUN && it.v.fun.num_free == 1
         && it.v.fun.end == sizeof fun_nested);
  CHECK (etf_read_item (&r, &it) == ETF_OK && it.kind == ETF_FUN
         && it.v.fun.num_free == 1 && it.v.fun.len == 85
         && it.v.fun.end == sizeof fun_nested);
  CHECK (etf_read_item (&r, &it) == ETF_OK && it.kind == ETF_INT
         && it.v.i == 7);
  CHECK (etf_expect_end (&r) == ETF_OK);

  /* Funs inside containers: [F, F | F].  */
  size_t flen = sizeof fun_adder - 1;
  size_t len = 6 + 3 * flen;
  uint8_t *buf = malloc (len);
  memcpy (buf, (uint8_t[]) {131, 108, 0, 0, 0, 2}, 6);
  for (int k = 0; k < 3; k++)
    memcpy (buf + 6 + k * flen, fun_adder + 1, flen);
  CHECK (valid (buf, len));
  free (buf);

  /* Wrong sizes: the size field is at offset 2, NumFree at 27.  */
  uint32_t size = 84;
  buf = patched (fun_adder, sizeof fun_adder, 2, size + 1);
  CHECK (fails_with (buf, sizeof fun_adder, "exceeds the input"));
  free (buf);
  buf = patched (fun_adder, sizeof fun_adder, 2, size - 1);
  CHECK (fails_with (buf, sizeof fun_adder, "do not fill"));
  free (buf);
  buf = patched (fun_adder, sizeof fun_adder, 2, 40);
  CHECK (fails_with (buf, sizeof fun_adder, "too small"));
  free (buf);
  buf = patched (fun_adder, sizeof fun_adder, 2, 3);
  CHECK (fails_with (buf, sizeof fun_adder, "exceeds the input"));
  free (buf);
  buf = patched (fun_adder, sizeof fun_adder, 2, 0xFFFFFFFF);
  CHECK (fails_with (buf, sizeof fun_adder, "exceeds the input"));
  free (buf);
  buf = patched (fun_adder, sizeof fun_adder, 27, 3);
  CHECK (fails_with (buf, sizeof fun_adder, "free variable count"));
  free (buf);
  buf = patched (fun_adder, sizeof fun_adder, 27, 0);
  CHECK (fails_with (buf, sizeof fun_adder, "do not fill"));
  free (buf);
  buf = patched (fun_adder, sizeof fun_adder, 27, 2);
  CHECK (!valid (buf, sizeof fun_adder));
  free (buf);
  /* An inner fun one byte too long spills out of the outer one.  */
  buf = patched (fun_nested, sizeof fun_nested, 85, 85);
  CHECK (!valid (buf, sizeof fun_nested));
  free (buf);
  buf = patched (fun_nested, sizeof fun_nested, 85, 83);
  CHECK (fails_with (buf, sizeof fun_nested, "do not fill"));
  free (buf);
  /* A fun whose outer size leaves room for more than its free vars.  */
  len = sizeof fun_adder + 1;
  buf = malloc (len);
  memcpy (buf, fun_adder, sizeof fun_adder);
  buf[len - 1] = 106;
  CHECK (fails_with (buf, len, "trailing"));
  buf[5] = 85;
  CHECK (fails_with (buf, len, "do not fill"));
  free (buf);

  /* The pid must be a pid.  */
  buf = malloc (sizeof fun_adder);
  memcpy (buf, fun_adder, sizeof fun_adder);
  CHECK (buf[55] == ETF_TAG_NEW_PID);
  buf[55] = ETF_TAG_SMALL_INTEGER;
  CHECK (fails_with (buf, sizeof fun_adder, "without a pid"));
  buf[55] = ETF_TAG_PID;  /* old pid: 3 bytes shorter, so too big */
  CHECK (!valid (buf, sizeof fun_adder));
  memcpy (buf, fun_adder, sizeof fun_adder);
  buf[31] = 97;  /* module not an atom */
  CHECK (fails_with (buf, sizeof fun_adder, "atom expected"));
  memcpy (buf, fun_adder, sizeof fun_adder);
  buf[48] = 100;  /* OldIndex not an integer */
  CHECK (fails_with (buf, sizeof fun_adder, "integer expected"));
  free (buf);
}

/* A fun and its free variables copy to the bytes they came in when no
   atom comes through a cache; a fun that does not fill its size fails.  */
static void
test_copy_fun (void)
{
  const uint8_t *funs[] = { fun_adder, fun_nested };
  size_t lens[] = { sizeof fun_adder, sizeof fun_nested };
  for (int k = 0; k < 2; k++)
    {
      etf_reader r;
      etf_item it;
      etf_buf out;
      etf_buf_init (&out);
      CHECK (first_item (&r, funs[k], lens[k], &it) == ETF_OK);
      CHECK (etf_copy_fun (&r, &it, &out) == ETF_OK);
      CHECK (etf_expect_end (&r) == ETF_OK);
      CHECK (out.len == lens[k] - 1
             && memcmp (out.data, funs[k] + 1, out.len) == 0);
      etf_buf_free (&out);
    }
  uint8_t *buf = patched (fun_nested, sizeof fun_nested, 85, 83);
  etf_reader r;
  etf_item it;
  etf_buf out;
  etf_buf_init (&out);
  CHECK (first_item (&r, buf, sizeof fun_nested, &it) == ETF_OK);
  CHECK (etf_copy_fun (&r, &it, &out) == ETF_ERROR
         && strstr (r.error, "do not fill"));
  etf_buf_free (&out);
  free (buf);
}

static void
test_export (void)
{
  etf_reader r;
  etf_item it;
  CHECK (first_item (&r, export_map2, sizeof export_map2, &it) == ETF_OK);
  CHECK (it.kind == ETF_EXPORT
         && atom_is (&it.v.export.module, "lists", true)
         && atom_is (&it.v.export.function, "map", true)
         && it.v.export.arity == 2);
  CHECK (etf_expect_end (&r) == ETF_OK);
  CHECK (valid (export_v2, sizeof export_v2));
  CHECK (fails_with (BYTES (131, 113, 119, 1, 109, 119, 1, 102, 98, 0, 0, 0,
                            2), "arity"));
  CHECK (fails_with (BYTES (131, 113, 119, 1, 109, 119, 1, 102, 97),
                     "truncated"));
  CHECK (fails_with (BYTES (131, 113, 119, 1, 109, 97, 1, 97, 2),
                     "atom expected"));
}

/* ---------------------------------------------------------------- */
/* Compressed terms */

static void
test_compressed (void)
{
  etf_reader r;
  uint8_t *dec = NULL;
  CHECK (etf_open (&r, compressed_list, sizeof compressed_list, MAX_SIZE,
                   &dec) == ETF_OK);
  CHECK (dec != NULL && r.buf == dec && r.len == 806 && r.pos == 0);
  etf_item it;
  CHECK (etf_read_item (&r, &it) == ETF_OK && it.kind == ETF_LIST
         && it.v.arity == 100);
  CHECK (etf_skip_terms (&r, 101) == ETF_OK && etf_expect_end (&r) == ETF_OK);
  free (dec);
  CHECK (valid (compressed_list, sizeof compressed_list));

  size_t len = sizeof compressed_list;
  uint8_t *buf = malloc (len + 1);
  memcpy (buf, compressed_list, len);

  /* The limit is inclusive.  */
  const char *reason;
  size_t offset;
  CHECK (etf_validate (buf, len, 806, &reason, &offset) == ETF_OK);
  CHECK (etf_validate (buf, len, 805, &reason, &offset) == ETF_ERROR
         && strstr (reason, "exceeds the limit") && offset == 1);

  /* Declared sizes that do not match what the stream holds.  */
  buf[5] = 37;
  CHECK (fails_with (buf, len, "corrupt"));
  buf[5] = 39;
  CHECK (fails_with (buf, len, "corrupt"));
  buf[2] = buf[3] = buf[4] = buf[5] = 0;
  CHECK (fails_with (buf, len, "size 0"));
  buf[2] = 0xFF, buf[3] = 0xFF, buf[4] = 0xFF, buf[5] = 0xFF;
  CHECK (fails_with (buf, len, "exceeds the limit"));
  memcpy (buf, compressed_list, len);

  /* Damaged zlib data, and a damaged checksum.  */
  buf[12] ^= 0x55;
  CHECK (fails_with (buf, len, "corrupt"));
  memcpy (buf, compressed_list, len);
  buf[len - 1] ^= 1;
  CHECK (fails_with (buf, len, "corrupt"));
  memcpy (buf, compressed_list, len);
  buf[6] = 0;  /* not a zlib header */
  CHECK (fails_with (buf, len, "corrupt"));
  memcpy (buf, compressed_list, len);

  /* A cut stream, and bytes after a whole one.  */
  CHECK (fails_with (buf, len - 4, "corrupt"));
  CHECK (fails_with (buf, 6, "corrupt"));
  CHECK (fails_with (buf, 5, "truncated"));
  buf[len] = 0;
  CHECK (fails_with (buf, len + 1, "trailing"));
  CHECK (fail_offset (buf, len + 1) == len);
  free (buf);

  /* A compressed term may not nest, nor appear inside a term.  */
  CHECK (fails_with (BYTES (131, 104, 1, 80, 0, 0, 0, 1, 120, 156, 75, 4, 0,
                            0, 98, 0, 98), "inside a term"));
  uint8_t inner[] = {80, 0, 0, 0, 2, 97, 1};
  uint8_t z[64] = {131, 80, 0, 0, 0, sizeof inner};
  uLongf zlen = sizeof z - 6;
  CHECK (compress2 (z + 6, &zlen, inner, sizeof inner, 6) == Z_OK);
  CHECK (fails_with (z, 6 + zlen, "inside a term"));

  /* What decompresses is checked like any term.  */
  uint8_t bad[] = {104, 2, 97};
  z[5] = sizeof bad;
  zlen = sizeof z - 6;
  CHECK (compress2 (z + 6, &zlen, bad, sizeof bad, 6) == Z_OK);
  CHECK (fails_with (z, 6 + zlen, "exceeds"));
  uint8_t trail[] = {97, 1, 97};
  z[5] = sizeof trail;
  zlen = sizeof z - 6;
  CHECK (compress2 (z + 6, &zlen, trail, sizeof trail, 6) == Z_OK);
  CHECK (fails_with (z, 6 + zlen, "trailing"));
}

/* ---------------------------------------------------------------- */
/* Atom cache references */

static void
test_atom_cache_ref (void)
{
  static const etf_atom table[] = {
    {(const uint8_t *) "derl@host", 9, false},
    {(const uint8_t *) "h\xe9", 2, true},
  };
  etf_reader r;
  etf_item it;
  uint8_t *dec;

  /* Outside a distribution header there is no table.  */
  CHECK (fails_with (BYTES (131, 82, 1), "outside a distribution header"));
  CHECK (fails_with (BYTES (131, 88, 82, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0,
                            1), "outside a distribution header"));

  static const uint8_t one[] = {131, 82, 1};
  CHECK (etf_open (&r, one, sizeof one, 0, &dec) == ETF_OK);
  r.atom_refs = table;
  r.atom_ref_count = 2;
  CHECK (etf_read_item (&r, &it) == ETF_OK && it.kind == ETF_ATOM
         && atom_is (&it.v.atom, "h\xe9", true));
  CHECK (etf_expect_end (&r) == ETF_OK);

  static const uint8_t pid[] = {131, 88, 82, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0,
                                0, 0, 1};
  CHECK (etf_open (&r, pid, sizeof pid, 0, &dec) == ETF_OK);
  r.atom_refs = table;
  r.atom_ref_count = 2;
  CHECK (etf_read_item (&r, &it) == ETF_OK && it.kind == ETF_PID
         && atom_is (&it.v.pid.node, "derl@host", false)
         && it.v.pid.id == 7);

  /* {A0, A1, A1} through etf_skip_terms.  */
  static const uint8_t tuple[] = {131, 104, 3, 82, 0, 82, 1, 82, 1};
  CHECK (etf_open (&r, tuple, sizeof tuple, 0, &dec) == ETF_OK);
  r.atom_refs = table;
  r.atom_ref_count = 2;
  CHECK (etf_skip_terms (&r, 1) == ETF_OK && etf_expect_end (&r) == ETF_OK);

  static const uint8_t out[] = {131, 82, 2};
  CHECK (etf_open (&r, out, sizeof out, 0, &dec) == ETF_OK);
  r.atom_refs = table;
  r.atom_ref_count = 2;
  CHECK (etf_read_item (&r, &it) == ETF_ERROR
         && strstr (r.error, "out of range") && r.error_offset == 1);
  /* An empty table has nothing in range.  */
  CHECK (etf_open (&r, one, sizeof one, 0, &dec) == ETF_OK);
  r.atom_refs = table;
  r.atom_ref_count = 0;
  CHECK (etf_read_item (&r, &it) == ETF_ERROR
         && strstr (r.error, "out of range"));

  static const uint8_t cut[] = {131, 82};
  CHECK (etf_open (&r, cut, sizeof cut, 0, &dec) == ETF_OK);
  r.atom_refs = table;
  r.atom_ref_count = 2;
  CHECK (etf_read_item (&r, &it) == ETF_ERROR
         && strstr (r.error, "truncated"));
}

/* ---------------------------------------------------------------- */
/* Hostile and malformed input */

/* Every proper prefix of BUF must fail cleanly, through both
   etf_validate and an item-by-item walk.  */
static void
check_prefixes (const uint8_t *buf, size_t len)
{
  for (size_t n = 0; n < len; n++)
    {
      /* An exact-size copy, so that ASan sees any read past the end.  */
      uint8_t *copy = malloc (n ? n : 1);
      memcpy (copy, buf, n);
      const char *reason = NULL;
      size_t offset = 0;
      etf_status s = etf_validate (copy, n, MAX_SIZE, &reason, &offset);
      if (s != ETF_ERROR || !reason || offset > n)
        {
          fprintf (stderr, "  prefix %zu of %zu: status %d\n", n, len, s);
          CHECK (s == ETF_ERROR && reason && offset <= n);
        }
      etf_reader r;
      uint8_t *dec;
      if (etf_open (&r, copy, n, MAX_SIZE, &dec) == ETF_OK)
        {
          etf_item it;
          size_t items = 0;
          while (etf_read_item (&r, &it) == ETF_OK && items < len)
            items++;
          CHECK (r.error != NULL);
        }
      free (dec);
      free (copy);
    }
  CHECK (valid (buf, len));
}

static void
test_truncation (void)
{
  check_prefixes (tuple_mixed, sizeof tuple_mixed);
  check_prefixes (fun_nested, sizeof fun_nested);
  check_prefixes (export_map2, sizeof export_map2);
  check_prefixes (compressed_list, sizeof compressed_list);
  check_prefixes (pid_remote, sizeof pid_remote);
  check_prefixes (port_v4, sizeof port_v4);
  check_prefixes (ref_remote, sizeof ref_remote);
  check_prefixes (bits_123, sizeof bits_123);
  check_prefixes (float_old, sizeof float_old);
  check_prefixes (big_neg, sizeof big_neg);
  check_prefixes (atom_utf8, sizeof atom_utf8);
  check_prefixes (mixed_v2, sizeof mixed_v2);
}

/* Each element cut short inside its own header or body says which.  */
static void
test_truncation_names_the_element (void)
{
  CHECK (fails_with (BYTES (131, 97), "truncated integer"));
  CHECK (fails_with (BYTES (131, 98, 0, 0), "truncated integer"));
  CHECK (fails_with (BYTES (131, 110), "truncated big integer"));
  CHECK (fails_with (BYTES (131, 111, 0, 0, 0), "truncated big integer"));
  CHECK (fails_with (BYTES (131, 110, 2, 0, 1), "truncated big integer"));
  CHECK (fails_with (BYTES (131, 70, 0, 0), "truncated float"));
  CHECK (fails_with (BYTES (131, 107, 0), "truncated string"));
  CHECK (fails_with (BYTES (131, 107, 0, 3, 'a'), "truncated string"));
  CHECK (fails_with (BYTES (131, 108, 0, 0), "truncated list"));
  CHECK (fails_with (BYTES (131, 104), "truncated tuple"));
  CHECK (fails_with (BYTES (131, 105, 0), "truncated tuple"));
  CHECK (fails_with (BYTES (131, 116, 0), "truncated map"));
  CHECK (fails_with (BYTES (131, 109, 0, 0, 0), "truncated binary"));
  CHECK (fails_with (BYTES (131, 109, 0, 0, 0, 2, 1), "truncated binary"));
  CHECK (fails_with (BYTES (131, 77, 0, 0, 0, 1), "truncated bitstring"));
  CHECK (fails_with (BYTES (131, 77, 0, 0, 0, 2, 3, 1), "truncated bitstring"));
  CHECK (fails_with (BYTES (131, 114, 0), "truncated reference"));
  CHECK (fails_with (BYTES (131, 101, 119, 1, 'n', 0, 0), "truncated reference"));
  CHECK (fails_with (BYTES (131, 89, 119, 1, 'n', 0, 0), "truncated port"));
  CHECK (fails_with (BYTES (131, 113, 119, 1, 'm', 119, 1, 'f', 97),
                     "truncated export"));
  /* And the counts a header claims are checked against what is left.  */
  CHECK (fails_with (BYTES (131, 104, 3, 97, 1), "element count"));
  CHECK (fails_with (BYTES (131, 116, 0, 0, 0, 2, 97, 1, 97), "element count"));
}

static void
test_huge_counts (void)
{
  /* Ten bytes that claim a list of 4,294,967,295 elements: refused at
     the header (offset 1), before any element is looked at.  */
  static const uint8_t list[10] = {131, 108, 255, 255, 255, 255, 106, 106,
                                   106, 106};
  CHECK (fails_with (list, sizeof list, "element count exceeds the input"));
  CHECK (fail_offset (list, sizeof list) == 1);
  CHECK (fail_offset (BYTES (131, 105, 255, 255, 255, 255, 106, 106, 106,
                             106)) == 1);
  CHECK (fail_offset (BYTES (131, 116, 255, 255, 255, 255, 106, 106, 106,
                             106)) == 1);
  /* Half the items a map claims are not there.  */
  CHECK (fail_offset (BYTES (131, 116, 0, 0, 0, 3, 106, 106, 106, 106, 106))
         == 1);
  /* Nested: the inner list is refused at its own header.  */
  CHECK (fail_offset (BYTES (131, 108, 0, 0, 0, 1, 108, 255, 255, 255, 255,
                             106, 106)) == 6);
  CHECK (fails_with (BYTES (131, 109, 255, 255, 255, 255, 0), "truncated"));
  CHECK (fails_with (BYTES (131, 107, 255, 255, 0), "truncated"));
  CHECK (fails_with (BYTES (131, 111, 255, 255, 255, 255, 0, 0),
                     "truncated"));
  CHECK (fails_with (BYTES (131, 118, 255, 255, 97), "truncated"));
  /* A compressed term may claim at most MAX_SIZE bytes, whatever follows. */
  CHECK (fails_with (BYTES (131, 80, 255, 255, 255, 255, 120, 156),
                     "exceeds the limit"));
}

#define DEPTH 1000000

static void
test_deep_nesting (void)
{
  /* [[[...[]...]]] one million deep: 131, DEPTH list headers of one
     element, the innermost [], then DEPTH tails.  */
  size_t len = 1 + 5 * (size_t) DEPTH + 1 + DEPTH;
  uint8_t *buf = malloc (len);
  size_t n = 0;
  buf[n++] = 131;
  for (int k = 0; k < DEPTH; k++)
    {
      memcpy (buf + n, (uint8_t[]) {108, 0, 0, 0, 1}, 5);
      n += 5;
    }
  memset (buf + n, 106, DEPTH + 1);
  n += DEPTH + 1;
  CHECK (n == len);
  CHECK (valid (buf, len));
  CHECK (fails_with (buf, len - 1, "truncated"));
  free (buf);

  /* {{{...{}...}}} likewise.  */
  len = 1 + 2 * (size_t) DEPTH + 2;
  buf = malloc (len);
  buf[0] = 131;
  for (size_t k = 0; k < DEPTH; k++)
    buf[1 + 2 * k] = 104, buf[2 + 2 * k] = 1;
  buf[len - 2] = 104;
  buf[len - 1] = 0;
  CHECK (valid (buf, len));
  free (buf);
}

/* Funs nested DEPTH deep through their one free variable, the innermost
   holding [].  Each fun header is FUN_HEAD bytes, tag included.  */
#define FUN_HEAD 53
#define FUN_DEPTH 20000

static void
test_deep_funs (void)
{
  size_t len = 1 + (size_t) FUN_DEPTH * FUN_HEAD + 1;
  uint8_t *buf = calloc (1, len);
  uint8_t *p = buf;
  *p++ = 131;
  for (size_t k = 0; k < FUN_DEPTH; k++)
    {
      size_t inner = (FUN_DEPTH - k - 1) * (size_t) FUN_HEAD + 1;
      uint32_t size = (uint32_t) (FUN_HEAD - 1 + inner);
      uint8_t *start = p;
      *p++ = ETF_TAG_NEW_FUN;
      *p++ = (uint8_t) (size >> 24), *p++ = (uint8_t) (size >> 16);
      *p++ = (uint8_t) (size >> 8), *p++ = (uint8_t) size;
      p += 1 + 16 + 4;     /* arity, uniq, index */
      p += 3, *p++ = 1;    /* NumFree */
      memcpy (p, (uint8_t[]) {119, 1, 109, 97, 0, 97, 0, 88, 119, 1, 110},
              11);
      p += 11 + 12;        /* module, old index and uniq, pid */
      CHECK (p - start == FUN_HEAD);
    }
  *p++ = 106;
  CHECK ((size_t) (p - buf) == len);
  CHECK (valid (buf, len));
  CHECK (fails_with (buf, len - 1, "fun size exceeds the input"));
  /* Extend the innermost fun by one: every fun around it is then short. */
  buf[len - FUN_HEAD - 1 + 4] += 1;
  CHECK (!valid (buf, len));
  free (buf);
}

static void
test_framing (void)
{
  CHECK (fails_with (BYTES (131, 97, 1, 0), "trailing"));
  CHECK (fail_offset (BYTES (131, 97, 1, 0)) == 3);
  CHECK (fails_with (BYTES (131, 106, 106), "trailing"));
  CHECK (fails_with (NULL, 0, "empty"));
  CHECK (fails_with (BYTES (131), "truncated"));
  CHECK (fails_with (BYTES (130, 97, 1), "version"));
  CHECK (fails_with (BYTES (131, 0), "unknown tag"));
  CHECK (fails_with (BYTES (131, 75, 0), "unknown tag"));
  CHECK (fails_with (BYTES (131, 104, 1, 255), "unknown tag"));
  CHECK (fail_offset (BYTES (131, 104, 1, 255)) == 3);

  /* etf_skip_terms reads exactly COUNT terms.  */
  static const uint8_t two[] = {97, 1, 108, 0, 0, 0, 1, 106, 106};
  etf_reader r;
  etf_reader_init (&r, two, sizeof two);
  CHECK (etf_skip_terms (&r, 2) == ETF_OK && etf_expect_end (&r) == ETF_OK);
  etf_reader_init (&r, two, sizeof two);
  CHECK (etf_skip_terms (&r, 1) == ETF_OK && r.pos == 2);
  CHECK (etf_expect_end (&r) == ETF_ERROR && r.error_offset == 2);
  etf_reader_init (&r, two, sizeof two);
  CHECK (etf_skip_terms (&r, 3) == ETF_ERROR);
  etf_reader_init (&r, two, sizeof two);
  CHECK (etf_skip_terms (&r, 0) == ETF_OK && r.pos == 0);

  /* etf_fail records where and why.  */
  CHECK (etf_fail (&r, 5, "because") == ETF_ERROR && r.error_offset == 5
         && strcmp (r.error, "because") == 0);
}

/* ---------------------------------------------------------------- */
/* Writer */

static void
test_writer_matches_erlang (void)
{
  etf_buf b;
  etf_buf_init (&b);
  static const uint8_t node[] = "derl@host";
  static const uint8_t id[] = {0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3};

  etf_put_version (&b);
  etf_put_pid (&b, node, 9, 7, 1, 0x5eed);
  CHECK (buf_is (&b, pid_v2, sizeof pid_v2));
  b.len = 1;
  etf_put_port (&b, node, 9, 42, 0x5eed);
  CHECK (buf_is (&b, port_v2, sizeof port_v2));
  b.len = 1;
  etf_put_port (&b, node, 9, 0x123456789aULL, 0x5eed);
  CHECK (buf_is (&b, port_v4_v2, sizeof port_v4_v2));
  b.len = 1;
  etf_put_ref (&b, node, 9, 0x5eed, id, 3);
  CHECK (buf_is (&b, ref_v2, sizeof ref_v2));
  b.len = 1;
  etf_put_export (&b, (const uint8_t *) "lists", 5, (const uint8_t *) "map",
                  3, 2);
  CHECK (buf_is (&b, export_v2, sizeof export_v2));
  b.len = 1;
  etf_put_atom (&b, (const uint8_t *) "h\xc3\xa9llo", 6);
  CHECK (buf_is (&b, atom_utf8, sizeof atom_utf8));
  b.len = 1;
  etf_put_float (&b, -0.1);
  CHECK (buf_is (&b, float_new, sizeof float_new));

  /* The whole of mixed_v2.  */
  b.len = 1;
  etf_put_tuple_header (&b, 10);
  etf_put_int (&b, -5);
  etf_put_int (&b, (int64_t) 1 << 40);
  etf_put_string (&b, (const uint8_t *) "\1\2", 2);
  etf_put_list_header (&b, 1);
  etf_put_atom (&b, (const uint8_t *) "a", 1);
  etf_put_atom (&b, (const uint8_t *) "b", 1);
  etf_put_map_header (&b, 1);
  etf_put_atom (&b, (const uint8_t *) "k", 1);
  etf_put_atom (&b, (const uint8_t *) "v", 1);
  etf_put_binary (&b, (const uint8_t *) "xyz", 3);
  etf_put_bitstring (&b, (const uint8_t *) "\xab\xff", 2, 3);
  etf_put_string (&b, (const uint8_t *) "abc", 3);
  etf_put_atom (&b, (const uint8_t *) "h\xc3\xa9llo", 6);
  etf_put_float (&b, 2.5);
  CHECK (buf_is (&b, mixed_v2, sizeof mixed_v2));
  etf_buf_free (&b);
  CHECK (b.data == NULL && b.len == 0 && b.cap == 0);
}

static void
test_writer_round_trip (void)
{
  etf_buf b;
  etf_buf_init (&b);
  static const uint8_t id[] = {1, 2, 3, 4, 5, 6, 7, 8};
  uint8_t digits[300];
  for (size_t k = 0; k < sizeof digits; k++)
    digits[k] = (uint8_t) (k * 7 + 1);

  etf_put_version (&b);
  etf_put_tuple_header (&b, 13);
  etf_put_int (&b, -123456789012LL);
  etf_put_big (&b, true, digits, sizeof digits);
  etf_put_float (&b, 6.02214076e23);
  etf_put_atom (&b, (const uint8_t *) "\xe2\x9c\x93", 3);
  etf_put_nil (&b);
  etf_put_list_header (&b, 2);
  etf_put_string (&b, (const uint8_t *) "ab\0c", 4);
  etf_put_binary (&b, (const uint8_t *) "", 0);
  etf_put_int (&b, 9);                                 /* improper tail */
  etf_put_map_header (&b, 1);
  etf_put_bitstring (&b, (const uint8_t *) "\xff", 1, 1);
  etf_put_binary (&b, (const uint8_t *) "bin", 3);
  etf_put_pid (&b, (const uint8_t *) "n@h", 3, 1, 2, 3);
  etf_put_port (&b, (const uint8_t *) "n@h", 3, 0xFFFFFFFFULL, 4);
  etf_put_port (&b, (const uint8_t *) "n@h", 3, 0x100000000ULL, 5);
  etf_put_ref (&b, (const uint8_t *) "n@h", 3, 6, id, 2);
  etf_put_old_ref (&b, (const uint8_t *) "n@h", 3, 7, 8);
  etf_put_export (&b, (const uint8_t *) "m", 1, (const uint8_t *) "f", 1,
                  255);
  CHECK (b.status == ETF_OK && b.error == NULL);
  CHECK (valid (b.data, b.len));

  etf_reader r;
  etf_item it;
  CHECK (first_item (&r, b.data, b.len, &it) == ETF_OK
         && it.kind == ETF_TUPLE && it.v.arity == 13);
  CHECK (etf_read_item (&r, &it) == ETF_OK && it.kind == ETF_INT
         && it.v.i == -123456789012LL);
  CHECK (etf_read_item (&r, &it) == ETF_OK && it.kind == ETF_BIG
         && it.v.big.negative && it.v.big.n == sizeof digits
         && memcmp (it.v.big.digits, digits, sizeof digits) == 0);
  CHECK (etf_read_item (&r, &it) == ETF_OK && it.kind == ETF_FLOAT
         && it.v.f == 6.02214076e23);
  CHECK (etf_read_item (&r, &it) == ETF_OK && it.kind == ETF_ATOM
         && atom_is (&it.v.atom, "\xe2\x9c\x93", false));
  CHECK (etf_read_item (&r, &it) == ETF_OK && it.kind == ETF_NIL);
  CHECK (etf_read_item (&r, &it) == ETF_OK && it.kind == ETF_LIST
         && it.v.arity == 2);
  CHECK (etf_read_item (&r, &it) == ETF_OK && it.kind == ETF_STRING
         && bytes_are (&it, "ab\0c", 4));
  CHECK (etf_read_item (&r, &it) == ETF_OK && it.kind == ETF_BINARY
         && it.v.bytes.len == 0);
  CHECK (etf_read_item (&r, &it) == ETF_OK && it.kind == ETF_INT
         && it.v.i == 9);
  CHECK (etf_read_item (&r, &it) == ETF_OK && it.kind == ETF_MAP
         && it.v.arity == 1);
  /* The unused low bits of a bitstring's last byte are written as 0.  */
  CHECK (etf_read_item (&r, &it) == ETF_OK && it.kind == ETF_BITSTRING
         && bytes_are (&it, "\x80", 1) && it.v.bytes.bits == 1);
  CHECK (etf_read_item (&r, &it) == ETF_OK && it.kind == ETF_BINARY
         && bytes_are (&it, "bin", 3));
  CHECK (etf_read_item (&r, &it) == ETF_OK && it.kind == ETF_PID
         && atom_is (&it.v.pid.node, "n@h", false) && it.v.pid.id == 1
         && it.v.pid.serial == 2 && it.v.pid.creation == 3);
  CHECK (etf_read_item (&r, &it) == ETF_OK && it.kind == ETF_PORT
         && it.v.port.id == 0xFFFFFFFFULL && it.v.port.creation == 4
         && r.buf[it.offset] == ETF_TAG_NEW_PORT);
  CHECK (etf_read_item (&r, &it) == ETF_OK && it.kind == ETF_PORT
         && it.v.port.id == 0x100000000ULL && it.v.port.creation == 5
         && r.buf[it.offset] == ETF_TAG_V4_PORT);
  CHECK (etf_read_item (&r, &it) == ETF_OK && it.kind == ETF_REF
         && it.v.ref.creation == 6 && it.v.ref.words == 2
         && memcmp (it.v.ref.id, id, 8) == 0);
  CHECK (etf_read_item (&r, &it) == ETF_OK && it.kind == ETF_OLD_REF
         && it.v.old_ref.id == 7 && it.v.old_ref.creation == 8);
  CHECK (etf_read_item (&r, &it) == ETF_OK && it.kind == ETF_EXPORT
         && atom_is (&it.v.export.module, "m", false)
         && atom_is (&it.v.export.function, "f", false)
         && it.v.export.arity == 255);
  CHECK (etf_expect_end (&r) == ETF_OK);
  etf_buf_free (&b);

  /* Growth well past the first allocation.  */
  etf_buf_init (&b);
  etf_put_version (&b);
  etf_put_list_header (&b, 100000);
  for (int k = 0; k < 100000; k++)
    etf_put_int (&b, k * 1000);
  etf_put_nil (&b);
  CHECK (b.status == ETF_OK && valid (b.data, b.len));
  CHECK (first_item (&r, b.data, b.len, &it) == ETF_OK);
  for (int k = 0; k < 100000; k++)
    if (etf_read_item (&r, &it) != ETF_OK || it.v.i != k * 1000)
      {
        CHECK (!"list element read back wrong");
        break;
      }
  etf_buf_free (&b);
}

/* etf_put_int (V) writes WANT (no version byte) and reads back as V.  */
static bool
put_int_is (int64_t v, const uint8_t *want, size_t len)
{
  etf_buf b;
  etf_buf_init (&b);
  etf_put_version (&b);
  etf_put_int (&b, v);
  bool good = b.status == ETF_OK && b.len == 1 + len
              && memcmp (b.data + 1, want, len) == 0
              && reads_int (b.data, b.len, v);
  etf_buf_free (&b);
  return good;
}

static void
test_put_int (void)
{
  /* Each as Erlang's term_to_binary writes it.  */
  CHECK (put_int_is (0, BYTES (97, 0)));
  CHECK (put_int_is (255, BYTES (97, 255)));
  CHECK (put_int_is (256, BYTES (98, 0, 0, 1, 0)));
  CHECK (put_int_is (-1, BYTES (98, 255, 255, 255, 255)));
  CHECK (put_int_is (INT32_MIN, BYTES (98, 128, 0, 0, 0)));
  CHECK (put_int_is (INT32_MAX, BYTES (98, 127, 255, 255, 255)));
  CHECK (put_int_is (2147483648LL, BYTES (110, 4, 0, 0, 0, 0, 128)));
  CHECK (put_int_is (-2147483649LL, BYTES (110, 4, 1, 1, 0, 0, 128)));
  CHECK (put_int_is (INT64_MIN, BYTES (110, 8, 1, 0, 0, 0, 0, 0, 0, 0, 128)));
  CHECK (put_int_is (INT64_MAX, BYTES (110, 8, 0, 255, 255, 255, 255, 255,
                                       255, 255, 127)));
  CHECK (put_int_is (INT64_MIN + 1, BYTES (110, 8, 1, 255, 255, 255, 255,
                                           255, 255, 255, 127)));
}

/* etf_put_big (NEG, DIGITS, N) writes WANT.  */
static bool
put_big_is (bool neg, const uint8_t *digits, size_t n, const uint8_t *want,
            size_t len)
{
  etf_buf b;
  etf_buf_init (&b);
  etf_put_big (&b, neg, digits, n);
  bool good = buf_is (&b, want, len);
  etf_buf_free (&b);
  return good;
}

static void
test_put_big (void)
{
  static const uint8_t d[] = {5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  static const uint8_t two64[] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0};
  static const uint8_t two63[] = {0, 0, 0, 0, 0, 0, 0, 128};
  static const uint8_t seven[] = {255, 255, 255, 255, 255, 255, 255};

  /* High zero digits go, and what fits is an ordinary integer.  */
  CHECK (put_big_is (false, d, sizeof d, BYTES (97, 5)));
  CHECK (put_big_is (true, d, sizeof d, BYTES (98, 255, 255, 255, 251)));
  CHECK (put_big_is (false, d, 0, BYTES (97, 0)));
  CHECK (put_big_is (true, d, 0, BYTES (97, 0)));      /* minus zero */
  CHECK (put_big_is (true, d + 1, 5, BYTES (97, 0)));
  CHECK (put_big_is (false, seven, 7, BYTES (110, 7, 0, 255, 255, 255, 255,
                                             255, 255, 255)));
  CHECK (put_big_is (true, seven, 7, BYTES (110, 7, 1, 255, 255, 255, 255,
                                            255, 255, 255)));
  /* Erlang: 1 bsl 63 and -(1 bsl 64).  */
  CHECK (put_big_is (false, two63, 8, BYTES (110, 8, 0, 0, 0, 0, 0, 0, 0, 0,
                                             128)));
  CHECK (put_big_is (true, two64, sizeof two64,
                     BYTES (110, 9, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1)));

  /* 255 digits is the most SMALL_BIG holds.  */
  uint8_t *digits = calloc (1, 300);
  digits[254] = 1;
  etf_buf b;
  etf_buf_init (&b);
  etf_put_big (&b, false, digits, 300);
  CHECK (b.status == ETF_OK && b.len == 2 + 1 + 255 && b.data[0] == 110
         && b.data[1] == 255);
  etf_buf_free (&b);
  /* Erlang: 1 bsl 2100 is LARGE_BIG with 263 digits.  */
  digits[262] = 16;
  etf_put_big (&b, false, digits, 300);
  CHECK (b.status == ETF_OK && b.len == 5 + 1 + 263
         && memcmp (b.data, (uint8_t[]) {111, 0, 0, 1, 7, 0}, 6) == 0
         && b.data[b.len - 1] == 16);
  etf_buf_free (&b);
  free (digits);
}

static void
test_put_atom (void)
{
  uint8_t name[4 * 256];
  etf_buf b;

  memset (name, 'x', sizeof name);
  etf_buf_init (&b);
  etf_put_atom (&b, name, 255);
  CHECK (b.status == ETF_OK && b.len == 257 && b.data[0] == 119
         && b.data[1] == 255);
  etf_put_atom (&b, name, 0);
  CHECK (b.status == ETF_OK && b.len == 259 && b.data[258] == 0);
  etf_buf_free (&b);

  etf_put_atom (&b, name, 256);
  CHECK (b.status == ETF_ERROR && strstr (b.error, "255") && b.len == 0);
  /* Errors stick: later puts do nothing.  */
  etf_put_atom (&b, name, 3);
  etf_put_int (&b, 1);
  etf_put_u32 (&b, 1);
  CHECK (b.status == ETF_ERROR && b.len == 0);
  etf_buf_free (&b);

  /* 255 two-byte characters are 510 bytes: ATOM_UTF8 with a 16-bit
     length.  */
  for (size_t k = 0; k < 256; k++)
    name[2 * k] = 0xC3, name[2 * k + 1] = 0xA9;
  etf_put_version (&b);
  etf_put_atom (&b, name, 510);
  CHECK (b.status == ETF_OK && b.len == 1 + 3 + 510 && b.data[1] == 118
         && b.data[2] == 1 && b.data[3] == 254);
  CHECK (valid (b.data, b.len));
  etf_buf_free (&b);
  etf_put_atom (&b, name, 512);
  CHECK (b.status == ETF_ERROR && strstr (b.error, "255"));
  etf_buf_free (&b);
  /* 255 four-byte characters.  */
  for (size_t k = 0; k < 256; k++)
    memcpy (name + 4 * k, "\xf0\x9f\x98\x80", 4);
  etf_put_atom (&b, name, 1020);
  CHECK (b.status == ETF_OK && b.len == 3 + 1020);
  etf_buf_free (&b);
  etf_put_atom (&b, name, 1024);
  CHECK (b.status == ETF_ERROR);
  etf_buf_free (&b);
  /* Short names must be UTF-8 too: raw bytes from a unibyte string
     would make the peer reject the message.  */
  etf_put_atom (&b, (const uint8_t *) "\xff", 1);
  CHECK (b.status == ETF_ERROR && strstr (b.error, "UTF-8") && b.len == 0);
  etf_buf_free (&b);
  etf_put_atom (&b, (const uint8_t *) "ok\xc0\x80", 4);
  CHECK (b.status == ETF_ERROR && strstr (b.error, "UTF-8"));
  etf_buf_free (&b);
  etf_put_pid (&b, (const uint8_t *) "n@\xe9", 3, 1, 2, 3);
  CHECK (b.status == ETF_ERROR && strstr (b.error, "UTF-8"));
  etf_buf_free (&b);
  /* NUL is a character like any other.  */
  etf_put_atom (&b, (const uint8_t *) "a\0b", 3);
  CHECK (buf_is (&b, BYTES (119, 3, 97, 0, 98)));
  etf_buf_free (&b);
  /* Too long to be checked by length alone, and not UTF-8.  */
  memset (name, 0xFF, 300);
  etf_put_atom (&b, name, 300);
  CHECK (b.status == ETF_ERROR && strstr (b.error, "UTF-8"));
  etf_buf_free (&b);
}

static void
test_put_float (void)
{
  static const double bad[] = {NAN, -NAN, INFINITY, -INFINITY};
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
    {
      etf_buf b;
      etf_buf_init (&b);
      etf_put_version (&b);
      etf_put_float (&b, bad[k]);
      CHECK (b.status == ETF_ERROR && b.len == 1 && b.error
             && strstr (b.error, "NaN"));
      etf_buf_free (&b);
    }

  static const double good[] = {0.0, -0.0, 1.5, -0.1, DBL_MAX, -DBL_MAX,
                                DBL_MIN, 4.9406564584124654e-324};
  for (size_t k = 0; k < sizeof good / sizeof good[0]; k++)
    {
      etf_buf b;
      etf_buf_init (&b);
      etf_put_version (&b);
      etf_put_float (&b, good[k]);
      etf_reader r;
      etf_item it;
      CHECK (b.status == ETF_OK && b.len == 10);
      CHECK (first_item (&r, b.data, b.len, &it) == ETF_OK
             && it.kind == ETF_FLOAT
             && memcmp (&it.v.f, &good[k], sizeof (double)) == 0);
      etf_buf_free (&b);
    }
}

static void
test_put_limits (void)
{
  etf_buf b;
  uint8_t *big = calloc (1, 70000);

  etf_buf_init (&b);
  etf_put_string (&b, big, 65535);
  CHECK (b.status == ETF_OK && b.len == 3 + 65535);
  etf_buf_free (&b);
  etf_put_string (&b, big, 65536);
  CHECK (b.status == ETF_ERROR && b.len == 0);
  etf_buf_free (&b);
  etf_put_string (&b, big, 0);
  CHECK (buf_is (&b, BYTES (107, 0, 0)));
  etf_buf_free (&b);

  etf_put_tuple_header (&b, 255);
  CHECK (buf_is (&b, BYTES (104, 255)));
  etf_buf_free (&b);
  etf_put_tuple_header (&b, 256);
  CHECK (buf_is (&b, BYTES (105, 0, 0, 1, 0)));
  etf_buf_free (&b);

  /* Bitstrings: 8 bits or no bytes make a binary; 0 or 9 bits with
     bytes are refused.  */
  etf_put_bitstring (&b, (const uint8_t *) "\xff", 1, 8);
  CHECK (buf_is (&b, BYTES (109, 0, 0, 0, 1, 255)));
  etf_buf_free (&b);
  etf_put_bitstring (&b, NULL, 0, 0);
  CHECK (buf_is (&b, BYTES (109, 0, 0, 0, 0)));
  etf_buf_free (&b);
  etf_put_bitstring (&b, (const uint8_t *) "\xff\xff", 2, 7);
  CHECK (buf_is (&b, BYTES (77, 0, 0, 0, 2, 7, 255, 254)));
  etf_buf_free (&b);
  etf_put_bitstring (&b, (const uint8_t *) "\xff", 1, 0);
  CHECK (b.status == ETF_ERROR);
  etf_buf_free (&b);
  etf_put_bitstring (&b, (const uint8_t *) "\xff", 1, 9);
  CHECK (b.status == ETF_ERROR);
  etf_buf_free (&b);

  static const uint8_t id[24] = {0};
  etf_put_ref (&b, (const uint8_t *) "n", 1, 0, id, 0);
  CHECK (b.status == ETF_ERROR);
  etf_buf_free (&b);
  etf_put_ref (&b, (const uint8_t *) "n", 1, 0, id, 6);
  CHECK (b.status == ETF_ERROR);
  etf_buf_free (&b);
  etf_put_ref (&b, (const uint8_t *) "n", 1, 0, id, 5);
  CHECK (b.status == ETF_OK && b.len == 1 + 2 + 3 + 4 + 20);
  etf_buf_free (&b);
  etf_put_export (&b, (const uint8_t *) "m", 1, (const uint8_t *) "f", 1,
                  256);
  CHECK (b.status == ETF_ERROR);
  etf_buf_free (&b);
  /* A node name that is no atom spoils the pid.  */
  etf_put_pid (&b, big, 256, 1, 2, 3);
  CHECK (b.status == ETF_ERROR);
  etf_buf_free (&b);

  /* Back-patching a count.  */
  etf_put_list_header (&b, 0);
  etf_put_nil (&b);
  etf_patch_u32 (&b, 1, 0x01020304);
  CHECK (buf_is (&b, BYTES (108, 1, 2, 3, 4, 106)));
  etf_patch_u32 (&b, 3, 0);  /* past the end: ignored */
  CHECK (buf_is (&b, BYTES (108, 1, 2, 3, 4, 106)));
  etf_buf_free (&b);

  etf_put_u16 (&b, 0x0102);
  etf_put_u64 (&b, 0x030405060708090aULL);
  etf_put_bytes (&b, "\x0b", 1);
  etf_put_bytes (&b, NULL, 0);
  CHECK (buf_is (&b, BYTES (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)));
  etf_buf_fail (&b, ETF_NO_MEMORY, "first");
  etf_buf_fail (&b, ETF_ERROR, "second");
  CHECK (b.status == ETF_NO_MEMORY && strcmp (b.error, "first") == 0);
  CHECK (!etf_buf_reserve (&b, 1));
  etf_buf_free (&b);
  CHECK (b.status == ETF_OK && b.error == NULL);
  free (big);
}

static void
test_compress_round_trip (void)
{
  /* Something that compresses: a list of 2000 small integers, after
     three bytes that stand for a distribution header.  */
  etf_buf b;
  etf_buf_init (&b);
  etf_put_bytes (&b, "hdr", 3);
  etf_put_version (&b);
  size_t start = b.len;
  etf_put_list_header (&b, 2000);
  for (int k = 0; k < 2000; k++)
    etf_put_int (&b, k % 10);
  etf_put_nil (&b);
  size_t raw = b.len - start;
  uint8_t *plain = malloc (raw);
  memcpy (plain, b.data + start, raw);

  etf_compress (&b, start, 6);
  CHECK (b.status == ETF_OK && memcmp (b.data, "hdr\x83", 4) == 0);
  CHECK (b.data[start] == ETF_TAG_COMPRESSED && b.len < start + raw / 10);
  CHECK ((((size_t) b.data[start + 1] << 24) | (b.data[start + 2] << 16)
          | (b.data[start + 3] << 8) | b.data[start + 4]) == raw);

  etf_reader r;
  uint8_t *dec = NULL;
  CHECK (etf_open (&r, b.data + 3, b.len - 3, raw, &dec) == ETF_OK);
  CHECK (dec && r.len == raw && memcmp (dec, plain, raw) == 0);
  CHECK (etf_skip_terms (&r, 1) == ETF_OK && etf_expect_end (&r) == ETF_OK);
  free (dec);
  CHECK (etf_open (&r, b.data + 3, b.len - 3, raw - 1, &dec) == ETF_ERROR);
  CHECK (valid (b.data + 3, b.len - 3));
  etf_buf_free (&b);
  free (plain);

  /* A small term would only grow: left as it is.  */
  etf_put_version (&b);
  etf_put_atom (&b, (const uint8_t *) "ok", 2);
  etf_compress (&b, 1, 9);
  CHECK (buf_is (&b, BYTES (131, 119, 2, 111, 107)));
  /* Nothing after START: nothing to do.  */
  etf_compress (&b, b.len, 9);
  CHECK (buf_is (&b, BYTES (131, 119, 2, 111, 107)));
  etf_buf_free (&b);

  /* The Erlang term decompressed and compressed again gives it back.  */
  CHECK (etf_open (&r, compressed_list, sizeof compressed_list, MAX_SIZE,
                   &dec) == ETF_OK);
  etf_put_version (&b);
  etf_put_bytes (&b, dec, r.len);
  etf_compress (&b, 1, Z_DEFAULT_COMPRESSION);
  CHECK (b.data[1] == ETF_TAG_COMPRESSED && valid (b.data, b.len));
  uint8_t *dec2 = NULL;
  CHECK (etf_open (&r, b.data, b.len, MAX_SIZE, &dec2) == ETF_OK
         && r.len == 806 && memcmp (dec, dec2, 806) == 0);
  free (dec);
  free (dec2);
  etf_buf_free (&b);
}

/* ---------------------------------------------------------------- */

/* ---------------------------------------------------------------- */
/* The trace printer (etf_print.c) */

/* Whether the term in BUF (version byte first) prints as EXPECT, or is
   left to Lisp when EXPECT is NULL; the limit is LIMIT.  */
static bool
prints_as (const uint8_t *buf, size_t len, bool tagged, size_t limit,
           const char *expect)
{
  etf_reader r;
  etf_reader_init (&r, buf + 1, len - 1);
  char out[400];
  etf_text text = { out, 0, sizeof out };
  bool ok = etf_print_term (&r, tagged, limit, &text);
  if (!expect)
    return !ok && text.len == 0;
  return ok && text.len == strlen (expect)
         && memcmp (out, expect, text.len) == 0 && r.pos == r.len;
}

static void
test_print_term (void)
{
  /* The atom nil is Lisp's nil; atoms that need them get quotes.  */
  CHECK (prints_as (BYTES (131, 119, 3, 'n', 'i', 'l'), false, 300, "[]"));
  CHECK (prints_as (BYTES (131, 119, 2, 'o', 'k'), false, 300, "ok"));
  CHECK (prints_as (BYTES (131, 119, 3, 'A', '\'', 'b'), false, 300,
                    "'A\\'b'"));
  CHECK (prints_as (BYTES (131, 119, 0), false, 300, "''"));
  CHECK (prints_as (BYTES (131, 119, 2, 0xc3, 0xa9), false, 300, NULL));
  /* Integers; floats and bignums are Lisp's.  */
  CHECK (prints_as (BYTES (131, 98, 255, 255, 255, 255), false, 300, "-1"));
  CHECK (prints_as (BYTES (131, 70, 63, 248, 0, 0, 0, 0, 0, 0), false, 300,
                    NULL));
  /* Text: quoted, a list of bytes, or Lisp's (a newline).  */
  CHECK (prints_as (BYTES (131, 107, 0, 3, 'a', '"', 'b'), false, 300,
                    "\"a\\\"b\""));
  CHECK (prints_as (BYTES (131, 107, 0, 2, 1, 200), false, 300, "[1,200]"));
  CHECK (prints_as (BYTES (131, 107, 0, 2, 'a', 10), false, 300, NULL));
  CHECK (prints_as (BYTES (131, 109, 0, 0, 0, 1, 'x'), false, 300,
                    "\"x\""));
  CHECK (prints_as (BYTES (131, 109, 0, 0, 0, 1, 'x'), true, 300,
                    "<<\"x\">>"));
  /* Containers; an improper list and a map are Lisp's.  */
  CHECK (prints_as (BYTES (131, 104, 2, 119, 1, 'a', 108, 0, 0, 0, 2,
                           97, 1, 104, 0, 106),
                    false, 300, "{a,[1,{}]}"));
  CHECK (prints_as (BYTES (131, 108, 0, 0, 0, 1, 97, 1, 97, 2), false, 300,
                    NULL));
  CHECK (prints_as (BYTES (131, 116, 0, 0, 0, 0), false, 300, NULL));
  /* A pid; the limit counts.  */
  CHECK (prints_as (BYTES (131, 88, 119, 3, 'a', '@', 'b', 0, 0, 0, 7,
                           0, 0, 0, 0, 0, 0, 0, 1),
                    false, 300, "<a@b.7.0>"));
  CHECK (prints_as (BYTES (131, 88, 119, 3, 'a', '@', 'b', 0, 0, 0, 7,
                           0, 0, 0, 0, 0, 0, 0, 1),
                    false, 9, "<a@b.7.0>"));
  CHECK (prints_as (BYTES (131, 88, 119, 3, 'a', '@', 'b', 0, 0, 0, 7,
                           0, 0, 0, 0, 0, 0, 0, 1),
                    false, 8, NULL));
  /* Nested past the printer's depth: Lisp's.  */
  uint8_t deep[1 + 2 * 40 + 1];
  deep[0] = 131;
  for (int k = 0; k < 40; k++)
    {
      deep[1 + 2 * k] = 104;
      deep[2 + 2 * k] = 1;
    }
  deep[81] = 106;
  CHECK (prints_as (deep, sizeof deep, false, 300, NULL));
}

/* ---------------------------------------------------------------- */
/* What terms cost Emacs */

/* The cost of the external term BUF (version byte first), or
   UINT64_MAX when it is not one good term.  */
static uint64_t
cost_of (const uint8_t *buf, size_t len, bool tagged)
{
  etf_reader r;
  uint8_t *dec;
  etf_cost cost = { 0, 0 };
  bool good = etf_open (&r, buf, len, MAX_SIZE, &dec) == ETF_OK
              && etf_measure_terms (&r, 1, &cost) == ETF_OK
              && etf_expect_end (&r) == ETF_OK;
  free (dec);
  return good ? etf_cost_total (&cost, tagged) : UINT64_MAX;
}

static void
test_cost (void)
{
  /* Sizes: a cons 16, a vector 24 + 8 a slot, a string 40 + its bytes
     and NUL rounded to 8, a hash table 256 + 42 a pair, a bignum 48 +
     8 a limb, a float 8.  Shared objects cost nothing.  */
  CHECK (cost_of (BYTES (131, 97, 7), false) == 0);
  CHECK (cost_of (BYTES (131, 98, 255, 255, 255, 255), false) == 0);
  CHECK (cost_of (BYTES (131, 119, 2, 'o', 'k'), false) == 0);
  CHECK (cost_of (BYTES (131, 106), false) == 0);
  CHECK (cost_of (BYTES (131, 70, 63, 240, 0, 0, 0, 0, 0, 0), false) == 8);
  /* 2^61 - 1 is Emacs's largest fixnum; 2^61 a bignum of one limb.  */
  CHECK (cost_of (BYTES (131, 110, 8, 0, 255, 255, 255, 255, 255, 255, 255,
                         31), false) == 0);
  CHECK (cost_of (BYTES (131, 110, 8, 0, 0, 0, 0, 0, 0, 0, 0, 32), false)
         == 56);
  CHECK (cost_of (BYTES (131, 110, 8, 1, 0, 0, 0, 0, 0, 0, 0, 32), false)
         == 0);
  CHECK (cost_of (BYTES (131, 110, 9, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1), false)
         == 64);
  /* Strings: "abc" 40 + 8; "" is shared.  */
  CHECK (cost_of (BYTES (131, 107, 0, 3, 'a', 'b', 'c'), false) == 48);
  CHECK (cost_of (BYTES (131, 109, 0, 0, 0, 0), false) == 0);
  CHECK (cost_of (BYTES (131, 109, 0, 0, 0, 7, 1, 2, 3, 4, 5, 6, 7), false)
         == 48);
  CHECK (cost_of (BYTES (131, 109, 0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8),
                  false) == 56);
  /* Lossless mode wraps each binary in a vector of 3.  */
  CHECK (cost_of (BYTES (131, 109, 0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8),
                  true) == 56 + 48);
  CHECK (cost_of (BYTES (131, 109, 0, 0, 0, 0), true) == 48);
  CHECK (cost_of (BYTES (131, 77, 0, 0, 0, 1, 3, 0xE0), false) == 56 + 48);
  /* Lists: a cons an element, the tail in the last one.  */
  CHECK (cost_of (BYTES (131, 108, 0, 0, 0, 3, 97, 1, 97, 2, 97, 3, 106),
                  false) == 48);
  CHECK (cost_of (BYTES (131, 108, 0, 0, 0, 1, 97, 1, 97, 2), false) == 16);
  CHECK (cost_of (BYTES (131, 107, 0, 2, 1, 2), false) == 48);
  /* Tuples: {} is shared.  */
  CHECK (cost_of (BYTES (131, 104, 0), false) == 0);
  CHECK (cost_of (BYTES (131, 104, 2, 97, 1, 97, 2), false) == 40);
  /* Maps: every one a hash table, the empty one too.  */
  CHECK (cost_of (BYTES (131, 116, 0, 0, 0, 0), false) == 256);
  CHECK (cost_of (BYTES (131, 116, 0, 0, 0, 1, 97, 1, 109, 0, 0, 0, 1, 'x'),
                  false) == 256 + 42 + 48);
  /* [#{}, #{}, #{}]: 3 conses and 3 tables.  */
  CHECK (cost_of (BYTES (131, 108, 0, 0, 0, 3, 116, 0, 0, 0, 0, 116, 0, 0,
                         0, 0, 116, 0, 0, 0, 0, 106), false)
         == 3 * 16 + 3 * 256);
  /* Pids, ports, references, exports: their vectors, each counted as
     made afresh.  */
  CHECK (cost_of (BYTES (131, 88, 119, 1, 'a', 0, 0, 0, 1, 0, 0, 0, 0, 0, 0,
                         0, 1), false) == 72);
  CHECK (cost_of (BYTES (131, 89, 119, 1, 'a', 0, 0, 0, 1, 0, 0, 0, 1),
                  false) == 64);
  CHECK (cost_of (BYTES (131, 120, 119, 1, 'a', 255, 255, 255, 255, 255, 255,
                         255, 255, 0, 0, 0, 1), false) == 64 + 56);
  CHECK (cost_of (BYTES (131, 90, 0, 3, 119, 1, 'a', 0, 0, 0, 1, 0, 0, 0, 1,
                         0, 0, 0, 2, 0, 0, 0, 3), false) == 64 + 56);
  CHECK (cost_of (BYTES (131, 101, 119, 1, 'a', 0, 0, 0, 1, 1), false)
         == 64);
  CHECK (cost_of (export_map2, sizeof export_map2, false) == 64);
  /* A fun: its vector and its bytes; its free variables are not
     decoded, so they cost nothing, funs among them too.  */
  CHECK (cost_of (fun_adder, sizeof fun_adder, false)
         == 48 + 40 + ((85 + 8) & ~7u));
  CHECK (cost_of (fun_nested, sizeof fun_nested, false)
         == 48 + 40 + ((sizeof fun_nested - 1 + 8) & ~7u));
  /* Bad input has no cost.  */
  CHECK (cost_of (BYTES (131, 116, 0, 0, 0, 1, 97, 1), false) == UINT64_MAX);
}

static const test_case tests[] = {
  TEST (test_small_integer),
  TEST (test_integer),
  TEST (test_small_big),
  TEST (test_large_big),
  TEST (test_old_float),
  TEST (test_new_float),
  TEST (test_atom_latin1),
  TEST (test_atom_utf8),
  TEST (test_nil_and_string),
  TEST (test_list),
  TEST (test_tuple),
  TEST (test_map),
  TEST (test_binary),
  TEST (test_bitstring),
  TEST (test_pid),
  TEST (test_port),
  TEST (test_reference),
  TEST (test_fun),
  TEST (test_copy_fun),
  TEST (test_export),
  TEST (test_compressed),
  TEST (test_atom_cache_ref),
  TEST (test_truncation),
  TEST (test_truncation_names_the_element),
  TEST (test_huge_counts),
  TEST (test_deep_nesting),
  TEST (test_deep_funs),
  TEST (test_framing),
  TEST (test_writer_matches_erlang),
  TEST (test_writer_round_trip),
  TEST (test_put_int),
  TEST (test_put_big),
  TEST (test_put_atom),
  TEST (test_put_float),
  TEST (test_put_limits),
  TEST (test_compress_round_trip),
  TEST (test_print_term),
  TEST (test_cost),
};

int
main (void)
{
  return run_tests (tests, sizeof tests / sizeof tests[0]);
}
