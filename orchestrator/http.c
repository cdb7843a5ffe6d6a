/* http.c — loomd's HTTP endpoint on libmicrohttpd. See http.h.
 *
 * libmicrohttpd owns the sockets: HTTP/1.1 parsing, keep-alive, pipelining,
 * chunked bodies, timeouts and connection limits. This file binds the
 * listening socket (so `PORT 0` and error messages stay ours), admits each
 * request in one place (http_admit) and routes it. */
#include "orchestrator/http.h"
#include "orchestrator/http_internal.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"

/* assets[]: {name, content type, data, length}, generated from
 * orchestrator/dashboard/ by orchestrator/dashboard/embed.sh. */
#include "dashboard_assets.inc"

/* Limits. A request head must fit the per-connection memory pool (MHD
 * answers 414/431 otherwise); a request body is bounded separately. */
#define CONN_MEMORY (16 * 1024)
#define MAX_BODY (1 << 20)
#define MAX_CONNECTIONS 4000
#define IDLE_TIMEOUT_S 30
#define LISTEN_BACKLOG 1024
#define POOL_THREADS 2

static int parse_listen(const char *s, char *host, size_t hn, char *port, size_t pn) {
    const char *colon = s ? strrchr(s, ':') : NULL;
    if (!colon || colon == s || !colon[1] || (size_t)(colon - s) >= hn || strlen(colon + 1) >= pn)
        return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = 0;
    strcpy(port, colon + 1);
    for (const char *p = port; *p; p++)
        if (*p < '0' || *p > '9') return -1;
    return atoi(port) <= 65535 ? 0 : -1;
}

/* ---- responses ---------------------------------------------------------- */

enum MHD_Result http_reply(http_req_t *rq, unsigned code, const char *type, const void *data,
                           size_t len) {
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (code == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"loomd\"");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    enum MHD_Result ok = MHD_queue_response(rq->conn, code, r);
    MHD_destroy_response(r);
    return ok;
}

enum MHD_Result http_reply_buf(http_req_t *rq, unsigned code, const char *type, loom_buf_t *b) {
    enum MHD_Result ok = http_reply(rq, code, type, b->data ? b->data : "", b->len);
    loom_buf_free(b);
    return ok;
}

enum MHD_Result http_reply_error(http_req_t *rq, unsigned code, const char *msg) {
    loom_buf_t b = LOOM_BUF_INIT;
    loom_buf_puts(&b, "{\"error\":");
    loom_buf_json_str(&b, msg, strlen(msg));
    loom_buf_puts(&b, "}\n");
    return http_reply_buf(rq, code, "application/json", &b);
}

/* ---- admission ----------------------------------------------------------- */

/* The one place a request is let in or turned away, called once per request
 * as soon as its head has arrived (before any body is read). Returns 0 to
 * admit, or an HTTP status with *why set. Authentication (bearer tokens)
 * belongs here so every route, present and future, is covered. */
static unsigned http_admit(http_req_t *rq, const char **why) {
    if (rq->path[0] != '/') {
        *why = "malformed request target";
        return MHD_HTTP_BAD_REQUEST;
    }
    int post = strcmp(rq->method, "POST") == 0;
    if (strcmp(rq->method, "GET") != 0 && !rq->head && !(post && http_api_owns(rq->path))) {
        *why = http_api_owns(rq->path) ? "only GET, HEAD and POST" : "only GET and HEAD";
        return MHD_HTTP_METHOD_NOT_ALLOWED;
    }
    const char *len = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
                                                  MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (len && strtoull(len, NULL, 10) > MAX_BODY) {
        *why = "request body too large (1 MiB at most)";
        return MHD_HTTP_CONTENT_TOO_LARGE;
    }
    const char *bearer = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, "Authorization");
    if (loom_http_authorize(&rq->h->auth, rq->path, bearer, &rq->who, rq->why, sizeof rq->why) != 200) {
        LOOM_WARN("http", "msg=\"request refused: 401\" path=\"%s\" why=\"%s\"", rq->path, rq->why);
        *why = rq->why;
        return MHD_HTTP_UNAUTHORIZED;
    }
    return 0;
}

/* ---- routes -------------------------------------------------------------- */

/* ?run=<id>: 1 and the id, 0 when absent, -1 when not a plain token. */
static int query_run(http_req_t *rq, char *out, size_t n) {
    const char *v = MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, "run");
    out[0] = 0;
    if (!v) return 0;
    size_t len = strlen(v);
    if (len == 0 || len >= n) return -1;
    for (size_t i = 0; i < len; i++) {
        char c = v[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || c == ':'))
            return -1;
    }
    memcpy(out, v, len + 1);
    return 1;
}

