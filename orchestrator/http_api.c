/* http_api.c — the HTTP/JSON gateway: REST for every RPC of rpc.proto and
 * Watch as server-sent events (docs/HTTP_API.md, protocol/openapi.json).
 *
 * A request is turned into the RPC's request message (body JSON + path
 * parameters + query parameters, through pb_json.h), handed to the gateway
 * thread (gateway.h) with the caller's bearer token, and the connection is
 * suspended; the gateway's callback writes the answer and resumes it. So
 * the REST API has exactly the RPC's semantics, validation and auth.
 *
 * Events streams: the connection waits (suspended) for the first event or
 * the stream's end, so a run that does not exist is a plain 404; then a
 * text/event-stream response is fed from a buffer the gateway thread fills
 * (`id:` = the event's seq, so a reconnecting EventSource resumes through
 * Last-Event-ID; `event:` = its kind; `data:` = the RunEvent as JSON), and
 * ends with an `event: end` carrying the final status. Idle streams get a
 * comment line every 15 s, which also notices clients that went away. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "loom/v1/rpc.pb-c.h"
#include "orchestrator/http_internal.h"
#include "protocol/methods.h"
#include "protocol/pb_json.h"
#include "protocol/status.h"

/* http_openapi_json[]: protocol/openapi.json, embedded by the build. */
#include "openapi_json.inc"

#define DEFAULT_TIMEOUT_MS 60000
#define KEEPALIVE_MS 15000
#define WATCH_BUFFER_MAX (8u << 20) /* a client this far behind is cut off */

/* ---- status and errors ------------------------------------------------------- */

/* The HTTP status for an RPC status (the mapping grpc-gateway uses). */
static unsigned http_code_of(int status) {
    switch (status) {
    case LOOM_STATUS_OK: return 200;
    case LOOM_STATUS_CANCELLED: return 499;
    case LOOM_STATUS_INVALID_ARGUMENT: return 400;
    case LOOM_STATUS_FAILED_PRECONDITION: return 400;
    case LOOM_STATUS_OUT_OF_RANGE: return 400;
    case LOOM_STATUS_DEADLINE_EXCEEDED: return 504;
    case LOOM_STATUS_NOT_FOUND: return 404;
    case LOOM_STATUS_ALREADY_EXISTS: return 409;
    case LOOM_STATUS_ABORTED: return 409;
    case LOOM_STATUS_PERMISSION_DENIED: return 403;
    case LOOM_STATUS_UNAUTHENTICATED: return 401;
    case LOOM_STATUS_RESOURCE_EXHAUSTED: return 429;
    case LOOM_STATUS_UNIMPLEMENTED: return 501;
    case LOOM_STATUS_UNAVAILABLE: return 503;
    default: return 500;
    }
}

/* {"code": 5, "status": "NOT_FOUND", "message": "...", "error": {...}} */
static json_t *status_json(int status, const char *message, const Loom__V1__Error *error) {
    json_t *o = json_pack("{s:i,s:s,s:s}", "code", status, "status", loom_status_name(status),
                          "message", message ? message : "");
    if (o && error) json_object_set_new(o, "error", loom_pb_to_json(&error->base));
    return o;
}

static void dump_json(json_t *j, loom_buf_t *out) {
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    loom_buf_puts(out, s ? s : "{\"code\":13,\"status\":\"INTERNAL\",\"message\":\"out of memory\"}");
    loom_buf_putc(out, '\n');
    free(s);
    json_decref(j);
}

static enum MHD_Result reply_status(http_req_t *rq, int status, const char *message) {
    loom_buf_t b = LOOM_BUF_INIT;
    dump_json(status_json(status, message, NULL), &b);
    return http_reply_buf(rq, http_code_of(status), "application/json", &b);
}

/* ---- building the request message ------------------------------------------ */

typedef struct {
    json_t *obj;
    const char *bad; /* a query parameter given twice / clashing with the body */
} query_ctx_t;

static enum MHD_Result add_query_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value) {
    (void)kind;
    query_ctx_t *q = cls;
    if (json_object_get(q->obj, key)) {
        q->bad = key;
        return MHD_NO;
    }
    json_object_set_new(q->obj, key, json_string(value ? value : ""));
    return MHD_YES;
}

/* Body JSON + query parameters + path parameter into a message of desc.
 * NULL after queueing a 400. */
