/* auth.c — HMAC-SHA256 bearer tokens (see auth.h). */
#include "protocol/auth.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/sha.h"

#define MALFORMED "malformed auth token (expected loom2.<subject>.<tenant>.<role>.<expiry>.<mac>)"

static int name_ok(const char *s, size_t n)
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

static int role_ok(const char *s, size_t n)
{
    return (n == 4 && strncmp(s, "user", 4) == 0) || (n == 5 && strncmp(s, "admin", 5) == 0);
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

static int sign(const uint8_t *secret, size_t secret_len, const char *head, char *out,
                size_t out_len, loom_err_t *err)
{
    char hex[LOOM_SHA256_HEX_LEN];
    if (mac_hex(secret, secret_len, head, strlen(head), hex) != 0)
        return loom_err_set(err, LOOM_EINTERNAL, "HMAC-SHA256 failed");
    if ((size_t)snprintf(out, out_len, "%s.%s", head, hex) >= out_len)
        return loom_err_set(err, LOOM_EINVAL, "token buffer too small");
    return 0;
}

int loom_auth_token_mint(const uint8_t *secret, size_t secret_len, const char *subject,
                         const char *tenant, const char *role, int64_t expiry_unix_s, char *out,
                         size_t out_len, loom_err_t *err)
{
    tenant = tenant ? tenant : LOOM_AUTH_DEFAULT_TENANT;
    role = role ? role : "user";
    if (!secret || secret_len == 0)
        return loom_err_set(err, LOOM_EINVAL, "empty auth secret");
    if (!subject || !name_ok(subject, strlen(subject)))
        return loom_err_set(err, LOOM_EINVAL, "bad token subject '%s'", subject ? subject : "");
    if (!name_ok(tenant, strlen(tenant)))
        return loom_err_set(err, LOOM_EINVAL, "bad token tenant '%s'", tenant);
    if (!role_ok(role, strlen(role)))
        return loom_err_set(err, LOOM_EINVAL, "bad token role '%s' (user or admin)", role);
    if (expiry_unix_s < 0)
        return loom_err_set(err, LOOM_EINVAL, "negative token expiry");
    char head[LOOM_AUTH_TOKEN_MAX];
    snprintf(head, sizeof head, "loom2.%s.%s.%s.%" PRId64, subject, tenant, role, expiry_unix_s);
    return sign(secret, secret_len, head, out, out_len, err);
}

int loom_auth_token_make(const uint8_t *secret, size_t secret_len, const char *subject,
                         int64_t expiry_unix_s, char *out, size_t out_len, loom_err_t *err)
{
    if (!secret || secret_len == 0)
        return loom_err_set(err, LOOM_EINVAL, "empty auth secret");
    if (!subject || !name_ok(subject, strlen(subject)))
        return loom_err_set(err, LOOM_EINVAL, "bad token subject '%s'", subject ? subject : "");
    if (expiry_unix_s < 0)
        return loom_err_set(err, LOOM_EINVAL, "negative token expiry");
    char head[LOOM_AUTH_TOKEN_MAX];
    snprintf(head, sizeof head, "loom1.%s.%" PRId64, subject, expiry_unix_s);
    return sign(secret, secret_len, head, out, out_len, err);
}

int loom_auth_token_check(const uint8_t *secret, size_t secret_len, const char *token,
                          int64_t now_unix_s, loom_principal_t *who, loom_err_t *err)
{
    if (!token)
        return loom_err_set(err, LOOM_EINVAL, "missing auth token");
    size_t len = strlen(token);
    int v2 = strncmp(token, "loom2.", 6) == 0;
    if (len >= LOOM_AUTH_TOKEN_MAX || (!v2 && strncmp(token, "loom1.", 6) != 0))
        return loom_err_set(err, LOOM_EINVAL, MALFORMED);
    /* fields between dots: loom1 has subject, expiry, mac; loom2 subject,
     * tenant, role, expiry, mac */
    const char *f[5];
    size_t fl[5];
    int want = v2 ? 5 : 3, n = 0;
    for (const char *p = token + 6;; n++) {
        if (n == want)
            return loom_err_set(err, LOOM_EINVAL, MALFORMED);
        const char *dot = strchr(p, '.');
        f[n] = p;
        fl[n] = dot ? (size_t)(dot - p) : strlen(p);
        if (!dot) {
            n++;
            break;
        }
        p = dot + 1;
    }
    if (n != want)
        return loom_err_set(err, LOOM_EINVAL, MALFORMED);
    const char *subj = f[0], *exp = f[want - 2], *mac = f[want - 1];
    size_t exp_len = fl[want - 2];
    if (!name_ok(subj, fl[0]) || (v2 && (!name_ok(f[1], fl[1]) || !role_ok(f[2], fl[2]))))
        return loom_err_set(err, LOOM_EINVAL, MALFORMED);
    int64_t expiry = 0;
    for (size_t i = 0; i < exp_len; i++) {
        if (exp[i] < '0' || exp[i] > '9' || expiry > (INT64_MAX - 9) / 10)
            return loom_err_set(err, LOOM_EINVAL, "malformed auth token expiry");
        expiry = expiry * 10 + (exp[i] - '0');
    }
    if (exp_len == 0)
        return loom_err_set(err, LOOM_EINVAL, "malformed auth token expiry");
    if (fl[want - 1] != 64)
        return loom_err_set(err, LOOM_EINVAL, "malformed auth token signature");
    char hex[LOOM_SHA256_HEX_LEN];
    if (mac_hex(secret, secret_len, token, (size_t)(mac - 1 - token), hex) != 0)
        return loom_err_set(err, LOOM_EINTERNAL, "HMAC-SHA256 failed");
    if (!loom_digest_equal((const uint8_t *)hex, (const uint8_t *)mac, 64))
        return loom_err_set(err, LOOM_EPROTO, "auth token signature does not match");
    if (expiry != 0 && expiry < now_unix_s)
        return loom_err_set(err, LOOM_ETIMEDOUT, "auth token expired");
    if (who) {
        memset(who, 0, sizeof *who);
        memcpy(who->subject, subj, fl[0]);
        if (v2) {
            memcpy(who->tenant, f[1], fl[1]);
            memcpy(who->role, f[2], fl[2]);
        } else {
            strcpy(who->tenant, LOOM_AUTH_DEFAULT_TENANT);
            strcpy(who->role, "user");
        }
        who->expiry_unix_s = expiry;
    }
    return 0;
}

int loom_auth_token_verify(const uint8_t *secret, size_t secret_len, const char *token,
                           int64_t now_unix_s, char *subject_out, loom_err_t *err)
{
    loom_principal_t who;
    int rc = loom_auth_token_check(secret, secret_len, token, now_unix_s, &who, err);
    if (rc == 0 && subject_out)
        strcpy(subject_out, who.subject);
    return rc;
}

int loom_auth_keyring_load(loom_auth_keyring_t *ring, const char *path, loom_err_t *err)
{
    memset(ring, 0, sizeof *ring);
    FILE *f = fopen(path, "r");
    if (!f)
        return loom_err_set(err, LOOM_EIO, "cannot read auth secret file %s: %s", path,
                            strerror(errno));
    char line[512];
    int extra = 0;
    while (fgets(line, sizeof line, f)) {
        char *p = line + strspn(line, " \t");
        p[strcspn(p, "\r\n")] = '\0';
        if (!*p || *p == '#')
            continue;
        if (ring->n == 2 || strlen(p) >= sizeof ring->text[0]) {
            extra = 1;
            break;
        }
        strcpy(ring->text[ring->n], p);
        ring->keys[ring->n].key = (const uint8_t *)ring->text[ring->n];
        ring->keys[ring->n].len = strlen(p);
        ring->n++;
    }
    fclose(f);
    if (extra)
        return loom_err_set(err, LOOM_EINVAL,
                            "%s: at most two secrets (the current and the next), one per line, "
                            "each under 256 characters", path);
    if (ring->n == 0)
        return loom_err_set(err, LOOM_EINVAL, "%s: no secret in the file", path);
    return 0;
}

int loom_auth_check(void *ud, const char *token, const loom_msg_t *m, loom_principal_t *who,
                    loom_err_t *err)
{
    (void)m;
    const loom_auth_keyring_t *ring = ud;
    int rc = LOOM_EINVAL;
    int64_t now = (int64_t)time(NULL);
    for (int i = 0; i < ring->n; i++) {
        rc = loom_auth_token_check(ring->keys[i].key, ring->keys[i].len, token, now, who, err);
        if (rc != LOOM_EPROTO) /* valid, or wrong for every secret (malformed, expired) */
            break;
    }
    return rc;
}
