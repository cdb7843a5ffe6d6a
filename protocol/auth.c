/* auth.c — HMAC-SHA256 bearer tokens (see auth.h). */
#include "protocol/auth.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/sha.h"

static int subject_ok(const char *s, size_t n)
{
    if (n == 0 || n > LOOM_AUTH_MAX_SUBJECT)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static int mac_hex(const uint8_t *secret, size_t secret_len, const char *signed_part, size_t n,
                   char hex[LOOM_SHA256_HEX_LEN])
{
    uint8_t mac[LOOM_SHA256_LEN];
    if (loom_hmac_sha256(secret, secret_len, signed_part, n, mac) != 0)
        return LOOM_EINTERNAL;
    loom_hex(mac, sizeof mac, hex);
    return 0;
}

int loom_auth_token_make(const uint8_t *secret, size_t secret_len, const char *subject,
                         int64_t expiry_unix_s, char *out, size_t out_len, loom_err_t *err)
{
    if (!secret || secret_len == 0)
        return loom_err_set(err, LOOM_EINVAL, "empty auth secret");
    if (!subject || !subject_ok(subject, strlen(subject)))
        return loom_err_set(err, LOOM_EINVAL, "bad token subject '%s'", subject ? subject : "");
    if (expiry_unix_s < 0)
        return loom_err_set(err, LOOM_EINVAL, "negative token expiry");
    char head[LOOM_AUTH_TOKEN_MAX];
    int n = snprintf(head, sizeof head, "loom1.%s.%" PRId64, subject, expiry_unix_s);
    char hex[LOOM_SHA256_HEX_LEN];
    if (mac_hex(secret, secret_len, head, (size_t)n, hex) != 0)
        return loom_err_set(err, LOOM_EINTERNAL, "HMAC-SHA256 failed");
    if ((size_t)snprintf(out, out_len, "%s.%s", head, hex) >= out_len)
        return loom_err_set(err, LOOM_EINVAL, "token buffer too small");
    return 0;
}

int loom_auth_token_verify(const uint8_t *secret, size_t secret_len, const char *token,
                           int64_t now_unix_s, char *subject_out, loom_err_t *err)
{
    if (!token)
        return loom_err_set(err, LOOM_EINVAL, "missing auth token");
    size_t len = strlen(token);
    if (len >= LOOM_AUTH_TOKEN_MAX || strncmp(token, "loom1.", 6) != 0)
        return loom_err_set(err, LOOM_EINVAL, "malformed auth token (expected loom1.<subject>.<expiry>.<mac>)");
    const char *subj = token + 6;
    const char *dot1 = strchr(subj, '.');
    const char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    if (!dot1 || !dot2 || !subject_ok(subj, (size_t)(dot1 - subj)))
        return loom_err_set(err, LOOM_EINVAL, "malformed auth token (expected loom1.<subject>.<expiry>.<mac>)");
    int64_t expiry = 0;
    for (const char *p = dot1 + 1; p < dot2; p++) {
        if (*p < '0' || *p > '9' || expiry > (INT64_MAX - 9) / 10)
            return loom_err_set(err, LOOM_EINVAL, "malformed auth token expiry");
        expiry = expiry * 10 + (*p - '0');
    }
    if (dot2 == dot1 + 1)
        return loom_err_set(err, LOOM_EINVAL, "malformed auth token expiry");
    const char *mac = dot2 + 1;
    if (strlen(mac) != 64)
        return loom_err_set(err, LOOM_EINVAL, "malformed auth token signature");
    char hex[LOOM_SHA256_HEX_LEN];
    if (mac_hex(secret, secret_len, token, (size_t)(dot2 - token), hex) != 0)
        return loom_err_set(err, LOOM_EINTERNAL, "HMAC-SHA256 failed");
    if (!loom_digest_equal((const uint8_t *)hex, (const uint8_t *)mac, 64))
        return loom_err_set(err, LOOM_EPROTO, "auth token signature does not match");
    if (expiry != 0 && expiry < now_unix_s)
        return loom_err_set(err, LOOM_ETIMEDOUT, "auth token expired");
    if (subject_out) {
        size_t n = (size_t)(dot1 - subj);
        memcpy(subject_out, subj, n);
        subject_out[n] = '\0';
    }
    return 0;
}

int loom_auth_check(void *ud, const char *token, const loom_msg_t *m, loom_err_t *err)
{
    (void)m;
    const loom_auth_secret_t *s = ud;
    return loom_auth_token_verify(s->key, s->len, token, (int64_t)time(NULL), NULL, err);
}