static ProtobufCMessage *build_request(http_req_t *rq, const ProtobufCMessageDescriptor *desc,
                                       const char *run_id, enum MHD_Result *res) {
    json_t *obj;
    if (rq->body.len) {
        json_error_t je;
        obj = json_loadb(rq->body.data, rq->body.len, JSON_REJECT_DUPLICATES, &je);
        if (!json_is_object(obj)) {
            char why[300];
            snprintf(why, sizeof why, "request body is not a JSON object: %s (line %d, column %d)",
                     obj ? "not an object" : je.text, je.line, je.column);
            json_decref(obj);
            *res = reply_status(rq, LOOM_STATUS_INVALID_ARGUMENT, why);
            return NULL;
        }
    } else {
        obj = json_object();
    }
    query_ctx_t q = {.obj = obj};
    MHD_get_connection_values(rq->conn, MHD_GET_ARGUMENT_KIND, add_query_arg, &q);
    if (!q.bad && run_id) {
        if (json_object_get(obj, "run_id")) q.bad = "run_id";
        else json_object_set_new(obj, "run_id", json_string(run_id));
    }
    if (q.bad) {
        char why[200];
        snprintf(why, sizeof why, "'%.100s' given twice (path, query or body)", q.bad);
        json_decref(obj);
        *res = reply_status(rq, LOOM_STATUS_INVALID_ARGUMENT, why);
        return NULL;
    }
    loom_err_t err = {0};
    ProtobufCMessage *m = loom_pb_from_json(desc, obj, 1, &err);
    json_decref(obj);
    if (!m) *res = reply_status(rq, LOOM_STATUS_INVALID_ARGUMENT, err.msg);
    return m;
}

/* "Authorization: Bearer T" -> T (the RPC's authorization metadata). */
static const char *bearer_token(http_req_t *rq) {
    const char *a = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, "Authorization");
    if (!a) return NULL;
    if (strncasecmp(a, "Bearer ", 7) == 0) a += 7;
    while (*a == ' ') a++;
    return *a ? a : NULL;
}

/* X-Loom-Timeout-Ms: the call's deadline (default 60 s; 0 = none). */
static int64_t timeout_of(http_req_t *rq, int64_t dflt) {
    const char *t = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, "X-Loom-Timeout-Ms");
    if (!t) return dflt;
    char *end;
    long long v = strtoll(t, &end, 10);
    return (*t && !*end && v >= 0) ? (int64_t)v : -1;
}

/* ---- unary calls ----------------------------------------------------------- */

static void unary_done(void *ud, int status, const char *message, const Loom__V1__Error *error,
                       ProtobufCMessage *reply) {
    http_req_t *rq = ud; /* suspended: nobody else touches it until the resume */
    if (status == LOOM_STATUS_OK) {
        dump_json(loom_pb_to_json(reply), &rq->answer);
        loom_pb_free(reply);
    } else {
        dump_json(status_json(status, message, error), &rq->answer);
    }
    rq->answer_code = http_code_of(status);
    MHD_resume_connection(rq->conn);
}

static enum MHD_Result start_unary(http_req_t *rq, const char *method,
                                   const ProtobufCMessageDescriptor *req_desc,
                                   const ProtobufCMessageDescriptor *reply_desc,
                                   const char *run_id) {
    enum MHD_Result res = MHD_NO;
    int64_t timeout = timeout_of(rq, DEFAULT_TIMEOUT_MS);
    if (timeout < 0) return reply_status(rq, LOOM_STATUS_INVALID_ARGUMENT, "bad X-Loom-Timeout-Ms");
    ProtobufCMessage *m = build_request(rq, req_desc, run_id, &res);
    if (!m) return res;
    rq->waiting = 1;
    MHD_suspend_connection(rq->conn);
    loom_gateway_call(rq->h->gw, &(loom_gateway_call_t){.method = method,
                                                       .request = m,
                                                       .answer = reply_desc,
                                                       .auth_token = bearer_token(rq),
                                                       .timeout_ms = timeout,
                                                       .done = unary_done,
                                                       .ud = rq});
    return MHD_YES;
}

/* ---- events streams (server-sent events) ------------------------------------ */