static enum MHD_Result route_healthz(http_req_t *rq) {
    char why[128];
    int ok = loom_metrics_healthy(rq->h->metrics, why, sizeof why);
    loom_buf_t b = LOOM_BUF_INIT;
    loom_buf_printf(&b, "{\"status\":\"%s\"", ok ? "ok" : "degraded");
    if (!ok) {
        loom_buf_puts(&b, ",\"reason\":");
        loom_buf_json_str(&b, why, strlen(why));
    }
    loom_buf_puts(&b, "}\n");
    return http_reply_buf(rq, ok ? 200 : 503, "application/json", &b);
}

/* Readiness: 200 on the leader, 503 on a standby (failover: load balancers
 * and Kubernetes Services send traffic only to the leader). Liveness stays
 * /healthz. */
static enum MHD_Result route_readyz(http_req_t *rq) {
    int leader = loom_metrics_role(rq->h->metrics) == LOOM_METRICS_LEADER;
    loom_buf_t b = LOOM_BUF_INIT;
    loom_buf_printf(&b, "{\"status\":\"%s\",\"role\":\"%s\"}\n", leader ? "ok" : "standby",
                    leader ? "leader" : "standby");
    return http_reply_buf(rq, leader ? 200 : 503, "application/json", &b);
}

static enum MHD_Result route_metrics(http_req_t *rq) {
    loom_buf_t b = LOOM_BUF_INIT;
    if (loom_metrics_render(rq->h->metrics, &b) != 0) {
        loom_buf_free(&b);
        return http_reply_error(rq, 500, "out of memory");
    }
    return http_reply_buf(rq, 200, "text/plain; version=0.0.4; charset=utf-8", &b);
}

static enum MHD_Result route_summary(http_req_t *rq) {
    loom_buf_t b = LOOM_BUF_INIT;
    loom_metrics_summary_json(rq->h->metrics, &b);
    return http_reply_buf(rq, 200, "application/json", &b);
}

/* /api/<view query>[?run=<id>]: rows of a PostgreSQL view. */
static enum MHD_Result route_view(http_req_t *rq) {
    if (!rq->h->pg) return http_reply_error(rq, 503, "no database: start loomd with --db to see history");
    char run[128];
    int has = query_run(rq, run, sizeof run);
    if (has < 0) return http_reply_error(rq, 400, "bad run id");
    loom_buf_t b = LOOM_BUF_INIT;
    loom_err_t err = {0};
    const char *tenant = strcmp(rq->who.role, "admin") == 0 ? NULL : rq->who.tenant;
    int rc = loom_store_pg_query_json_tenant(rq->h->pg, rq->path + 5, has ? run : NULL, tenant, &b,
                                             &err);
    if (rc == 0) return http_reply_buf(rq, 200, "application/json", &b);
    loom_buf_free(&b);
    return http_reply_error(rq, rc == LOOM_ENOTFOUND ? 404 : rc == LOOM_EINVAL ? 400
                                : rc == LOOM_EPROTO ? 403 : 503, err.msg);
}

static enum MHD_Result route_asset(http_req_t *rq) {
    const char *name = strcmp(rq->path, "/") == 0                ? "index.html"
                       : strncmp(rq->path, "/static/", 8) == 0 ? rq->path + 8
                                                                 : NULL;
    for (size_t i = 0; name && i < sizeof assets / sizeof assets[0]; i++)
        if (strcmp(assets[i].name, name) == 0)
            return http_reply(rq, 200, assets[i].type, assets[i].data, assets[i].len);
    return http_reply_error(rq, 404, "not found");
}

static enum MHD_Result route(http_req_t *rq) {
    const char *p = rq->path;
    if (http_api_owns(p)) return http_api_route(rq);
    if (strcmp(p, "/healthz") == 0) return route_healthz(rq);
    if (strcmp(p, "/readyz") == 0) return route_readyz(rq);
    if (strcmp(p, "/metrics") == 0) return route_metrics(rq);
    if (strcmp(p, "/api/summary") == 0) return route_summary(rq);
    if (strncmp(p, "/api/", 5) == 0) return route_view(rq);
    return route_asset(rq);
}

/* ---- libmicrohttpd callbacks --------------------------------------------- */

