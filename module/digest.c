/* digest.c --- challenges and digests for the distribution handshake
   (OpenSSL's libcrypto: its RNG and MD5).  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#include "digest.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

bool
digest_random_bytes (void *out, size_t n)
{
  uint8_t *p = out;
  /* RAND_bytes takes an int count: go in chunks for huge requests.  */
  while (n > 0)
    {
      int chunk = n > INT_MAX ? INT_MAX : (int) n;
      if (RAND_bytes (p, chunk) != 1)
        return false;
      p += chunk;
      n -= (size_t) chunk;
    }
  return true;
}

bool
digest_random_u32 (uint32_t *out)
{
  uint8_t b[4];
  if (!digest_random_bytes (b, sizeof b))
    return false;
  *out = ((uint32_t) b[0] << 24) | ((uint32_t) b[1] << 16)
         | ((uint32_t) b[2] << 8) | (uint32_t) b[3];
  return true;
}

/* MD5 of COOKIE followed by TEXT; false when libcrypto refuses (MD5 can
   be unavailable, for instance under a FIPS-only configuration).  */
static bool
md5_two (const uint8_t *cookie, size_t cookie_len, const char *text,
         size_t text_len, uint8_t out[DIGEST_LEN])
{
  EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
  unsigned int out_len = 0;
  bool ok = ctx
            && EVP_DigestInit_ex (ctx, EVP_md5 (), NULL) == 1
            && EVP_DigestUpdate (ctx, cookie, cookie_len) == 1
            && EVP_DigestUpdate (ctx, text, text_len) == 1
            && EVP_DigestFinal_ex (ctx, out, &out_len) == 1
            && out_len == DIGEST_LEN;
  EVP_MD_CTX_free (ctx);
  return ok;
}

bool
digest_compute (const uint8_t *cookie, size_t cookie_len,
                uint32_t challenge, uint8_t out[DIGEST_LEN])
{
  char text[16];
  int n = snprintf (text, sizeof text, "%" PRIu32, challenge);
  if (n > 0 && md5_two (cookie, cookie_len, text, (size_t) n, out))
    return true;
  /* No digest (MD5 unavailable): leave nothing a peer could predict,
     and let the caller fail the handshake.  */
  memset (out, 0, DIGEST_LEN);
  return false;
}

bool
digest_equal (const uint8_t a[DIGEST_LEN], const uint8_t b[DIGEST_LEN])
{
  return CRYPTO_memcmp (a, b, DIGEST_LEN) == 0;
}

void
digest_wipe (void *p, size_t n)
{
  if (p && n > 0)
    OPENSSL_cleanse (p, n);
}

void
digest_free (void *p, size_t n)
{
  digest_wipe (p, n);
  free (p);
}
