/* sha.h — SHA-256, HMAC-SHA256, hex and randomness through OpenSSL.
 * Used for content-addressed artifacts, workflow hashes and auth tokens. */
#ifndef LOOM_COMMON_SHA_H
#define LOOM_COMMON_SHA_H

#include <stddef.h>
#include <stdint.h>

#define LOOM_SHA256_LEN 32
#define LOOM_SHA256_HEX_LEN 65 /* 64 hex digits + NUL */

typedef struct loom_sha256 loom_sha256_t; /* incremental context */

/* One-shot digest. Returns 0 or LOOM_EINTERNAL. */
int loom_sha256(const void *data, size_t n, uint8_t out[LOOM_SHA256_LEN]);
/* One-shot digest as lowercase hex into out[65]. */
int loom_sha256_hex(const void *data, size_t n, char out[LOOM_SHA256_HEX_LEN]);

loom_sha256_t *loom_sha256_new(void);
int loom_sha256_update(loom_sha256_t *c, const void *data, size_t n);
/* Writes the digest; the context may not be updated afterwards. */
int loom_sha256_final(loom_sha256_t *c, uint8_t out[LOOM_SHA256_LEN]);
void loom_sha256_destroy(loom_sha256_t **pc);

int loom_hmac_sha256(const void *key, size_t key_len, const void *data, size_t n,
                     uint8_t out[LOOM_SHA256_LEN]);

/* Lowercase hex of n bytes into out (2n+1 bytes). */
void loom_hex(const uint8_t *bytes, size_t n, char *out);
/* Parses 2n hex digits into n bytes; returns 0 or LOOM_EINVAL. */
int loom_unhex(const char *hex, uint8_t *out, size_t n);
/* Constant-time comparison; 1 when equal. */
int loom_digest_equal(const uint8_t *a, const uint8_t *b, size_t n);
/* Cryptographically secure random bytes; returns 0 or LOOM_EINTERNAL. */
int loom_random_bytes(void *out, size_t n);

#endif
