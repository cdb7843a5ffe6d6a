/* auth.h — signed bearer tokens for the "authorization" metadata entry.
 *
 * A token is "loom1.<subject>.<expiry>.<mac>": subject is [A-Za-z0-9_-]{1,64}
 * (who the token is for, e.g. "cli" or "worker-gpu0"), expiry is Unix
 * seconds (0 = never), and mac is the lowercase hex HMAC-SHA256 of
 * "loom1.<subject>.<expiry>" under a secret shared by loomd and whoever
 * mints tokens (`loom keygen`). A server holding the secret verifies
 * tokens without a database; rotating the secret revokes them all. */
#ifndef LOOM_PROTOCOL_AUTH_H
#define LOOM_PROTOCOL_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "protocol/rpc_server.h"

#define LOOM_AUTH_MAX_SUBJECT 64
#define LOOM_AUTH_TOKEN_MAX 160 /* bytes including NUL */

/* Writes a token into out (LOOM_AUTH_TOKEN_MAX bytes is enough).
 * Returns 0, or LOOM_EINVAL for a bad subject or an empty secret. */
int loom_auth_token_make(const uint8_t *secret, size_t secret_len, const char *subject,
                         int64_t expiry_unix_s, char *out, size_t out_len, loom_err_t *err);

/* Checks a token against the secret at time now_unix_s. On success returns
 * 0 and copies the subject into subject_out (LOOM_AUTH_MAX_SUBJECT + 1
 * bytes; may be NULL). Returns LOOM_EINVAL (malformed), LOOM_EPROTO (bad
 * signature) or LOOM_ETIMEDOUT (expired) with err saying which. */
int loom_auth_token_verify(const uint8_t *secret, size_t secret_len, const char *token,
                           int64_t now_unix_s, char *subject_out, loom_err_t *err);

/* A secret for loom_rpc_server_opts_t.auth: pass a loom_auth_secret_t as
 * auth_ud and loom_auth_check as auth. */
typedef struct loom_auth_secret {
    const uint8_t *key;
    size_t len;
} loom_auth_secret_t;

int loom_auth_check(void *ud, const char *token, const loom_msg_t *m, loom_err_t *err);

#endif
