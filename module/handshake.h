/* handshake.h --- the distribution handshake as a state machine, bytes
   in / bytes out, no sockets.

   The initiator side: version 6 ('N' messages, 64-bit flags, 32-bit
   creation), or version 5 ('n' name, then the 'c' complement when the
   peer answers with a version-6 challenge) for peers whose EPMD entry
   says their highest version is 5.

   The acceptor side: takes an 'N' name, or an 'n' name from a node that
   speaks version 6 too (it sends the 'c' complement after our 'N'
   challenge).  Once the peer's name is known, hs_feed returns
   HS_DECIDE: the caller, who knows the other connections, answers with
   hs_accept_status.  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#ifndef DERL_HANDSHAKE_H
#define DERL_HANDSHAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "etf.h"

/* Longest node name (alive@host) we handle, plus one.  */
#define HS_NAME_ROOM 1024

/* Capability flags.  */
#define DFLAG_PUBLISHED            0x1ULL
#define DFLAG_ATOM_CACHE           0x2ULL
#define DFLAG_EXTENDED_REFERENCES  0x4ULL
#define DFLAG_DIST_MONITOR         0x8ULL
#define DFLAG_FUN_TAGS             0x10ULL
#define DFLAG_DIST_MONITOR_NAME    0x20ULL
#define DFLAG_HIDDEN_ATOM_CACHE    0x40ULL
#define DFLAG_NEW_FUN_TAGS         0x80ULL
#define DFLAG_EXTENDED_PIDS_PORTS  0x100ULL
#define DFLAG_EXPORT_PTR_TAG       0x200ULL
#define DFLAG_BIT_BINARIES         0x400ULL
#define DFLAG_NEW_FLOATS           0x800ULL
#define DFLAG_UNICODE_IO           0x1000ULL
#define DFLAG_DIST_HDR_ATOM_CACHE  0x2000ULL
#define DFLAG_SMALL_ATOM_TAGS      0x4000ULL
#define DFLAG_UTF8_ATOMS           0x10000ULL
#define DFLAG_MAP_TAG              0x20000ULL
#define DFLAG_BIG_CREATION         0x40000ULL
#define DFLAG_SEND_SENDER          0x80000ULL
#define DFLAG_BIG_SEQTRACE_LABELS  0x100000ULL
#define DFLAG_EXIT_PAYLOAD         0x400000ULL
#define DFLAG_FRAGMENTS            0x800000ULL
#define DFLAG_HANDSHAKE_23         0x1000000ULL
#define DFLAG_UNLINK_ID            0x2000000ULL
#define DFLAG_SPAWN                (1ULL << 32)
#define DFLAG_NAME_ME              (1ULL << 33)
#define DFLAG_V4_NC                (1ULL << 34)
#define DFLAG_ALIAS                (1ULL << 35)
#define DFLAG_MANDATORY_25_DIGEST  (1ULL << 36)

/* What we offer: all OTP 26 requires, plus monitors, SEND_SENDER,
   payload exits, spawn, aliases, and the atom cache in distribution
   headers (we still send pass-through frames).  Not published unless
   Emacs listens as a published node: a hidden node, as Distel's, that
   does not join the cluster's mesh.  */
#define HS_OUR_FLAGS                                                     \
  (DFLAG_EXTENDED_REFERENCES | DFLAG_DIST_MONITOR | DFLAG_FUN_TAGS      \
   | DFLAG_DIST_MONITOR_NAME | DFLAG_NEW_FUN_TAGS                       \
   | DFLAG_EXTENDED_PIDS_PORTS | DFLAG_EXPORT_PTR_TAG                   \
   | DFLAG_BIT_BINARIES | DFLAG_NEW_FLOATS | DFLAG_UNICODE_IO           \
   | DFLAG_SMALL_ATOM_TAGS | DFLAG_UTF8_ATOMS | DFLAG_MAP_TAG            \
   | DFLAG_DIST_HDR_ATOM_CACHE                                          \
   | DFLAG_BIG_CREATION | DFLAG_SEND_SENDER | DFLAG_BIG_SEQTRACE_LABELS   \
   | DFLAG_EXIT_PAYLOAD | DFLAG_HANDSHAKE_23 | DFLAG_UNLINK_ID           \
   | DFLAG_SPAWN | DFLAG_V4_NC | DFLAG_ALIAS | DFLAG_MANDATORY_25_DIGEST)

#define HS_FLAGS(published) \
  (HS_OUR_FLAGS | ((published) ? DFLAG_PUBLISHED : 0))

/* What we require of a peer: what OTP 23+ always offers.  */
#define HS_PEER_REQUIRED                                                 \
  (DFLAG_EXTENDED_REFERENCES | DFLAG_FUN_TAGS | DFLAG_NEW_FUN_TAGS     \
   | DFLAG_EXTENDED_PIDS_PORTS | DFLAG_EXPORT_PTR_TAG                 \
   | DFLAG_BIT_BINARIES | DFLAG_NEW_FLOATS | DFLAG_UTF8_ATOMS          \
   | DFLAG_MAP_TAG | DFLAG_BIG_CREATION | DFLAG_HANDSHAKE_23)

typedef enum
{
  HS_CONTINUE,  /* feed more bytes (and send what is in OUT) */
  HS_DONE,      /* connected: the peer's fields are filled in */
  HS_FAILED,    /* see KIND and ERROR */
  HS_DECIDE,    /* acceptor: the peer's name is known; call
                   hs_accept_status, then feed on */
} hs_status;

