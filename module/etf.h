/* etf.h --- Erlang External Term Format: bounds-checked reader, growable writer.

   Pure C, no Emacs.  The reader hands out one item at a time in pre-order;
   containers only announce how many items follow, so walking a term needs
   no recursion.  Every length read from the input is checked against the
   bytes that remain before it is trusted.  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#ifndef DERL_ETF_H
#define DERL_ETF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Tags, as on the wire.  */
enum
{
  ETF_VERSION = 131,
  ETF_TAG_NEW_FLOAT = 70,
  ETF_TAG_BIT_BINARY = 77,
  ETF_TAG_COMPRESSED = 80,
  ETF_TAG_ATOM_CACHE_REF = 82,
  ETF_TAG_NEW_PID = 88,
  ETF_TAG_NEW_PORT = 89,
  ETF_TAG_NEWER_REFERENCE = 90,
  ETF_TAG_SMALL_INTEGER = 97,
  ETF_TAG_INTEGER = 98,
  ETF_TAG_FLOAT = 99,
  ETF_TAG_ATOM = 100,
  ETF_TAG_REFERENCE = 101,
  ETF_TAG_PORT = 102,
  ETF_TAG_PID = 103,
  ETF_TAG_SMALL_TUPLE = 104,
  ETF_TAG_LARGE_TUPLE = 105,
  ETF_TAG_NIL = 106,
  ETF_TAG_STRING = 107,
  ETF_TAG_LIST = 108,
  ETF_TAG_BINARY = 109,
  ETF_TAG_SMALL_BIG = 110,
  ETF_TAG_LARGE_BIG = 111,
  ETF_TAG_NEW_FUN = 112,
  ETF_TAG_EXPORT = 113,
  ETF_TAG_NEW_REFERENCE = 114,
  ETF_TAG_SMALL_ATOM = 115,
  ETF_TAG_MAP = 116,
  ETF_TAG_ATOM_UTF8 = 118,
  ETF_TAG_SMALL_ATOM_UTF8 = 119,
  ETF_TAG_V4_PORT = 120,
};

/* Erlang's own limits.  */
#define ETF_MAX_ATOM_CHARS 255
#define ETF_MAX_REF_WORDS 5

/* Big-endian integers from bytes the caller has checked are there.  */
static inline uint16_t
etf_get_u16 (const uint8_t *p)
{
  return (uint16_t) ((p[0] << 8) | p[1]);
}

static inline uint32_t
etf_get_u32 (const uint8_t *p)
{
  return ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16)
         | ((uint32_t) p[2] << 8) | (uint32_t) p[3];
}

static inline uint64_t
etf_get_u64 (const uint8_t *p)
{
  return ((uint64_t) etf_get_u32 (p) << 32) | etf_get_u32 (p + 4);
}

/* Result codes.  Anything but ETF_OK leaves a reason and an offset.  */
typedef enum
{
  ETF_OK = 0,
  ETF_ERROR,      /* malformed input, or a value the writer refuses */
  ETF_NO_MEMORY,  /* allocation failed */
} etf_status;

/* An atom's name, pointing into the input.  LATIN1 names come from
   ATOM_EXT and SMALL_ATOM_EXT; all others are UTF-8 (already checked).  */
typedef struct
{
  const uint8_t *name;
  size_t len;
  bool latin1;
} etf_atom;

typedef enum
{
  ETF_INT,        /* v.i */
  ETF_BIG,        /* v.big: does not fit in int64_t */
  ETF_FLOAT,      /* v.f, always finite */
  ETF_ATOM,       /* v.atom */
  ETF_NIL,        /* [] */
  ETF_STRING,     /* v.bytes: STRING_EXT */
  ETF_LIST,       /* v.arity elements follow, then the tail */
  ETF_TUPLE,      /* v.arity elements follow */
  ETF_MAP,        /* v.arity key/value pairs follow: 2 * arity items */
  ETF_BINARY,     /* v.bytes */
  ETF_BITSTRING,  /* v.bytes, v.bytes.bits used bits in the last byte */
  ETF_PID,        /* v.pid */
  ETF_PORT,       /* v.port */
  ETF_REF,        /* v.ref: NEW_ and NEWER_REFERENCE_EXT */
  ETF_OLD_REF,    /* v.old_ref: REFERENCE_EXT */
  ETF_FUN,        /* v.fun: the header; v.fun.num_free terms follow */
  ETF_EXPORT,     /* v.export */
} etf_kind;