/* Called with the head (upload_size 0, *req_cls NULL), then once per body
 * chunk, then once more with *upload_size 0 when the body is complete, and
 * again after each resume of a connection suspended while the gateway
 * works on the request (http_api.c). */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **req_cls) {
    (void)version;
    http_req_t *rq = *req_cls;
    if (!rq) {
        if (!(rq = calloc(1, sizeof *rq))) return MHD_NO;
        *req_cls = rq;
        rq->h = cls;
        rq->conn = conn;
        rq->method = method;
        rq->path = url;
        rq->head = strcmp(method, "HEAD") == 0;
        const char *why = NULL;
        unsigned code = http_admit(rq, &why);
        if (code) {
            rq->refused = 1;
            return http_reply_error(rq, code, why);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        /* A body past the bound without a Content-Length (chunked): close
         * the connection (a declared one was refused in http_admit). */
        if (rq->body.len + *upload_size > MAX_BODY) return MHD_NO;
        if (!rq->refused && loom_buf_append(&rq->body, upload_data, *upload_size) != 0)
            return MHD_NO;
        *upload_size = 0;
        return MHD_YES;
    }
    if (rq->refused) return MHD_YES;
    return route(rq);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode why) {
    (void)cls, (void)conn, (void)why;
    http_req_t *rq = *req_cls;
    if (!rq) return;
    http_api_request_done(rq);
    loom_buf_free(&rq->body);
    loom_buf_free(&rq->answer);
    free(rq);
    *req_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    msg[strcspn(msg, "\n")] = 0;
    LOOM_DEBUG("http", "msg=\"%s\"", msg);
}

/* ---- lifecycle ----------------------------------------------------------- */

loom_http_t *loom_http_new(const loom_http_opts_t *o, loom_err_t *err) {
    char host[256], port[16];
    if (!o || !o->metrics) {
        loom_err_set(err, LOOM_EINVAL, "http: metrics are required");
        return NULL;
    }
    if (parse_listen(o->listen, host, sizeof host, port, sizeof port) != 0) {
        loom_err_set(err, LOOM_EINVAL, "bad --http address '%s'", o->listen ? o->listen : "");
        loom_err_hint(err, "use HOST:PORT, e.g. 127.0.0.1:7480");
        return NULL;
    }
    loom_http_t *h = calloc(1, sizeof *h);
    if (!h) {
        loom_err_set(err, LOOM_ENOMEM, "out of memory");
        return NULL;
    }
    h->fd = -1;
    h->metrics = o->metrics;
    h->pg = o->pg;
    h->auth = o->auth;
    pthread_mutex_init(&h->watch_mu, NULL);
    if (!(h->gw = loom_gateway_new(http_api_tick, h, err))) goto fail;
    if (o->curve_secret_key && loom_gateway_set_curve(h->gw, o->curve_secret_key) != 0) {
        loom_err_set(err, LOOM_EINVAL, "http: loomd's CURVE secret key is malformed");
        goto fail;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    int gai = getaddrinfo(host, port, &hints, &ai);
    if (gai != 0) {
        loom_err_set(err, LOOM_EINVAL, "cannot resolve --http host '%s': %s", host,
                     gai_strerror(gai));
        goto fail;
    }
    h->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1;
    if (h->fd < 0 || setsockopt(h->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(h->fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(h->fd, LISTEN_BACKLOG) < 0) {
        loom_err_set(err, LOOM_EIO, "cannot listen on %s: %s", o->listen, strerror(errno));
        freeaddrinfo(ai);
        goto fail;
    }
    freeaddrinfo(ai);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(h->fd, (struct sockaddr *)&ss, &sl);
    h->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
    /* poll, not epoll: with libmicrohttpd 0.9.75's edge-triggered epoll a
     * client that half-closes right after its request sometimes waited for
     * the idle timeout instead of getting the response and EOF. */
    h->d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ERROR_LOG |
            MHD_ALLOW_SUSPEND_RESUME,
        0, NULL, NULL, on_request, h, MHD_OPTION_LISTEN_SOCKET, h->fd,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)POOL_THREADS, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)MAX_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)IDLE_TIMEOUT_S,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, h, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h, MHD_OPTION_END);
    if (!h->d) {
        loom_err_set(err, LOOM_EIO, "cannot start the HTTP server on %s", o->listen);
        goto fail;
    }
    h->fd = -1; /* the daemon owns (and closes) the listening socket now */
    LOOM_INFO("http", "msg=\"dashboard listening\" url=http://%s:%d/", host, h->port);
    return h;
fail:
    loom_http_destroy(&h);
    return NULL;
}

int loom_http_port(const loom_http_t *h) { return h->port; }

void loom_http_set_rpc_endpoint(loom_http_t *h, const char *endpoint) {
    if (h) loom_gateway_set_endpoint(h->gw, endpoint);
}

void loom_http_destroy(loom_http_t **ph) {
    if (!ph || !*ph) return;
    loom_http_t *h = *ph;
    /* The gateway first: ending its calls resumes every suspended
     * connection, which libmicrohttpd needs before it can stop. */
    loom_gateway_stop(h->gw);
    if (h->d) MHD_stop_daemon(h->d);
    if (h->fd >= 0) close(h->fd);
    loom_gateway_destroy(&h->gw);
    pthread_mutex_destroy(&h->watch_mu);
    free(h);
    *ph = NULL;
}