/* The acceptor's answer to a peer's name, after the name comparison
   rule of a simultaneous connect.  */
typedef enum
{
  HS_ACCEPT_OK,            /* "ok": no other connection to the node */
  HS_ACCEPT_SIMULTANEOUS,  /* "ok_simultaneous": we were dialling it too,
                              and give our attempt up for this one */
  HS_ACCEPT_NOK,           /* "nok": we were dialling it too, and keep
                              our attempt */
  HS_ACCEPT_NOT_ALLOWED,   /* "not_allowed" */
  HS_ACCEPT_ALIVE,         /* "alive": we hold a connection to the node;
                              it answers whether that one is dead */
} hs_accept_decision;

typedef enum
{
  HS_ERR_NONE,
  HS_ERR_PROTOCOL,   /* malformed or unexpected message */
  HS_ERR_REFUSED,    /* status nok, not_allowed, or alive we gave up */
  HS_ERR_AUTH,       /* the peer's digest is wrong */
  HS_ERR_FLAGS,      /* the peer lacks a capability we need */
  HS_ERR_NAME_IN_USE,  /* the node is connected to another node of our
                          name (status alive, answered false) */
  HS_ERR_WRONG_PEER, /* the peer's name is not the one dialled */
  HS_ERR_SIMULTANEOUS, /* status nok: the node is connecting to us, and
                          that connection is to be the one */
} hs_error_kind;

typedef enum
{
  HS_AWAIT_STATUS,
  HS_AWAIT_CHALLENGE,
  HS_AWAIT_ACK,
  /* Acceptor */
  HS_AWAIT_NAME,
  HS_AWAIT_DECISION,
  HS_AWAIT_ALIVE_ANSWER,
  HS_AWAIT_COMPLEMENT,
  HS_AWAIT_REPLY,
  HS_STATE_DONE,
  HS_STATE_FAILED,
} hs_state_id;

typedef struct
{
  hs_state_id state;
  /* Ours.  */
  uint8_t name[HS_NAME_ROOM];
  size_t name_len;
  uint8_t *cookie;           /* malloc'd copy, wiped by hs_free */
  size_t cookie_len;
  uint64_t flags;
  uint32_t creation;
  bool sent_old_name;        /* version 5 'n' */
  uint32_t our_challenge;
  /* The answer to status alive (the node holds a connection from our
     name): true only when that connection is known to be our own, now
     gone; otherwise it belongs to someone else using our name.  */
  bool replace_old;
  /* The node we dialled (empty: any), which the challenge must name.  */
  uint8_t expected_peer[HS_NAME_ROOM];
  size_t expected_peer_len;
  /* Acceptor: the peer sent the old 'n' name (a 'c' complement
     follows our challenge).  */
  bool peer_sent_old_name;
  /* Acceptor: the peer answered "true" to status alive; the old
     connection must go.  */
  bool replaces_old;
  /* The peer's, once known.  */
  uint64_t peer_flags;
  uint32_t peer_creation;
  uint8_t peer_name[HS_NAME_ROOM];
  size_t peer_name_len;
  /* Bytes to send to the peer: the caller drains OUT.  */
  etf_buf out;
  /* Why it failed: a static string, never containing the cookie.  */
  hs_error_kind kind;
  const char *error;
} hs_state;

/* Start the initiator: fills OUT with our name message.  NAME is our full
   node name (alive@host).  PEER_HIGHEST is the highest version EPMD
   reported for the peer (5 or 6).  False (with ERROR set) when NAME is
   too long or the RNG fails.  */
bool hs_init_initiator (hs_state *hs, const uint8_t *name, size_t name_len,
                        const uint8_t *cookie, size_t cookie_len,
                        uint64_t flags, uint32_t creation, int peer_highest);

/* Start the acceptor: waits for the peer's name.  NAME, COOKIE, FLAGS
   and CREATION as for hs_init_initiator.  */
bool hs_init_acceptor (hs_state *hs, const uint8_t *name, size_t name_len,
                       const uint8_t *cookie, size_t cookie_len,
                       uint64_t flags, uint32_t creation);

/* The acceptor's answer after HS_DECIDE: queues the status (and the
   challenge when the handshake goes on).  HS_CONTINUE, or HS_FAILED for
   NOK and NOT_ALLOWED (whose status the caller still sends).  */
hs_status hs_accept_status (hs_state *hs, hs_accept_decision decision);

/* Does FLAGS, a peer's capabilities, hold all that we require?  */
bool hs_peer_flags_ok (uint64_t flags);

/* Refuse a peer whose challenge names another node than NAME.  False
   when NAME is empty or too long.  */
bool hs_expect_peer (hs_state *hs, const uint8_t *name, size_t len);

/* Feed bytes received from the peer.  Consumes whole 2-byte-length
   handshake messages only and reports in *CONSUMED how many bytes it
   took; after HS_DONE any further bytes belong to the connection.  */
hs_status hs_feed (hs_state *hs, const uint8_t *data, size_t len,
                   size_t *consumed);

/* The peer closed the connection: the reason, in terms of the state we
   were in (closing after our challenge reply means a cookie mismatch).  */
hs_status hs_peer_closed (hs_state *hs);

void hs_free (hs_state *hs);

#endif /* DERL_HANDSHAKE_H */
