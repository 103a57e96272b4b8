/* epmd.c --- EPMD requests and responses, bytes in / bytes out.

   Wire formats from Erlang's erl_dist_protocol guide: every request is a
   2-byte big-endian length then the request; responses carry no outer
   length, so each parser works out how long its response is from the
   fields it has seen and asks for more bytes until it has them all.  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#include "epmd.h"

#include <string.h>

#include "etf.h"

enum
{
  EPMD_ALIVE2_X_RESP = 118,
  EPMD_PORT2_RESP = 119,
  EPMD_ALIVE2_REQ = 120,
  EPMD_ALIVE2_RESP = 121,
  EPMD_PORT_PLEASE2_REQ = 122,
  EPMD_NAMES_REQ = 110,
};

/* What we register as: a normal node over TCP/IPv4, versions 5 to 6.  */
enum
{
  EPMD_NODE_NORMAL = 77,
  EPMD_PROTO_TCP4 = 0,
  EPMD_HIGHEST = 6,
  EPMD_LOWEST = 5,
};

/* ---------------------------------------------------------------- */
/* Small helpers */

static inline uint8_t *
put_u16 (uint8_t *p, uint16_t v)
{
  p[0] = (uint8_t) (v >> 8);
  p[1] = (uint8_t) v;
  return p + 2;
}

static epmd_result
bad (const char **reason, const char *why)
{
  if (reason)
    *reason = why;
  return EPMD_BAD_RESPONSE;
}

static void
set_used (size_t *used, size_t n)
{
  if (used)
    *used = n;
}

static bool
name_ok (const char *name, size_t name_len)
{
  return name && name_len > 0 && name_len <= EPMD_MAX_NAME;
}

/* ---------------------------------------------------------------- */
/* Requests */

size_t
epmd_port_please_request (const char *name, size_t name_len,
                          uint8_t *out, size_t cap)
{
  size_t body = 1 + name_len;
  if (!name_ok (name, name_len) || !out || cap < 2 + body)
    return 0;
  uint8_t *p = put_u16 (out, (uint16_t) body);
  *p++ = EPMD_PORT_PLEASE2_REQ;
  memcpy (p, name, name_len);
  return 2 + body;
}

size_t
epmd_names_request (uint8_t *out, size_t cap)
{
  if (!out || cap < 3)
    return 0;
  uint8_t *p = put_u16 (out, 1);
  *p = EPMD_NAMES_REQ;
  return 3;
}

size_t
epmd_alive2_request (uint16_t port, const char *name, size_t name_len,
                     uint8_t *out, size_t cap)
{
  /* Tag, port, type, protocol, two versions, name length, name, extra
     length (no extra).  */
  size_t body = 1 + 2 + 1 + 1 + 2 + 2 + 2 + name_len + 2;
  if (!name_ok (name, name_len) || !out || cap < 2 + body)
    return 0;
  uint8_t *p = put_u16 (out, (uint16_t) body);
  *p++ = EPMD_ALIVE2_REQ;
  p = put_u16 (p, port);
  *p++ = EPMD_NODE_NORMAL;
  *p++ = EPMD_PROTO_TCP4;
  p = put_u16 (p, EPMD_HIGHEST);
  p = put_u16 (p, EPMD_LOWEST);
  p = put_u16 (p, (uint16_t) name_len);
  memcpy (p, name, name_len);
  p += name_len;
  put_u16 (p, 0);
  return 2 + body;
}

/* ---------------------------------------------------------------- */
/* PORT2_RESP */

/* Fixed part of a successful PORT2_RESP: tag, result, port, node type,
   protocol, highest and lowest version, name length.  */
#define PORT2_FIXED 12

epmd_result
epmd_parse_port2_resp (const uint8_t *buf, size_t len,
                       epmd_node_info *info, size_t *used,
                       const char **reason)
{
  set_used (used, 0);
  if (len < 1)
    return EPMD_INCOMPLETE;
  if (buf[0] != EPMD_PORT2_RESP)
    return bad (reason, "EPMD sent something other than PORT2_RESP");
  if (len < 2)
    return EPMD_INCOMPLETE;
  if (buf[1] != 0)
    {
      /* Only [119, Result] is sent on failure.  */
      set_used (used, 2);
      if (reason)
        *reason = "the name is not registered with EPMD";
      return EPMD_NOT_REGISTERED;
    }
  if (len < PORT2_FIXED)
    return EPMD_INCOMPLETE;
  size_t name_len = etf_get_u16 (buf + 10);
  if (name_len == 0)
    return bad (reason, "EPMD sent an empty node name");
  if (name_len > EPMD_MAX_NAME)
    return bad (reason, "EPMD sent a node name longer than 255 bytes");
  /* The name, then the 2-byte length of the extra field.  */
  size_t extra_at = PORT2_FIXED + name_len;
  if (len < extra_at + 2)
    return EPMD_INCOMPLETE;
  size_t extra_len = etf_get_u16 (buf + extra_at);
  size_t total = extra_at + 2 + extra_len;
  if (len < total)
    return EPMD_INCOMPLETE;

  info->port = etf_get_u16 (buf + 2);
  if (info->port == 0)
    return bad (reason, "EPMD gave port 0 for the node");
  info->node_type = buf[4];
  info->protocol = buf[5];
  info->highest_version = etf_get_u16 (buf + 6);
  info->lowest_version = etf_get_u16 (buf + 8);
  memcpy (info->name, buf + PORT2_FIXED, name_len);
  info->name[name_len] = '\0';
  info->name_len = name_len;
  set_used (used, total);
  return EPMD_OK;
}

