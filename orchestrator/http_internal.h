/* http_internal.h — what http.c (server, admission, dashboard routes) and
 * http_api.c (the /v1 REST gateway and its server-sent events) share. */
#ifndef LOOM_ORCHESTRATOR_HTTP_INTERNAL_H
#define LOOM_ORCHESTRATOR_HTTP_INTERNAL_H

#include <microhttpd.h>
#include <pthread.h>

#include "common/buf.h"
#include "orchestrator/gateway.h"
#include "orchestrator/http.h"

typedef struct http_watch http_watch_t;

struct loom_http {
    struct MHD_Daemon *d;
    int fd, port;
    loom_metrics_t *metrics;
    loom_store_pg_t *pg;
    loom_gateway_t *gw;
    loom_http_auth_t auth;     /* bearer tokens (http_auth.h) */
    /* Open /v1/runs/{id}/events streams (http_api.c), for keep-alive comments. */
    pthread_mutex_t watch_mu;
    http_watch_t *watches;
};

/* One request, kept by libmicrohttpd between calls of the access handler. */
typedef struct http_req {
    loom_http_t *h;
    struct MHD_Connection *conn;
    const char *method, *path; /* owned by libmicrohttpd for the request's lifetime */
    int head;                  /* HEAD: libmicrohttpd drops the body itself */
    int refused;               /* a reply was queued before the body arrived */
    loom_buf_t body;           /* the request body (bounded) */
    loom_principal_t who;      /* set by http_admit (http_auth.h) */
    char why[300];             /* why http_admit refused it */
    /* A request answered later (through the gateway): the connection is
     * suspended until the answer is ready, then resumed. */
    int waiting;
    unsigned answer_code;
    loom_buf_t answer;
    http_watch_t *watch; /* an events stream (http_api.c) */
} http_req_t;

/* Queue a response (copied). */
enum MHD_Result http_reply(http_req_t *rq, unsigned code, const char *type, const void *data,
                           size_t len);
/* Same with a buffer, which is freed. */
enum MHD_Result http_reply_buf(http_req_t *rq, unsigned code, const char *type, loom_buf_t *b);
/* {"error": msg} */
enum MHD_Result http_reply_error(http_req_t *rq, unsigned code, const char *msg);

/* http_api.c: whether it serves this path, and serving it. Called for the
 * first time when the body is complete; again after a resume. */
int http_api_owns(const char *path);
enum MHD_Result http_api_route(http_req_t *rq);
/* Frees a request's API state when libmicrohttpd is done with it. */
void http_api_request_done(http_req_t *rq);
/* Runs on the gateway thread about once a second: keep-alive comments. */
void http_api_tick(void *h);
/* OpenAPI document (embedded from protocol/openapi.json). */
extern const char http_openapi_json[];
extern const size_t http_openapi_json_len;

#endif
