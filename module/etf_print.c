/* etf_print.c --- Terms printed straight from their bytes, as the trace
   buffers print them (see etf_print.h and derl-trace.el).

   The term is walked with a small fixed stack: a term nested deeper
   than it is left to the Lisp printer, which prints "..." there.  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#include "etf_print.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define PRINT_MAX_DEPTH 32

typedef struct
{
  etf_kind kind;    /* ETF_LIST or ETF_TUPLE */
  uint64_t left;    /* items still to come; a list's tail counts */
  bool first;       /* no element printed yet */
} print_frame;

/* Appending within END, a limit of OUT's length.  */
static bool
put (etf_text *out, size_t end, const char *s, size_t n)
{
  if (n > end - out->len)
    return false;
  memcpy (out->data + out->len, s, n);
  out->len += n;
  return true;
}

static bool
put_str (etf_text *out, size_t end, const char *s)
{
  return put (out, end, s, strlen (s));
}

static bool
put_u64 (etf_text *out, size_t end, uint64_t v)
{
  char num[24];
  int n = snprintf (num, sizeof num, "%" PRIu64, v);
  return n > 0 && put (out, end, num, (size_t) n);
}

/* S between QUOTEs, with a backslash before each QUOTE and backslash
   in it, as Lisp quotes atoms ('...') and prints strings ("...").  */
static bool
put_quoted (etf_text *out, size_t end, const uint8_t *s, size_t n,
            char quote)
{
  if (!put (out, end, &quote, 1))
    return false;
  for (size_t k = 0; k < n; k++)
    {
      char c = (char) s[k];
      if ((c == quote || c == '\\') && !put_str (out, end, "\\"))
        return false;
      if (!put (out, end, &c, 1))
        return false;
    }
  return put (out, end, &quote, 1);
}

/* A name the Lisp printer shows as it is, or with quotes: only plain
   ASCII is printed here.  */
static bool
plain_name (const etf_atom *a)
{
  for (size_t k = 0; k < a->len; k++)
    if (a->name[k] < 0x20 || a->name[k] >= 0x7f)
      return false;
  return true;
}

/* As `derl-trace--atom': the atom nil is Lisp's nil, printed "[]";
   names that are not [a-z][A-Za-z0-9_@]* are quoted.  */
static bool
put_atom (etf_text *out, size_t end, const etf_atom *a)
{
  if (!plain_name (a))
    return false;
  if (a->len == 3 && memcmp (a->name, "nil", 3) == 0)
    return put_str (out, end, "[]");
  bool bare = a->len > 0 && a->name[0] >= 'a' && a->name[0] <= 'z';
  for (size_t k = 1; bare && k < a->len; k++)
    {
      uint8_t c = a->name[k];
      bare = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
             || (c >= '0' && c <= '9') || c == '_' || c == '@';
    }
  if (bare)
    return put (out, end, (const char *) a->name, a->len);
  return put_quoted (out, end, a->name, a->len, '\'');
}

/* As `derl-trace--unprintable-p' on a byte.  */
static bool
unprintable (uint8_t c)
{
  return c < 8 || (c > 13 && c < 32 && c != 27) || (c >= 127 && c < 160);
}

/* As `derl-trace--string' on a unibyte string: quoted when every byte
   is printable ASCII, a list of integers when one is unprintable;
   anything else (newlines, tabs, Latin-1) is left to Lisp.  */
static bool
put_bytes (etf_text *out, size_t end, const uint8_t *s, size_t n)
{
  bool ascii = true, listed = false;
  for (size_t k = 0; k < n; k++)
    {
      if (s[k] < 32 || s[k] > 126)
        ascii = false;
      if (unprintable (s[k]))
        listed = true;
    }
  if (listed)
    {
      if (!put_str (out, end, "["))
        return false;
      for (size_t k = 0; k < n; k++)
        if ((k > 0 && !put_str (out, end, ","))
            || !put_u64 (out, end, s[k]))
          return false;
      return put_str (out, end, "]");
    }
  return ascii && put_quoted (out, end, s, n, '"');
}

/* A term without items of its own.  */
static bool
put_leaf (etf_text *out, size_t end, const etf_item *it, bool tagged)
{
  char num[24];
  switch (it->kind)
    {
    case ETF_INT:
      {
        int n = snprintf (num, sizeof num, "%" PRId64, it->v.i);
        return n > 0 && put (out, end, num, (size_t) n);
      }
    case ETF_ATOM:
      return put_atom (out, end, &it->v.atom);
    case ETF_NIL:
      return put_str (out, end, "[]");
    case ETF_TUPLE:   /* {} */
      return put_str (out, end, "{}");
    case ETF_STRING:
      return put_bytes (out, end, it->v.bytes.data, it->v.bytes.len);
    case ETF_BINARY:
      if (!tagged)
        return put_bytes (out, end, it->v.bytes.data, it->v.bytes.len);
      return put_str (out, end, "<<")
             && put_bytes (out, end, it->v.bytes.data, it->v.bytes.len)
             && put_str (out, end, ">>");
    case ETF_PID:
      return plain_name (&it->v.pid.node)
             && put_str (out, end, "<")
             && put (out, end, (const char *) it->v.pid.node.name,
                     it->v.pid.node.len)
             && put_str (out, end, ".")
             && put_u64 (out, end, it->v.pid.id)
             && put_str (out, end, ".")
             && put_u64 (out, end, it->v.pid.serial)
             && put_str (out, end, ">");
    case ETF_REF:
    case ETF_OLD_REF:
      {
        const etf_atom *node = it->kind == ETF_REF ? &it->v.ref.node
                                                   : &it->v.old_ref.node;
        return plain_name (node) && put_str (out, end, "#Ref<")
               && put (out, end, (const char *) node->name, node->len)
               && put_str (out, end, ">");
      }
    default:
      return false;
    }
}

bool
etf_print_term (etf_reader *r, bool binaries_tagged, size_t limit,
                etf_text *out)
{
  size_t start = out->len;
  size_t end = out->cap - start > limit ? start + limit : out->cap;
  print_frame stack[PRINT_MAX_DEPTH];
  size_t depth = 0;
  for (;;)
    {
      etf_item it;
      if (etf_read_item (r, &it) != ETF_OK)
        goto fail;
      print_frame *top = depth > 0 ? &stack[depth - 1] : NULL;
      if (top && top->kind == ETF_LIST && top->left == 1)
        {
          /* The tail: an improper list is Lisp's to print.  */
          if (it.kind != ETF_NIL)
            goto fail;
        }
      else
        {
          if (top && !top->first && !put_str (out, end, ","))
            goto fail;
          if (top)
            top->first = false;
          uint64_t children = etf_item_children (&it);
          if (children > 0)
            {
              if (depth == PRINT_MAX_DEPTH
                  || (it.kind != ETF_LIST && it.kind != ETF_TUPLE)
                  || !put_str (out, end, it.kind == ETF_LIST ? "[" : "{"))
                goto fail;
              stack[depth++] = (print_frame){ it.kind, children, true };
              continue;
            }
          if (!put_leaf (out, end, &it, binaries_tagged))
            goto fail;
        }
      /* One item done: close what it completes.  */
      while (depth > 0)
        {
          print_frame *f = &stack[depth - 1];
          if (--f->left > 0)
            break;
          if (!put_str (out, end, f->kind == ETF_LIST ? "]" : "}"))
            goto fail;
          depth--;
        }
      if (depth == 0)
        return true;
    }
fail:
  out->len = start;
  return false;
}
