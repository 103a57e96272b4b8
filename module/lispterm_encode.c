/* lispterm_encode.c --- Lisp values -> External Term Format, the term
   mapping of README.org.

   The value is walked with explicit heap stacks, never the C stack, so
   nesting depth is bounded only by `erlext-max-depth'.  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#include "lispterm.h"

#include "elisp.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- */
/* Encoding */

/* Every object made costs collection time later (about 12 ns a byte
   under Emacs's default threshold, more than a module call), so the
   walk makes as few as it can: a list's elements are copied by Lisp a
   chunk at a time, and a map's keys and values all at once, into a
   scratch vector kept for each depth of open lists and maps and reused
   by the next one at that depth.  */
typedef enum
{
  EF_ELEMENTS,  /* a vector's elements from index I; then nothing */
  EF_MAP,       /* a map's keys and values, laid out in SEQ */
  EF_LIST,      /* a list, a chunk at a time in SEQ; then its last cdr */
} eframe_kind;

/* The most elements of a list copied into a vector at once.  */
#define LIST_CHUNK 256

/* The fewest elements of a scratch vector: a depth's first list is
   copied whole when it fits.  */
#define SCRATCH_MIN 4

typedef struct
{
  eframe_kind kind;
  emacs_value seq;
  emacs_value rest;   /* a list's conses not yet copied; at the end its
                         last cdr, nil or a dotted list's tail */
  intmax_t i, n;      /* elements given, of N */
  intmax_t at, filled;  /* a list's next and number of elements in SEQ */
} encode_frame;

typedef struct
{
  emacs_value vector;
  intmax_t size;
} scratch_vector;

/* The atoms of the symbols encoded last.  Terms repeat their atoms
   (record tags, keys, booleans), and a symbol found here by `eq' costs
   no call for its name.  */
#define ATOM_CACHE_SIZE 8
#define ATOM_CACHE_BYTES 64

typedef struct
{
  emacs_value symbol;
  uint8_t len;
  uint8_t bytes[ATOM_CACHE_BYTES];  /* the atom as written */
} cached_atom;

