/* digest.h --- challenges and digests for the distribution handshake
   (OpenSSL's libcrypto: its RNG and MD5).  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#ifndef DERL_DIGEST_H
#define DERL_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DIGEST_LEN 16

/* Fill OUT with N bytes from a cryptographic RNG; false on failure.  */
bool digest_random_bytes (void *out, size_t n);

/* A random 32-bit challenge; false on failure.  */
bool digest_random_u32 (uint32_t *out);

/* MD5 of the cookie followed by CHALLENGE as unsigned decimal text, as
   the handshake's gen_digest.  False when MD5 is unavailable.  */
bool digest_compute (const uint8_t *cookie, size_t cookie_len,
                     uint32_t challenge, uint8_t out[DIGEST_LEN]);

/* Compare two digests in constant time.  */
bool digest_equal (const uint8_t a[DIGEST_LEN], const uint8_t b[DIGEST_LEN]);

/* Overwrite N bytes at P in a way the compiler may not drop (secrets).  */
void digest_wipe (void *p, size_t n);
/* Wipe the N bytes of P, a secret, then free it (P may be NULL).  */
void digest_free (void *p, size_t n);

#endif /* DERL_DIGEST_H */