struct http_watch {
    pthread_mutex_t mu;
    int refs;                    /* the gateway call + the response, each until it ends */
    loom_http_t *h;
    struct MHD_Connection *conn;
    uint64_t call;               /* gateway call id */
    loom_buf_t out;              /* SSE text not yet sent */
    size_t sent;                 /* bytes of out already sent */
    int suspended, streaming, ended, closed;
    int status;                  /* final status once ended */
    loom_buf_t end_json;         /* its JSON */
    uint64_t last_write_ms;
    http_watch_t *prev, *next;   /* h->watches */
};

static void watch_unref(http_watch_t *w) {
    pthread_mutex_lock(&w->mu);
    int left = --w->refs;
    pthread_mutex_unlock(&w->mu);
    if (left) return;
    loom_http_t *h = w->h;
    pthread_mutex_lock(&h->watch_mu);
    if (w->prev) w->prev->next = w->next;
    else h->watches = w->next;
    if (w->next) w->next->prev = w->prev;
    pthread_mutex_unlock(&h->watch_mu);
    loom_buf_free(&w->out);
    loom_buf_free(&w->end_json);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

/* Under w->mu: let libmicrohttpd look at the connection again. */
static void watch_wake(http_watch_t *w) {
    if (w->suspended) {
        w->suspended = 0;
        MHD_resume_connection(w->conn);
    }
}

static void watch_item(void *ud, ProtobufCMessage *item) {
    http_watch_t *w = ud;
    const Loom__V1__RunEvent *ev = (const Loom__V1__RunEvent *)item;
    const ProtobufCEnumValue *kind =
        protobuf_c_enum_descriptor_get_value(&loom__v1__run_event_kind__descriptor, ev->kind);
    json_t *j = loom_pb_to_json(item);
    char *data = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    pthread_mutex_lock(&w->mu);
    if (!w->closed && w->out.len - w->sent > WATCH_BUFFER_MAX) {
        /* The client reads slower than the run produces: end the stream
         * (it can resume with Last-Event-ID) instead of growing without bound. */
        w->closed = 1;
        loom_gateway_cancel(w->h->gw, w->call);
    } else if (!w->closed && data) {
        loom_buf_printf(&w->out, "id: %llu\nevent: %s\ndata: %s\n\n", (unsigned long long)ev->seq,
                        kind ? kind->name : "RUN_EVENT_UNSPECIFIED", data);
    }
    watch_wake(w);
    pthread_mutex_unlock(&w->mu);
    free(data);
    loom_pb_free(item);
}

static void watch_done(void *ud, int status, const char *message, const Loom__V1__Error *error,
                       ProtobufCMessage *reply) {
    (void)reply;
    http_watch_t *w = ud;
    pthread_mutex_lock(&w->mu);
    w->ended = 1;
    w->status = status;
    dump_json(status_json(status, message, error), &w->end_json);
    if (w->streaming || w->out.len) {
        loom_buf_puts(&w->out, "event: end\ndata: ");
        loom_buf_append(&w->out, w->end_json.data, w->end_json.len);
        loom_buf_putc(&w->out, '\n');
    }
    watch_wake(w);
    pthread_mutex_unlock(&w->mu);
    watch_unref(w);
}

static ssize_t watch_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    http_watch_t *w = cls;
    pthread_mutex_lock(&w->mu);
    size_t avail = w->out.len - w->sent;
    ssize_t n;
    if (avail) {
        n = (ssize_t)(avail < max ? avail : max);
        memcpy(buf, w->out.data + w->sent, (size_t)n);
        w->sent += (size_t)n;
        if (w->sent == w->out.len) w->sent = w->out.len = 0;
        w->last_write_ms = loom_clock_ms();
    } else if (w->ended || w->closed) {
        n = MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        w->suspended = 1; /* until the next event, the end or a keep-alive */
        MHD_suspend_connection(w->conn);
        n = 0;
    }
    pthread_mutex_unlock(&w->mu);
    return n;
}

/* libmicrohttpd is done with the response: the client left or it ended. */
static void watch_free(void *cls) {
    http_watch_t *w = cls;
    pthread_mutex_lock(&w->mu);
    w->closed = 1;
    int ended = w->ended;
    uint64_t call = w->call;
    pthread_mutex_unlock(&w->mu);
    if (!ended) loom_gateway_cancel(w->h->gw, call);
    watch_unref(w);
}

