/* epmd.h --- EPMD requests and responses, bytes in / bytes out.

   Requests are complete (with their 2-byte length).  Parsers take what
   has arrived so far and say EPMD_INCOMPLETE until a whole response is
   there; every length is checked against the bytes present.  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#ifndef DERL_EPMD_H
#define DERL_EPMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EPMD_DEFAULT_PORT 4369
#define EPMD_MAX_NAME 255   /* bytes of the alive name */

typedef enum
{
  EPMD_INCOMPLETE,      /* need more bytes */
  EPMD_OK,
  EPMD_NOT_REGISTERED,  /* PORT_PLEASE2: no such name */
  EPMD_REFUSED,         /* ALIVE2: the name is taken or refused */
  EPMD_BAD_RESPONSE,    /* malformed; *REASON says how */
} epmd_result;

typedef struct
{
  uint16_t port;
  uint8_t node_type;     /* 77 normal, 72 hidden */
  uint8_t protocol;      /* 0: TCP/IPv4 */
  uint16_t highest_version;
  uint16_t lowest_version;
  char name[EPMD_MAX_NAME + 1];  /* NUL-terminated */
  size_t name_len;
} epmd_node_info;

/* Each writes a request into OUT (CAP bytes) and returns its length, or
   0 when NAME is empty, too long or OUT too small.  */
size_t epmd_port_please_request (const char *name, size_t name_len,
                                 uint8_t *out, size_t cap);
size_t epmd_names_request (uint8_t *out, size_t cap);
/* A normal (visible) node on PORT speaking versions 5 to 6.  */
size_t epmd_alive2_request (uint16_t port, const char *name, size_t name_len,
                            uint8_t *out, size_t cap);

/* PORT2_RESP.  On EPMD_OK fills INFO and sets *USED to the bytes taken.  */
epmd_result epmd_parse_port2_resp (const uint8_t *buf, size_t len,
                                   epmd_node_info *info, size_t *used,
                                   const char **reason);

/* ALIVE2_X_RESP (32-bit creation) or ALIVE2_RESP (16-bit creation).  */
epmd_result epmd_parse_alive2_resp (const uint8_t *buf, size_t len,
                                    uint32_t *creation, size_t *used,
                                    const char **reason);

/* NAMES_RESP: 4 bytes of EPMD's port, then lines "name NAME at port
   PORT\n" until EPMD closes.  Call on the complete response (after the
   close).  Iterate with *POS starting at 0: each EPMD_OK fills one entry;
   EPMD_INCOMPLETE means no more entries; EPMD_BAD_RESPONSE a malformed
   line or header.  */
typedef struct
{
  char name[EPMD_MAX_NAME + 1];
  size_t name_len;
  uint16_t port;
} epmd_name_entry;

epmd_result epmd_names_next (const uint8_t *buf, size_t len, size_t *pos,
                             epmd_name_entry *entry, const char **reason);

#endif /* DERL_EPMD_H */
