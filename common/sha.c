/* sha.c — see sha.h. Thin wrappers over OpenSSL 3 EVP/HMAC. */
#include "common/sha.h"
#include "common/err.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdlib.h>

struct loom_sha256 {
    EVP_MD_CTX *md;
};

int loom_sha256(const void *data, size_t n, uint8_t out[LOOM_SHA256_LEN])
{
    unsigned int len = 0;
    return EVP_Digest(data, n, out, &len, EVP_sha256(), NULL) == 1 ? 0 : LOOM_EINTERNAL;
}

int loom_sha256_hex(const void *data, size_t n, char out[LOOM_SHA256_HEX_LEN])
{
    uint8_t d[LOOM_SHA256_LEN];
    int rc = loom_sha256(data, n, d);
    if (rc == 0)
        loom_hex(d, sizeof d, out);
    return rc;
}

loom_sha256_t *loom_sha256_new(void)
{
    loom_sha256_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->md = EVP_MD_CTX_new();
    if (!c->md || EVP_DigestInit_ex(c->md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(c->md);
        free(c);
        return NULL;
    }
    return c;
}

int loom_sha256_update(loom_sha256_t *c, const void *data, size_t n)
{
    return EVP_DigestUpdate(c->md, data, n) == 1 ? 0 : LOOM_EINTERNAL;
}

int loom_sha256_final(loom_sha256_t *c, uint8_t out[LOOM_SHA256_LEN])
{
    unsigned int len = 0;
    return EVP_DigestFinal_ex(c->md, out, &len) == 1 ? 0 : LOOM_EINTERNAL;
}

void loom_sha256_destroy(loom_sha256_t **pc)
{
    if (!pc || !*pc)
        return;
    EVP_MD_CTX_free((*pc)->md);
    free(*pc);
    *pc = NULL;
}

int loom_hmac_sha256(const void *key, size_t key_len, const void *data, size_t n,
                     uint8_t out[LOOM_SHA256_LEN])
{
    unsigned int len = 0;
    if (key_len > (size_t)INT32_MAX)
        return LOOM_EINVAL;
    return HMAC(EVP_sha256(), key, (int)key_len, data, n, out, &len) ? 0 : LOOM_EINTERNAL;
}

void loom_hex(const uint8_t *bytes, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * n] = '\0';
}

/* hex digit -> its value + 1 (0: not a hex digit); a table, as Watch
 * decodes stored plans of tens of KiB with it */
static const uint8_t nibble1[256] = {
    ['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5, ['5'] = 6, ['6'] = 7, ['7'] = 8, ['8'] = 9, ['9'] = 10,
    ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
    ['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
};

int loom_unhex(const char *hex, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int hi = nibble1[(uint8_t)hex[2 * i]], lo = hi ? nibble1[(uint8_t)hex[2 * i + 1]] : 0;
        if (!hi || !lo)
            return LOOM_EINVAL;
        out[i] = (uint8_t)((hi - 1) << 4 | (lo - 1));
    }
    return 0;
}

int loom_digest_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}

int loom_random_bytes(void *out, size_t n)
{
    if (n > (size_t)INT32_MAX)
        return LOOM_EINVAL;
    return RAND_bytes(out, (int)n) == 1 ? 0 : LOOM_EINTERNAL;
}