/* ---------------------------------------------------------------- */
/* ALIVE2_X_RESP and ALIVE2_RESP */

epmd_result
epmd_parse_alive2_resp (const uint8_t *buf, size_t len,
                        uint32_t *creation, size_t *used,
                        const char **reason)
{
  set_used (used, 0);
  if (len < 1)
    return EPMD_INCOMPLETE;
  size_t total;
  if (buf[0] == EPMD_ALIVE2_X_RESP)
    total = 1 + 1 + 4;
  else if (buf[0] == EPMD_ALIVE2_RESP)
    total = 1 + 1 + 2;
  else
    return bad (reason, "EPMD sent something other than ALIVE2_RESP");
  if (len < total)
    return EPMD_INCOMPLETE;
  set_used (used, total);
  if (buf[1] != 0)
    {
      if (reason)
        *reason = "EPMD refused to register the name (is it taken?)";
      return EPMD_REFUSED;
    }
  *creation = buf[0] == EPMD_ALIVE2_X_RESP ? etf_get_u32 (buf + 2)
                                           : etf_get_u16 (buf + 2);
  return EPMD_OK;
}

/* ---------------------------------------------------------------- */
/* NAMES_RESP */

/* Parse "name NAME at port PORT" (LINE without its newline).  */
static epmd_result
parse_names_line (const uint8_t *line, size_t len, epmd_name_entry *entry,
                  const char **reason)
{
  static const char prefix[] = "name ";
  static const char middle[] = " at port ";
  const size_t plen = sizeof prefix - 1, mlen = sizeof middle - 1;

  if (len < plen || memcmp (line, prefix, plen) != 0)
    return bad (reason, "EPMD names line does not start with \"name \"");
  /* The last " at port " ends the name, in case a name holds one.  */
  size_t m = len;
  for (size_t i = len >= mlen ? len - mlen + 1 : 0; i-- > plen;)
    if (memcmp (line + i, middle, mlen) == 0)
      {
        m = i;
        break;
      }
  if (m == len)
    return bad (reason, "EPMD names line lacks \" at port \"");
  size_t name_len = m - plen;
  if (name_len == 0 || name_len > EPMD_MAX_NAME)
    return bad (reason, "EPMD names line has a bad name length");

  const uint8_t *digits = line + m + mlen;
  size_t ndigits = len - (m + mlen);
  if (ndigits == 0 || ndigits > 5)
    return bad (reason, "EPMD names line has a bad port");
  uint32_t port = 0;
  for (size_t i = 0; i < ndigits; i++)
    {
      if (digits[i] < '0' || digits[i] > '9')
        return bad (reason, "EPMD names line has a bad port");
      port = port * 10 + (uint32_t) (digits[i] - '0');
    }
  if (port > 65535)
    return bad (reason, "EPMD names line has a bad port");

  memcpy (entry->name, line + plen, name_len);
  entry->name[name_len] = '\0';
  entry->name_len = name_len;
  entry->port = (uint16_t) port;
  return EPMD_OK;
}

epmd_result
epmd_names_next (const uint8_t *buf, size_t len, size_t *pos,
                 epmd_name_entry *entry, const char **reason)
{
  /* The 4-byte port of EPMD itself comes first; skip it.  */
  if (*pos == 0)
    {
      if (len < 4)
        return bad (reason, "EPMD names response shorter than its header");
      *pos = 4;
    }
  if (*pos < 4 || *pos > len)
    return bad (reason, "EPMD names position out of range");
  if (*pos == len)
    return EPMD_INCOMPLETE;

  const uint8_t *line = buf + *pos;
  const uint8_t *nl = memchr (line, '\n', len - *pos);
  if (!nl)
    return bad (reason, "EPMD names line without a newline");
  size_t line_len = (size_t) (nl - line);
  epmd_result r = parse_names_line (line, line_len, entry, reason);
  if (r == EPMD_OK)
    *pos += line_len + 1;
  return r;
}