typedef struct
{
  etf_kind kind;
  size_t offset;  /* of the tag byte */
  union
  {
    int64_t i;
    double f;
    struct { int negative; const uint8_t *digits; size_t n; } big; /* LE */
    etf_atom atom;
    struct { const uint8_t *data; size_t len; unsigned bits; } bytes;
    uint32_t arity;
    struct { etf_atom node; uint32_t id, serial, creation; } pid;
    struct { etf_atom node; uint64_t id; uint32_t creation; } port;
    struct { etf_atom node; uint32_t creation; const uint8_t *id;
             size_t words; } ref;  /* id: WORDS big-endian 32-bit words */
    struct { etf_atom node; uint32_t id, creation; } old_ref;
    /* The whole encoded fun, tag included; its free variables follow it
       in the item stream and END is where they must stop.  */
    struct { const uint8_t *data; size_t len; uint32_t num_free;
             size_t end; } fun;
    struct { etf_atom module, function; unsigned arity; } export;
  } v;
} etf_item;

typedef struct
{
  const uint8_t *buf;
  size_t len;
  size_t pos;
  /* Atoms named by ATOM_CACHE_REF, from the distribution header; NULL
     outside one.  */
  const etf_atom *atom_refs;
  size_t atom_ref_count;
  /* Why and where reading stopped.  */
  const char *error;
  size_t error_offset;
} etf_reader;

void etf_reader_init (etf_reader *r, const uint8_t *buf, size_t len);

/* Read the next item.  */
etf_status etf_read_item (etf_reader *r, etf_item *item);

/* How many items follow a container item in its own structure (a
   list's tail counts); 0 for anything else.  */
uint64_t etf_item_children (const etf_item *item);

/* Read COUNT whole terms, checking all of them, building nothing.  */
etf_status etf_skip_terms (etf_reader *r, uint64_t count);

/* What a term costs Emacs once lispterm_decode.c has made Lisp values
   of it: an estimate in bytes of the objects built (conses, vectors,
   strings, hash tables, floats, bignums), sizes as a 64-bit Emacs
   allocates them.  Atoms, fixnums, [] and the empty tuple and binary
   cost nothing (shared); every pid is counted as a fresh vector, though
   the decoder may share one.  In lossless mode each binary is also
   wrapped in a vector: BINARIES counts them.  The wire can be 60 times
   smaller than this (a list of empty maps), so limits on memory must
   count this and not bytes.  */
typedef struct
{
  uint64_t bytes;
  uint64_t binaries;
} etf_cost;

/* Sizes, calibrated against `garbage-collect' on Emacs 28 (64-bit).  */
#define ETF_COST_CONS 16          /* a list element */
#define ETF_COST_FLOAT 8          /* in blocks of floats */
#define ETF_COST_VECTOR 24        /* a vector's header, then 8 a slot */
#define ETF_COST_STRING 40        /* header and data link, then the bytes */
#define ETF_COST_HASH 256         /* a hash table, then per pair: */
#define ETF_COST_HASH_PAIR 42     /* key and value, hash, next, index */
#define ETF_COST_BIGNUM 48        /* header and GMP's block, then limbs */

/* The cost of a vector of N slots and of a unibyte string of N bytes.  */
static inline uint64_t
etf_cost_vector (uint64_t n)
{
  return n ? ETF_COST_VECTOR + 8 * n : 0;
}

static inline uint64_t
etf_cost_string (uint64_t n)
{
  return n ? ETF_COST_STRING + ((n + 8) & ~(uint64_t) 7) : 0;
}

/* The cost of IT itself: a container's own cells, not its items'.  */
uint64_t etf_item_cost (const etf_item *it);

/* As etf_skip_terms, adding what the terms cost to *COST.  */
etf_status etf_measure_terms (etf_reader *r, uint64_t count, etf_cost *cost);

/* The bytes of COST, in lossless mode when BINARIES_TAGGED.  */
static inline uint64_t
etf_cost_total (const etf_cost *cost, bool binaries_tagged)
{
  return cost->bytes
         + (binaries_tagged ? cost->binaries * etf_cost_vector (3) : 0);
}

/* Check the free variables that follow FUN (an ETF_FUN item just read)
   and that they end where its size says.  */
etf_status etf_skip_fun_body (etf_reader *r, const etf_item *fun);

/* Check that the reader stands exactly at its end.  */
etf_status etf_expect_end (etf_reader *r);

/* Record an error; returns ETF_ERROR.  */
etf_status etf_fail (etf_reader *r, size_t offset, const char *reason);

/* A whole external term: the version byte, then a term or a compressed
   term.  A compressed term is inflated into DECOMPRESSED (malloc'd, to be
   freed by the caller) and the reader reads that instead, provided its
   declared size is at most MAX_SIZE.  */
