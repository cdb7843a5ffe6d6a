/* http.h — loomd's small HTTP/1.1 endpoint (`loomd --http 127.0.0.1:7480`):
 *
 *   GET /                 the operator dashboard (HTML/JS/CSS embedded from
 *                         orchestrator/dashboard/, no external resources;
 *                         it reads /v1, and /api for history)
 *   GET /static/<file>    the dashboard's assets
 *   GET /metrics          Prometheus text (metrics.h)
 *   GET /healthz          200 {"status":"ok"} or 503 {"status":"degraded",...}
 *   GET /api/summary      live counters from metrics.h (no database needed)
 *   GET /api/<query>[?run=<id>]  rows of a view as JSON (store_pg.h's
 *                         loom_store_pg_query_json); 503 without a database
 *   /v1/...               the HTTP/JSON gateway: REST for every RPC of
 *                         rpc.proto, Watch as server-sent events, and
 *                         /v1/openapi.json (http_api.c, gateway.h,
 *                         docs/HTTP_API.md)
 *
 * Served by libmicrohttpd on threads of its own (a small pool polling all
 * connections), so a slow client or a slow database query never delays
 * dispatch; it only reads metrics (atomics) and the store's reader
 * connection. HTTP/1.1 keep-alive and pipelining, many concurrent
 * connections (up to 4000), idle connections closed after 30 s, a request
 * head bounded by 16 KiB of connection memory (414/431 beyond), a body by
 * 1 MiB (413). Every request passes one admission check (http_admit in
 * http.c) before it is routed; malformed requests get a 4xx or are closed,
 * never a crash. With token secrets (loomd --auth-secret/--keys) every
 * route but /healthz needs "Authorization: Bearer <token>" (401 otherwise,
 * logged) and a non-admin token sees only its tenant's runs in /api
 * (403 for the fleet-wide views); loomd --http-open lifts that. */
#ifndef LOOM_ORCHESTRATOR_HTTP_H
#define LOOM_ORCHESTRATOR_HTTP_H

#include "common/err.h"
#include "orchestrator/http_auth.h"
#include "orchestrator/metrics.h"
#include "orchestrator/store_pg.h"

typedef struct loom_http loom_http_t;

typedef struct loom_http_opts {
    const char *listen;       /* "HOST:PORT"; PORT 0 picks a free one */
    loom_metrics_t *metrics;  /* required; borrowed for the server's lifetime */
    loom_store_pg_t *pg;      /* optional; borrowed; enables /api/<query> */
    loom_http_auth_t auth;    /* bearer tokens (http_auth.h); all-zero = open */
    const char *curve_secret_key; /* secure mode: loomd's key (Z85); the /v1 gateway
                                   * reaches the client port with CURVE (gateway.h) */
} loom_http_opts_t;

/* Binds and starts the server thread. NULL with err set when the address
 * is malformed or cannot be bound. */
loom_http_t *loom_http_new(const loom_http_opts_t *opts, loom_err_t *err);
/* The bound port (useful with PORT 0). */
int loom_http_port(const loom_http_t *h);
/* loomd's client endpoint, once bound: the gateway's /v1 calls go there
 * (until then they answer 503). */
void loom_http_set_rpc_endpoint(loom_http_t *h, const char *endpoint);
/* Stops the thread and closes the socket. Safe on NULL and twice. */
void loom_http_destroy(loom_http_t **ph);

#endif
