/* http_auth.h — who may read loomd's HTTP side (dashboard, /api/..., /metrics):
 * the same bearer tokens as the RPC port (protocol/auth.h),
 * sent as "Authorization: Bearer <token>". /healthz and /readyz stay open (load
 * balancers probe it), and so do the dashboard's page and assets (/ and
 * /static/...: code, no data; a browser cannot send the header when it
 * navigates, so the page asks for the token and sends it itself). loomd --http-open opens everything, as before
 * tokens existed; without token secrets (plain mode) the side is open too.
 *
 * A pure function of the request line and header: the HTTP server (http.c)
 * calls it before routing, answers 401 with "WWW-Authenticate: Bearer"
 * when it says so, and scopes /api queries to who->tenant unless
 * who->role is "admin". */
#ifndef LOOM_ORCHESTRATOR_HTTP_AUTH_H
#define LOOM_ORCHESTRATOR_HTTP_AUTH_H

#include "protocol/auth.h"

typedef struct loom_http_auth {
    const loom_auth_keyring_t *keyring; /* NULL: no tokens required */
    const char *static_token;           /* loomd --auth-token: accepted as admin */
    int open;                           /* --http-open: no checks at all */
} loom_http_auth_t;

/* Returns 200 to serve the request (who filled: the token's principal, or
 * an admin when no check applies) or 401 (why says what was wrong, for the
 * body and the log). path is the request path, authorization the header's
 * value (NULL when absent). */
int loom_http_authorize(const loom_http_auth_t *a, const char *path, const char *authorization,
                        loom_principal_t *who, char *why, size_t why_len);

#endif