etf_status etf_open (etf_reader *r, const uint8_t *buf, size_t len,
                     size_t max_size, uint8_t **decompressed);

#ifdef DERL_TESTING
/* Check a complete external term (version byte included), as etf_open
   followed by etf_skip_terms of one term and etf_expect_end.  For the
   tests (built with DERL_TESTING), not in the module.  */
etf_status etf_validate (const uint8_t *buf, size_t len, size_t max_size,
                         const char **reason, size_t *offset);
#endif

/* Convert a Latin-1 name to UTF-8; OUT needs 2 * LEN bytes.  Returns the
   length written.  */
size_t etf_latin1_to_utf8 (const uint8_t *in, size_t len, uint8_t *out);

/* Number of characters in valid UTF-8 IN, or -1 when IN is not valid
   UTF-8 (overlong forms, surrogates and values past U+10FFFF refused).  */
long etf_utf8_chars (const uint8_t *in, size_t len);

/* ---------------------------------------------------------------- */
/* Writer: a growable buffer.  Errors stick: after a failure every put is
   a no-op and the status and reason tell what went wrong first.  */

typedef struct
{
  uint8_t *data;
  size_t len;
  size_t cap;
  etf_status status;
  const char *error;
} etf_buf;

void etf_buf_init (etf_buf *b);
void etf_buf_free (etf_buf *b);
/* Make room for N more bytes; false (and status set) on failure.  */
bool etf_buf_reserve (etf_buf *b, size_t n);
void etf_buf_fail (etf_buf *b, etf_status status, const char *reason);

void etf_put_bytes (etf_buf *b, const void *data, size_t n);
void etf_put_u8 (etf_buf *b, uint8_t v);
void etf_put_u16 (etf_buf *b, uint16_t v);
void etf_put_u32 (etf_buf *b, uint32_t v);
void etf_put_u64 (etf_buf *b, uint64_t v);

void etf_put_version (etf_buf *b);
void etf_put_int (etf_buf *b, int64_t v);
/* DIGITS: N little-endian bytes of the magnitude.  */
void etf_put_big (etf_buf *b, bool negative, const uint8_t *digits, size_t n);
void etf_put_float (etf_buf *b, double v);      /* refuses NaN, infinities */
/* UTF-8 NAME, at most 255 characters.  */
void etf_put_atom (etf_buf *b, const uint8_t *name, size_t len);
void etf_put_nil (etf_buf *b);
/* STRING_EXT: LEN bytes, each a character below 256; LEN <= 65535.  */
void etf_put_string (etf_buf *b, const uint8_t *bytes, size_t len);
void etf_put_list_header (etf_buf *b, uint32_t arity);
void etf_put_tuple_header (etf_buf *b, uint32_t arity);
void etf_put_map_header (etf_buf *b, uint32_t arity);
void etf_put_binary (etf_buf *b, const uint8_t *data, size_t len);
/* BITS: used bits in the last byte, 1..8; LEN > 0.  */
void etf_put_bitstring (etf_buf *b, const uint8_t *data, size_t len,
                        unsigned bits);
void etf_put_pid (etf_buf *b, const uint8_t *node, size_t node_len,
                  uint32_t id, uint32_t serial, uint32_t creation);
void etf_put_port (etf_buf *b, const uint8_t *node, size_t node_len,
                   uint64_t id, uint32_t creation);
/* ID: WORDS big-endian 32-bit words, 1..5 of them.  */
void etf_put_ref (etf_buf *b, const uint8_t *node, size_t node_len,
                  uint32_t creation, const uint8_t *id, size_t words);
void etf_put_old_ref (etf_buf *b, const uint8_t *node, size_t node_len,
                      uint32_t id, uint32_t creation);
void etf_put_export (etf_buf *b, const uint8_t *module, size_t module_len,
                     const uint8_t *function, size_t function_len,
                     unsigned arity);

/* Read the free variables that follow FUN (an ETF_FUN item just read),
   as etf_skip_fun_body does, and append to OUT the whole fun with
   every atom that R names through a distribution header's atom cache
   written out, and the sizes of the funs that grew made to match: the
   bytes then mean the same outside this frame.  */
etf_status etf_copy_fun (etf_reader *r, const etf_item *fun, etf_buf *out);

/* Replace the term after the version byte at START with its COMPRESSED
   form, when that is smaller.  */
void etf_compress (etf_buf *b, size_t start, int level);

/* Overwrite a 32-bit big-endian value at OFFSET (back-patching counts). */
void etf_patch_u32 (etf_buf *b, size_t offset, uint32_t v);

#endif /* DERL_ETF_H */