void http_api_tick(void *arg) {
    loom_http_t *h = arg;
    uint64_t now = loom_clock_ms();
    pthread_mutex_lock(&h->watch_mu);
    for (http_watch_t *w = h->watches; w; w = w->next) {
        pthread_mutex_lock(&w->mu);
        if (w->streaming && !w->ended && !w->closed && w->out.len == 0 &&
            now - w->last_write_ms >= KEEPALIVE_MS) {
            loom_buf_puts(&w->out, ": keep-alive\n\n");
            watch_wake(w);
        }
        pthread_mutex_unlock(&w->mu);
    }
    pthread_mutex_unlock(&h->watch_mu);
}

static enum MHD_Result start_watch(http_req_t *rq, const char *run_id) {
    enum MHD_Result res = MHD_NO;
    int64_t timeout = timeout_of(rq, 0);
    if (timeout < 0) return reply_status(rq, LOOM_STATUS_INVALID_ARGUMENT, "bad X-Loom-Timeout-Ms");
    ProtobufCMessage *m = build_request(rq, &loom__v1__watch_request__descriptor, run_id, &res);
    if (!m) return res;
    Loom__V1__WatchRequest *wr = (Loom__V1__WatchRequest *)m;
    const char *last = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, "Last-Event-ID");
    if (last && *last) { /* an EventSource reconnecting */
        char *end;
        unsigned long long seq = strtoull(last, &end, 10);
        if (*end || last[0] == '-') {
            loom_pb_json_free(m);
            return reply_status(rq, LOOM_STATUS_INVALID_ARGUMENT, "bad Last-Event-ID");
        }
        wr->after_seq = seq;
    }
    http_watch_t *w = calloc(1, sizeof *w);
    if (!w) {
        loom_pb_json_free(m);
        return reply_status(rq, LOOM_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    }
    pthread_mutex_init(&w->mu, NULL);
    w->refs = 1; /* the gateway call's; the response takes its own */
    w->h = rq->h;
    w->conn = rq->conn;
    w->last_write_ms = loom_clock_ms();
    pthread_mutex_lock(&rq->h->watch_mu);
    w->next = rq->h->watches;
    if (w->next) w->next->prev = w;
    rq->h->watches = w;
    pthread_mutex_unlock(&rq->h->watch_mu);
    rq->watch = w;
    rq->waiting = 1;
    pthread_mutex_lock(&w->mu);
    w->suspended = 1; /* until the first event or the end */
    MHD_suspend_connection(rq->conn);
    w->refs++;        /* rq->watch's, dropped in http_api_request_done */
    pthread_mutex_unlock(&w->mu);
    uint64_t call = loom_gateway_call(
        rq->h->gw, &(loom_gateway_call_t){.method = LOOM_METHOD_WATCH,
                                          .request = m,
                                          .answer = &loom__v1__run_event__descriptor,
                                          .stream = 1,
                                          .auth_token = bearer_token(rq),
                                          .timeout_ms = timeout,
                                          .done = watch_done,
                                          .item = watch_item,
                                          .ud = w});
    pthread_mutex_lock(&w->mu);
    w->call = call;
    pthread_mutex_unlock(&w->mu);
    return MHD_YES;
}

/* The connection was resumed: the first event arrived or the stream ended. */
static enum MHD_Result continue_watch(http_req_t *rq) {
    http_watch_t *w = rq->watch;
    pthread_mutex_lock(&w->mu);
    if (w->ended && !w->out.len && w->status != LOOM_STATUS_OK) {
        /* Failed before any event (unknown run, bad token): a plain error. */
        loom_buf_t b = LOOM_BUF_INIT;
        loom_buf_append(&b, w->end_json.data, w->end_json.len);
        unsigned code = http_code_of(w->status);
        pthread_mutex_unlock(&w->mu);
        return http_reply_buf(rq, code, "application/json", &b);
    }
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, watch_read, w, watch_free);
    if (!r) {
        pthread_mutex_unlock(&w->mu);
        return MHD_NO;
    }
    w->streaming = 1;
    w->refs++; /* the response's, dropped in watch_free */
    pthread_mutex_unlock(&w->mu);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, "X-Accel-Buffering", "no");
    enum MHD_Result ok = MHD_queue_response(rq->conn, 200, r);
    MHD_destroy_response(r);
    return ok;
}

