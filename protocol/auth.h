/* auth.h — signed bearer tokens for the "authorization" metadata entry.
 *
 *   loom2.<subject>.<tenant>.<role>.<expiry>.<mac>
 *
 * subject and tenant are [A-Za-z0-9_-]{1,64} (who, and whose runs), role is
 * "user" (sees its tenant's runs) or "admin" (sees every tenant), expiry is
 * Unix seconds (0 = never), and mac is the lowercase hex HMAC-SHA256 of
 * everything before the last dot under a secret shared by loomd and
 * whoever mints tokens (`loom keygen --token`). The older
 * "loom1.<subject>.<expiry>.<mac>" still verifies, as tenant "default",
 * role "user". A server holding the secret verifies tokens without a
 * database; a keyring of two secrets lets tokens of the old secret work
 * while new ones are minted with the next (rotation). */
#ifndef LOOM_PROTOCOL_AUTH_H
#define LOOM_PROTOCOL_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "protocol/rpc_server.h"

#define LOOM_AUTH_MAX_SUBJECT 64
#define LOOM_AUTH_TOKEN_MAX 320 /* bytes including NUL */
#define LOOM_AUTH_DEFAULT_TENANT "default"

/* Mints a loom2 token into out (LOOM_AUTH_TOKEN_MAX bytes is enough).
 * tenant NULL = "default", role NULL = "user". Returns 0, or LOOM_EINVAL
 * for a bad subject/tenant/role or an empty secret. */
int loom_auth_token_mint(const uint8_t *secret, size_t secret_len, const char *subject,
                         const char *tenant, const char *role, int64_t expiry_unix_s, char *out,
                         size_t out_len, loom_err_t *err);
/* Mints a loom1 token (subject and expiry only). */
int loom_auth_token_make(const uint8_t *secret, size_t secret_len, const char *subject,
                         int64_t expiry_unix_s, char *out, size_t out_len, loom_err_t *err);

/* Checks a token against the secret at time now_unix_s and fills who
 * (may be NULL). Returns 0, or LOOM_EINVAL (malformed), LOOM_EPROTO (bad
 * signature) or LOOM_ETIMEDOUT (expired) with err saying which. */
int loom_auth_token_check(const uint8_t *secret, size_t secret_len, const char *token,
                          int64_t now_unix_s, loom_principal_t *who, loom_err_t *err);
/* The same, copying only the subject (LOOM_AUTH_MAX_SUBJECT + 1 bytes). */
int loom_auth_token_verify(const uint8_t *secret, size_t secret_len, const char *token,
                           int64_t now_unix_s, char *subject_out, loom_err_t *err);

/* One secret, or two during a rotation (both verify). */
typedef struct loom_auth_secret {
    const uint8_t *key;
    size_t len;
} loom_auth_secret_t;

typedef struct loom_auth_keyring {
    loom_auth_secret_t keys[2];
    int n;
    char text[2][256]; /* storage when loaded from a file */
} loom_auth_keyring_t;

/* Reads a secret file: one secret per line (at most two; '#' comments and
 * blank lines skipped), used as text exactly as `loom keygen` prints it.
 * Returns 0 or LOOM_EIO / LOOM_EINVAL with err naming the file. */
int loom_auth_keyring_load(loom_auth_keyring_t *ring, const char *path, loom_err_t *err);

/* loom_rpc_server_opts_t.auth: pass a loom_auth_keyring_t as auth_ud.
 * Accepts a token signed by any secret of the ring. */
int loom_auth_check(void *ud, const char *token, const loom_msg_t *m, loom_principal_t *who,
                    loom_err_t *err);

#endif