typedef struct
{
  emacs_env *env;
  etf_buf *out;
  const lispterm_options *opt;
  encode_frame *frames;
  size_t nframes, frames_cap;
  cached_atom atoms[ATOM_CACHE_SIZE];
  unsigned natoms, next_atom;
  scratch_vector *scratch;  /* one for each depth of open lists and maps */
  size_t open_scratch, scratch_len, scratch_cap;
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
  emacs_env *env = e->env;
  for (unsigned k = 0; k < e->natoms; k++)
    if (env->eq (env, sym, e->atoms[k].symbol))
      {
        etf_put_bytes (e->out, e->atoms[k].bytes, e->atoms[k].len);
        return true;
      }
  char name[ATOM_BUF];
  size_t len;
  if (!symbol_utf8 (e, sym, name, &len))
    return false;
  size_t start = e->out->len;
  etf_put_atom (e->out, (const uint8_t *) name, len);
  if (e->out->status != ETF_OK)
    return encode_error (e, e->out->error, sym);
  size_t written = e->out->len - start;
  if (written <= ATOM_CACHE_BYTES)
    {
      cached_atom *slot = &e->atoms[e->next_atom];
      e->next_atom = (e->next_atom + 1) % ATOM_CACHE_SIZE;
      if (e->natoms < ATOM_CACHE_SIZE)
        e->natoms++;
      slot->symbol = sym;
      slot->len = (uint8_t) written;
      memcpy (slot->bytes, e->out->data + start, written);
    }
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

/* The bytes of SB as LIST_EXT, written straight into the reserved
   output a stretch of QUIT_CHECK_CHARS at a time, since a big unibyte
   string (8 MiB, say) is that many SMALL_INTEGER_EXTs.  */
static bool
put_byte_list (encoder *e, const string_bytes *sb)
{
  etf_put_list_header (e->out, (uint32_t) sb->len);
  if (!etf_buf_reserve (e->out, 2 * sb->len + 1))
    return true;  /* the caller reports the buffer's error */
  for (size_t i = 0; i < sb->len;)
    {
      if (quit_requested (e, i))
        return false;
      size_t end = sb->len - i > QUIT_CHECK_CHARS
                   ? i + QUIT_CHECK_CHARS : sb->len;
      uint8_t *p = e->out->data + e->out->len;
      for (; i < end; i++)
        {
          *p++ = ETF_TAG_SMALL_INTEGER;
          *p++ = sb->bytes[i];
        }
      e->out->len = (size_t) (p - e->out->data);
    }
  etf_put_nil (e->out);
  return true;
}

/* The characters of SB, CHARS code points, as LIST_EXT.  */
static bool
put_char_list (encoder *e, const string_bytes *sb, size_t chars)
{
  etf_put_list_header (e->out, (uint32_t) chars);
  for (size_t i = 0, n = 0; i < sb->len; n++)
    {
      if (quit_requested (e, n))
        return false;
      etf_put_int (e->out, next_char (sb->bytes, sb->len, &i));
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
    good = raw ? put_byte_list (e, &sb) : put_char_list (e, &sb, chars);
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

/* Element K of tagged vector VEC, which must be of TYPE; else NULL,
   after signalling WRONG_TYPE.  */
static emacs_value
field (encoder *e, emacs_value vec, ptrdiff_t k, emacs_value type,
       const char *wrong_type)
{
  emacs_env *env = e->env;
  emacs_value v = env->vec_get (env, vec, k);
  if (!elisp_ok (env))
    return NULL;
  if (!elisp_eq (env, elisp_type_of (env, v), type))
    {
      encode_error (e, wrong_type, vec);
      return NULL;
    }
  return v;
}

/* An integer field of a tagged vector, within [0, MAX].  */
static bool
field_uint (encoder *e, emacs_value vec, ptrdiff_t k, uint64_t max,
            uint64_t *out)
{
  emacs_env *env = e->env;
  emacs_value v = field (e, vec, k, Qinteger, "field is not an integer");
  if (!v)
    return false;
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
  emacs_value v = field (e, vec, k, Qsymbol, "field is not a symbol");
  if (!v)
    return false;
  if (!symbol_utf8 (e, v, buf, len))
    return false;
  if (elisp_nilp (e->env, v))
    *len = 3, memcpy (buf, "nil", 4);
  return true;
}

/* Bytes of a string field, malloc'd.  */
static uint8_t *
field_bytes (encoder *e, emacs_value vec, ptrdiff_t k, size_t *len)
{
  emacs_value v = field (e, vec, k, Qstring, "field is not a string");
  if (!v)
    return NULL;
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

/* A binary whose string's bytes Emacs copies straight into the output:
   no copy in between, which matters for big binaries.  False, with
   nothing written and no error pending, when the string needs
   converting first (raw bytes in a multibyte string) or is no string
   (the slow path says so): Emacs's copy refuses both.  */
static bool
put_binary_in_place (encoder *e, emacs_value vec)
{
  emacs_env *env = e->env;
  emacs_value v = env->vec_get (env, vec, 2);
  if (!elisp_ok (env))
    {
      env->non_local_exit_clear (env);
      return false;
    }
  etf_buf *out = e->out;
  /* One call for most strings: straight into the room there is.  */
  if (!etf_buf_reserve (out, 5 + 256))
    return true;  /* the buffer's status tells */
  ptrdiff_t room = (ptrdiff_t) (out->cap - out->len - 5);
  ptrdiff_t size = room;
  if (!env->copy_string_contents (env, v, (char *) out->data + out->len + 5,
                                  &size))
    {
      env->non_local_exit_clear (env);
      if (size <= room)
        return false;  /* not a question of room */
      if (!etf_buf_reserve (out, 5 + (size_t) size))
        return true;
      if (!env->copy_string_contents (env, v,
                                      (char *) out->data + out->len + 5,
                                      &size))
        {
          env->non_local_exit_clear (env);
          return false;
        }
    }
  size_t len = (size_t) size - 1;  /* without the NUL */
  if (len > UINT32_MAX)
    return false;  /* the slow path reports it */
  etf_put_u8 (out, ETF_TAG_BINARY);
  etf_put_u32 (out, (uint32_t) len);
  out->len += len;
  return true;
}

static bool
put_tagged_binary (encoder *e, emacs_value vec, emacs_value type)
{
  (void) type;
  if (put_binary_in_place (e, vec))
    return true;
  size_t len;
  uint8_t *bytes = field_bytes (e, vec, 2, &len);
  if (!bytes)
    return false;
  etf_put_binary (e->out, bytes, len);
  free (bytes);
  return true;
}

static bool
put_tagged_bitstring (encoder *e, emacs_value vec, emacs_value type)
{
  (void) type;
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

/* The node name at index 2 of VEC into NODE (ATOM_BUF bytes), then N
   integers from index 3 into V, each at most its MAX.  */
static bool
node_and_integers (encoder *e, emacs_value vec, char *node, size_t *node_len,
                   size_t n, const uint64_t *max, uint64_t *v)
{
  if (!field_symbol (e, vec, 2, node, node_len))
    return false;
  for (size_t k = 0; k < n; k++)
    if (!field_uint (e, vec, 3 + (ptrdiff_t) k, max[k], &v[k]))
      return false;
  return true;
}

/* Pids, ports and old references: a node name, then integers.
   [erl-tag erl-pid NODE ID SERIAL CREATION]
   [erl-tag erl-port NODE ID CREATION]
   [erl-tag erl-ref NODE ID CREATION]  */
static bool
put_tagged_node_ids (encoder *e, emacs_value vec, emacs_value type)
{
  static const uint64_t pid_max[3] = { UINT32_MAX, UINT32_MAX, UINT32_MAX };
  static const uint64_t port_max[2] = { UINT64_MAX, UINT32_MAX };
  static const uint64_t ref_max[2] = { UINT32_MAX, 255 };
  bool pid = elisp_eq (e->env, type, Qerl_pid);
  bool port = elisp_eq (e->env, type, Qerl_port);
  char node[ATOM_BUF];
  size_t len;
  uint64_t v[3];
  if (!node_and_integers (e, vec, node, &len, pid ? 3 : 2,
                          pid ? pid_max : port ? port_max : ref_max, v))
    return false;
  const uint8_t *name = (const uint8_t *) node;
  if (pid)
    etf_put_pid (e->out, name, len, (uint32_t) v[0], (uint32_t) v[1],
                 (uint32_t) v[2]);
  else if (port)
    etf_put_port (e->out, name, len, v[0], (uint32_t) v[1]);
  else
    etf_put_old_ref (e->out, name, len, (uint32_t) v[0], (uint32_t) v[1]);
  return true;
}

/* [erl-tag erl-new-ref NODE CREATION ID-BYTES] */
static bool
put_tagged_new_ref (encoder *e, emacs_value vec, emacs_value type)
{
  (void) type;
  char node[ATOM_BUF];
  size_t node_len, len;
  uint64_t creation;
  static const uint64_t max[1] = { UINT32_MAX };
  uint8_t *id = NULL;
  bool good = node_and_integers (e, vec, node, &node_len, 1, max, &creation)
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
put_tagged_export (encoder *e, emacs_value vec, emacs_value type)
{
  (void) type;
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
put_tagged_fun (encoder *e, emacs_value vec, emacs_value type)
{
  (void) type;
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
  bool (*put) (encoder *e, emacs_value vec, emacs_value type);
} tagged_types[] = {
  { &Qerl_binary, 3, put_tagged_binary },
  { &Qerl_pid, 6, put_tagged_node_ids },
  { &Qerl_port, 5, put_tagged_node_ids },
  { &Qerl_new_ref, 5, put_tagged_new_ref },
  { &Qerl_ref, 5, put_tagged_node_ids },
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
      if (!tagged_types[k].put (e, vec, type))
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
  if (!lispterm_grow ((void **) &e->frames, &e->frames_cap, e->nframes + 1,
             sizeof f))
    return encode_error (e, "out of memory", obj);
  e->frames[e->nframes++] = f;
  return true;
}

#define FUNCTION_REFUSED "a function has no Erlang form"

/* True when LIST, whose first element is HEAD, is an interpreted
   function, (closure ...) or (lambda ...), rather than data.  */
static bool
interpreted_function_p (encoder *e, emacs_value head, emacs_value list)
{
  emacs_env *env = e->env;
  if (!elisp_eq (env, head, Qclosure) && !elisp_eq (env, head, Qlambda))
    return false;
  emacs_value fn = elisp_call1 (env, Qerlext_interpreted_function_p, list);
  return elisp_ok (env) && !elisp_nilp (env, fn);
}

/* The scratch vector of the next depth of open lists and maps, made
   longer (a new one) when it has fewer than NEED elements; NULL after a
   signal.  */
static emacs_value
scratch_for (encoder *e, intmax_t need, emacs_value obj)
{
  emacs_env *env = e->env;
  if (!lispterm_grow ((void **) &e->scratch, &e->scratch_cap,
                      e->open_scratch + 1, sizeof *e->scratch))
    {
      encode_error (e, "out of memory", obj);
      return NULL;
    }
  if (e->open_scratch == e->scratch_len)
    e->scratch[e->scratch_len++] = (scratch_vector){ NULL, 0 };
  scratch_vector *s = &e->scratch[e->open_scratch];
  if (s->size < need || !s->vector)
    {
      if (need < SCRATCH_MIN)
        need = SCRATCH_MIN;
      emacs_value args[2] = { env->make_integer (env, need), Qnil };
      emacs_value v = elisp_call (env, Qmake_vector, 2, args);
      if (!elisp_ok (env))
        return NULL;
      *s = (scratch_vector){ v, need };
    }
  return s->vector;
}

/* Open a frame that holds a scratch vector.  */
static bool
push_scratch_frame (encoder *e, encode_frame f, emacs_value obj)
{
  if (!push_frame (e, f, obj))
    return false;
  e->open_scratch++;
  return true;
}

/* Copy the next chunk of F's list into its vector.  */
static bool
next_chunk (encoder *e, encode_frame *f)
{
  emacs_env *env = e->env;
  intmax_t left = f->n - f->i;
  f->filled = left < LIST_CHUNK ? left : LIST_CHUNK;
  f->at = 0;
  emacs_value args[3] = { f->rest, f->seq, env->make_integer (env, f->filled) };
  f->rest = elisp_call (env, Qerlext_list_chunk, 3, args);
  return elisp_ok (env);
}

/* Write the header of the list LIST, whose frame F holds its first
   chunk, and open F.  A proper list that is an interpreted function
   is refused.  */
static bool
open_list (encoder *e, emacs_value list, encode_frame f, bool proper)
{
  emacs_env *env = e->env;
  if (proper && interpreted_function_p (e, env->vec_get (env, f.seq, 0), list))
    return encode_error (e, FUNCTION_REFUSED, list);
  etf_put_list_header (e->out, (uint32_t) f.n);
  return push_scratch_frame (e, f, list);
}

/* A short proper list whole, in one call: its elements (at most
   LIST_CHUNK) into the scratch vector of its depth, and its length.
   *DONE false, with nothing written, for any other list.  */
static bool
put_short_list (encoder *e, emacs_value list, bool *done)
{
  emacs_env *env = e->env;
  *done = false;
  emacs_value chunk = scratch_for (e, 0, list);
  if (!chunk)
    return false;
  intmax_t size = e->scratch[e->open_scratch].size;
  emacs_value args[3] = { list, chunk,
                          env->make_integer (env, size < LIST_CHUNK
                                                  ? size : LIST_CHUNK) };
  emacs_value n = elisp_call (env, Qerlext_list_start, 3, args);
  if (!elisp_ok (env) || elisp_nilp (env, n))
    return elisp_ok (env);
  intmax_t len = env->extract_integer (env, n);
  if (!elisp_ok (env))
    return false;
  *done = true;
  return open_list (e, list, (encode_frame){ .kind = EF_LIST, .seq = chunk,
                                             .rest = Qnil, .n = len,
                                             .filled = len },
                    true);
}

static bool
put_list (encoder *e, emacs_value list)
{
  emacs_env *env = e->env;
  bool done;
  if (!put_short_list (e, list, &done))
    return false;
  if (done)
    return true;
  emacs_value n = elisp_call (env, Qproper_list_p, 1, &list);
  if (!elisp_ok (env))
    return false;
  intmax_t len;
  emacs_value tail = NULL;
  if (env->is_not_nil (env, n))
    len = env->extract_integer (env, n);
  else
    {
      /* Dotted or circular: count the conses, then look past the last.  */
      emacs_value count = elisp_call (env, Qsafe_length, 1, &list);
      len = env->extract_integer (env, count);
      tail = list;
      for (intmax_t k = 0; k < len && elisp_ok (env); k++)
        tail = elisp_call (env, Qcdr, 1, &tail);
      if (!elisp_ok (env))
        return false;
      if (env->eq (env, env->type_of (env, tail), Qcons))
        return encode_error (e, "circular list", list);
    }
  if (len > UINT32_MAX)
    return encode_error (e, "list too long", list);
  emacs_value chunk = scratch_for (e, len < LIST_CHUNK ? len : LIST_CHUNK,
                                   list);
  if (!chunk)
    return false;
  encode_frame f = { .kind = EF_LIST, .seq = chunk, .rest = list,
                     .n = len };
  if (!next_chunk (e, &f))
    return false;
  return open_list (e, list, f, !tail);
}

/* A hash table as a map: its keys and values are laid out by Lisp (no
   module call reaches a table's entries) in a scratch vector.  */
static bool
put_map (encoder *e, emacs_value table)
{
  emacs_env *env = e->env;
  emacs_value count = elisp_call1 (env, Qhash_table_count, table);
  if (!elisp_ok (env))
    return false;
  intmax_t pairs = env->extract_integer (env, count);
  if (pairs > UINT32_MAX)
    return encode_error (e, "map too large", table);
  etf_put_map_header (e->out, (uint32_t) pairs);
  if (pairs == 0)
    return true;
  emacs_value into = scratch_for (e, 2 * pairs, table);
  if (!into)
    return false;
  emacs_value args[2] = { table, into };
  elisp_call (env, Qerlext_hash_table_flatten, 2, args);
  if (!elisp_ok (env))
    return false;
  return push_scratch_frame (e, (encode_frame){ .kind = EF_MAP, .seq = into,
                                                .n = 2 * pairs },
                             table);
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
      return push_frame (e, (encode_frame){ .kind = EF_ELEMENTS, .seq = v,
                                            .n = size }, v);
    }
  if (env->eq (env, type, Qfloat))
    {
      etf_put_float (e->out, env->extract_float (env, v));
      if (e->out->status != ETF_OK)
        return encode_error (e, e->out->error, v);
      return true;
    }
  if (env->eq (env, type, Qhash_table))
    return put_map (e, v);
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
      if (f->kind != EF_LIST)
        return env->vec_get (env, f->seq, (ptrdiff_t) f->i++);
      if (f->at == f->filled && !next_chunk (e, f))
        return NULL;
      f->i++;
      return env->vec_get (env, f->seq, (ptrdiff_t) f->at++);
    }
  if (f->kind == EF_LIST)
    {
      if (env->is_not_nil (env, f->rest))
        *tail = f->rest;
      else
        etf_put_nil (e->out);
    }
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
          if (e.frames[e.nframes - 1].kind != EF_ELEMENTS)
            e.open_scratch--;
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
  free (e.scratch);
  return good && elisp_ok (env);
}