void http_api_request_done(http_req_t *rq) {
    if (rq->watch) {
        http_watch_t *w = rq->watch;
        rq->watch = NULL;
        pthread_mutex_lock(&w->mu);
        int ended = w->ended, streaming = w->streaming;
        uint64_t call = w->call;
        pthread_mutex_unlock(&w->mu);
        /* Never streamed (error reply, or the daemon stopping): end the call. */
        if (!ended && !streaming) loom_gateway_cancel(rq->h->gw, call);
        watch_unref(w);
    }
}

/* ---- routes ----------------------------------------------------------------- */

int http_api_owns(const char *path) { return strncmp(path, "/v1/", 4) == 0; }

/* "/v1/runs/<id>[/<verb>]": 1 with id and verb ("" when none). */
static int run_path(const char *p, char *id, size_t n, const char **verb) {
    if (strncmp(p, "/v1/runs/", 9) != 0) return 0;
    p += 9;
    size_t len = strcspn(p, "/");
    if (len == 0 || len >= n) return -1;
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || c == ':'))
            return -1;
    }
    memcpy(id, p, len);
    id[len] = 0;
    *verb = p[len] ? p + len + 1 : "";
    return 1;
}

enum MHD_Result http_api_route(http_req_t *rq) {
    if (rq->waiting) { /* resumed: the answer is here */
        rq->waiting = 0;
        if (rq->watch) return continue_watch(rq);
        return http_reply_buf(rq, rq->answer_code, "application/json", &rq->answer);
    }
    const char *p = rq->path;
    int get = strcmp(rq->method, "GET") == 0 || rq->head;
    int post = strcmp(rq->method, "POST") == 0;
    char id[128];
    const char *verb = "";
    int r = run_path(p, id, sizeof id, &verb);
    if (r < 0) return reply_status(rq, LOOM_STATUS_INVALID_ARGUMENT, "bad run id in the path");
    if (r > 0 && !*verb) {
        if (get)
            return start_unary(rq, LOOM_METHOD_GET, &loom__v1__get_request__descriptor,
                               &loom__v1__get_reply__descriptor, id);
    } else if (r > 0 && strcmp(verb, "cancel") == 0) {
        if (post)
            return start_unary(rq, LOOM_METHOD_CANCEL, &loom__v1__cancel_request__descriptor,
                               &loom__v1__cancel_reply__descriptor, id);
    } else if (r > 0 && strcmp(verb, "retry") == 0) {
        if (post)
            return start_unary(rq, LOOM_METHOD_RETRY, &loom__v1__retry_request__descriptor,
                               &loom__v1__submit_reply__descriptor, id);
    } else if (r > 0 && strcmp(verb, "events") == 0) {
        if (get) return start_watch(rq, id);
    } else if (strcmp(p, "/v1/runs") == 0) {
        if (post)
            return start_unary(rq, LOOM_METHOD_SUBMIT, &loom__v1__submit_request__descriptor,
                               &loom__v1__submit_reply__descriptor, NULL);
        if (get)
            return start_unary(rq, LOOM_METHOD_LIST, &loom__v1__list_request__descriptor,
                               &loom__v1__list_reply__descriptor, NULL);
    } else if (strcmp(p, "/v1/plan") == 0) {
        if (post)
            return start_unary(rq, LOOM_METHOD_PLAN, &loom__v1__plan_request__descriptor,
                               &loom__v1__plan_reply__descriptor, NULL);
    } else if (strcmp(p, "/v1/workers") == 0) {
        if (get)
            return start_unary(rq, LOOM_METHOD_LIST_WORKERS,
                               &loom__v1__list_workers_request__descriptor,
                               &loom__v1__list_workers_reply__descriptor, NULL);
    } else if (strcmp(p, "/v1/health") == 0) {
        if (get)
            return start_unary(rq, LOOM_METHOD_HEALTH, &loom__v1__health_request__descriptor,
                               &loom__v1__health_reply__descriptor, NULL);
    } else if (strcmp(p, "/v1/openapi.json") == 0) {
        if (get)
            return http_reply(rq, 200, "application/json", http_openapi_json,
                              http_openapi_json_len);
    } else {
        return reply_status(rq, LOOM_STATUS_NOT_FOUND, "no such API path");
    }
    loom_buf_t b = LOOM_BUF_INIT; /* a known path, another method */
    dump_json(status_json(LOOM_STATUS_UNIMPLEMENTED, "method not allowed on this path", NULL), &b);
    return http_reply_buf(rq, 405, "application/json", &b);
}
