/* http_auth.c — bearer tokens on loomd's HTTP side (see http_auth.h). */
#include "orchestrator/http_auth.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/sha.h"

static void admin(loom_principal_t *who, const char *subject)
{
    memset(who, 0, sizeof *who);
    snprintf(who->subject, sizeof who->subject, "%s", subject);
    strcpy(who->tenant, "default");
    strcpy(who->role, "admin");
}

int loom_http_authorize(const loom_http_auth_t *a, const char *path, const char *authorization,
                        loom_principal_t *who, char *why, size_t why_len)
{
    why[0] = '\0';
    /* open: the probes (/healthz, /readyz: no token) and the dashboard's
     * page and assets, which hold no data (the page asks for a token and
     * sends it on /v1, /api) */
    if (a->open || (!a->keyring && !a->static_token) || strcmp(path, "/healthz") == 0 ||
        strcmp(path, "/readyz") == 0 || strcmp(path, "/") == 0 ||
        strncmp(path, "/static/", 8) == 0) {
        admin(who, "open");
        return 200;
    }
    if (!authorization || strncasecmp(authorization, "Bearer ", 7) != 0) {
        snprintf(why, why_len, "missing bearer token (Authorization: Bearer <token>)");
        return 401;
    }
    const char *tok = authorization + 7;
    tok += strspn(tok, " ");
    if (a->static_token && strlen(tok) == strlen(a->static_token) &&
        loom_digest_equal((const uint8_t *)tok, (const uint8_t *)a->static_token, strlen(tok))) {
        admin(who, "static-token");
        return 200;
    }
    if (!a->keyring) {
        snprintf(why, why_len, "invalid token");
        return 401;
    }
    loom_err_t err;
    loom_err_clear(&err);
    if (loom_auth_check((void *)a->keyring, tok, NULL, who, &err) != 0) {
        snprintf(why, why_len, "%s", err.msg);
        return 401;
    }
    return 200;
}
