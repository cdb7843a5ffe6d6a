/* client.c — libloom_client: DEALER-side calls, streams and the worker's
 * request intake (see client.h). */
#include "protocol/client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "common/clock.h"
#include "common/log.h"
#include "protocol/failover.h"
#include "protocol/rpc_server.h"

/* Messages queued for a stream (arriving while the caller is busy in
 * another call) or in the worker inbox are bounded in count and bytes: a
 * stream that overflows ends with RESOURCE_EXHAUSTED (never a silent gap),
 * an inbox request that does not fit is answered RESOURCE_EXHAUSTED. */
#define QUEUE_MAX 4096
#define QUEUE_BYTES (64u * 1024 * 1024)

typedef struct node {
    loom_msg_t *m;
    struct node *next;
} node_t;

typedef struct queue {
    node_t *head, *tail;
    size_t len, bytes;
} queue_t;

static size_t msg_bytes(const loom_msg_t *m)
{
    size_t n;
    loom_msg_payload(m, &n);
    return n + 256;
}

struct loom_stream {
    loom_client_t *c;
    uint64_t id;
    char method[LOOM_MAX_METHOD + 1];
    const ProtobufCMessageDescriptor *item_desc;
    uint64_t deadline_mono; /* 0 = none */
    queue_t q;
    int status;             /* -1 while open */
    char message[256];
    struct loom_stream *next;
};

struct loom_client {
    void *zctx;
    int own_ctx;
    void *sock;
    loom_limits_t limits;
    char *auth_token;
    char *client_name;
    uint64_t next_id;
    /* The unary call in progress (at most one at a time). */
    uint64_t unary_id;
    loom_msg_t *unary_reply;
    loom_stream_t *streams;
    queue_t inbox; /* requests from the server (worker side) */
    /* Failover (failover.h): the loomd endpoints, the one in use, and a
     * monitor of its connection (only with several endpoints). */
    loom_endpoints_t eps;
    loom_conn_watch_t *watch;
    int lost;      /* the connection in use was lost: move on before the next call */
    char hint[300]; /* a standby's detail that ended a stream: where to move on to */
};

/* Appends m (taking ownership) or returns -1 when the queue is full (m is
 * left to the caller). */
static int q_push(queue_t *q, loom_msg_t *m)
{
    size_t b = msg_bytes(m);
    if (q->len >= QUEUE_MAX || q->bytes + b > QUEUE_BYTES)
        return -1;
    node_t *n = malloc(sizeof *n);
    if (!n)
        return -1;
    n->m = m;
    n->next = NULL;
    if (q->tail)
        q->tail->next = n;
    else
        q->head = n;
    q->tail = n;
    q->len++;
    q->bytes += b;
    return 0;
}

static loom_msg_t *q_pop(queue_t *q)
{
    node_t *h = q->head;
    if (!h)
        return NULL;
    q->head = h->next;
    if (!q->head)
        q->tail = NULL;
    q->len--;
    loom_msg_t *m = h->m;
    q->bytes -= msg_bytes(m);
    free(h);
    return m;
}

static void q_clear(queue_t *q)
{
    loom_msg_t *m;
    while ((m = q_pop(q)))
        loom_msg_destroy(&m);
}

loom_client_t *loom_client_new(const char *endpoint, const loom_client_opts_t *opts,
                               loom_err_t *err)
{
    loom_client_opts_t none = {0};
    if (!opts)
        opts = &none;
    loom_client_t *c = calloc(1, sizeof *c);
    if (!c) {
        loom_err_set(err, LOOM_ENOMEM, "out of memory");
        return NULL;
    }
    c->next_id = 1;
    c->limits = opts->limits;
    loom_limits_t d;
    loom_limits_default(&d);
    if (!c->limits.max_header) c->limits.max_header = d.max_header;
    if (!c->limits.max_payload) c->limits.max_payload = d.max_payload;
    if (!c->limits.max_decoded) c->limits.max_decoded = d.max_decoded;
    if ((opts->auth_token && !(c->auth_token = strdup(opts->auth_token))) ||
        (opts->client_name && !(c->client_name = strdup(opts->client_name)))) {
        loom_err_set(err, LOOM_ENOMEM, "out of memory");
        goto fail_alloc;
    }
    c->zctx = opts->zctx;
    if (!c->zctx) {
        c->zctx = zmq_ctx_new();
        c->own_ctx = 1;
        if (!c->zctx) {
            loom_err_set(err, LOOM_EIO, "zmq_ctx_new: %s", zmq_strerror(errno));
            goto fail_alloc;
        }
    }
    c->sock = zmq_socket(c->zctx, ZMQ_DEALER);
    if (!c->sock) {
        loom_err_set(err, LOOM_EIO, "zmq_socket(DEALER): %s", zmq_strerror(errno));
        goto fail_ctx;
    }
    if (loom_socket_setup(c->sock, &c->limits, err) != 0)
        goto fail_sock;
    if (opts->server_public_key) {
        char pub[41], sec[41];
        if (strlen(opts->server_public_key) != 40) {
            loom_err_set(err, LOOM_EINVAL, "CURVE server key must be 40 Z85 characters");
            goto fail_sock;
        }
        if (opts->client_public_key && opts->client_secret_key) {
            snprintf(pub, sizeof pub, "%s", opts->client_public_key);
            snprintf(sec, sizeof sec, "%s", opts->client_secret_key);
        } else if (zmq_curve_keypair(pub, sec) != 0) {
            loom_err_set(err, LOOM_EINVAL, "cannot make a CURVE key pair: %s", zmq_strerror(errno));
            goto fail_sock;
        }
        if (
            zmq_setsockopt(c->sock, ZMQ_CURVE_SERVERKEY, opts->server_public_key, 41) != 0 ||
            zmq_setsockopt(c->sock, ZMQ_CURVE_PUBLICKEY, pub, 41) != 0 ||
            zmq_setsockopt(c->sock, ZMQ_CURVE_SECRETKEY, sec, 41) != 0) {
            loom_err_set(err, LOOM_EINVAL, "cannot enable CURVE: %s", zmq_strerror(errno));
            loom_err_hint(err, "libzmq must be built with libsodium (zmq_has(\"curve\"))");
            goto fail_sock;
        }
    }
    if (loom_endpoints_parse(&c->eps, endpoint, err) != 0)
        goto fail_sock;
    if (c->eps.n > 1) /* before connecting: a refused first connect is an event too */
        c->watch = loom_conn_watch_new(c->zctx, c->sock);
    for (int i = 0; i < c->eps.n; i++) { /* check every one now, use the first */
        if (zmq_connect(c->sock, c->eps.ep[i]) != 0) {
            loom_err_set(err, LOOM_EINVAL, "cannot connect to %s: %s", c->eps.ep[i],
                         zmq_strerror(errno));
            loom_err_hint(err, "endpoints look like tcp://127.0.0.1:7400 or ipc:///run/loom/loomd.sock");
            goto fail_eps;
        }
        if (i > 0)
            zmq_disconnect(c->sock, c->eps.ep[i]);
    }
    return c;

fail_eps:
    loom_conn_watch_destroy(&c->watch);
    loom_endpoints_free(&c->eps);
fail_sock:
    zmq_close(c->sock);
fail_ctx:
    if (c->own_ctx)
        zmq_ctx_term(c->zctx);
fail_alloc:
    free(c->auth_token);
    free(c->client_name);
    free(c);
    return NULL;
}

void loom_client_destroy(loom_client_t **pc)
{
    if (!pc || !*pc)
        return;
    loom_client_t *c = *pc;
    for (loom_stream_t *s = c->streams; s; s = s->next)
        s->c = NULL; /* streams outliving the client become inert */
    loom_msg_destroy(&c->unary_reply);
    q_clear(&c->inbox);
    loom_conn_watch_destroy(&c->watch);
    loom_endpoints_free(&c->eps);
    zmq_close(c->sock);
    if (c->own_ctx)
        zmq_ctx_term(c->zctx);
    free(c->auth_token);
    free(c->client_name);
    free(c);
    *pc = NULL;
}

void *loom_client_socket(loom_client_t *c) { return c->sock; }

static int send_request(loom_client_t *c, uint64_t id, const char *method,
                        const ProtobufCMessage *req, int64_t deadline_wall, uint32_t flags,
                        loom_err_t *err)
{
    const char *keys[2], *vals[2];
    size_t n = 0;
    if (c->auth_token) {
        keys[n] = "authorization";
        vals[n++] = c->auth_token;
    }
    if (c->client_name) {
        keys[n] = "x-client";
        vals[n++] = c->client_name;
    }
    loom_send_t s = {0};
    s.request_id = id;
    s.method = method;
    s.deadline_ms = deadline_wall;
    s.flags = flags;
    s.meta_keys = keys;
    s.meta_values = vals;
    s.n_meta = n;
    s.payload = req;
    /* A DEALER queues up to its HWM even before the connection is up; a
     * full queue fails at once (UNAVAILABLE) rather than blocking. */
    return loom_msg_send(c->sock, &s, ZMQ_DONTWAIT, err);
}

static void send_cancel(loom_client_t *c, uint64_t id, const char *method)
{
    send_request(c, id, method, NULL, 0, LOOM_FLAG_CANCEL, NULL);
}

static void stream_end(loom_stream_t *s, int status, const char *msg);

static loom_stream_t *find_stream(loom_client_t *c, uint64_t id)
{
    for (loom_stream_t *s = c->streams; s; s = s->next)
        if (s->id == id)
            return s;
    return NULL;
}

/* Reads at most one message within wait_ms (< 0 = forever) and files it:
 * the unary reply slot, a stream's queue or the inbox. Returns 1 when a
 * message was read, 0 on timeout, LOOM_EIO on failure. */
static int pump(loom_client_t *c, int64_t wait_ms, loom_err_t *err)
{
    /* Try a non-blocking read first: when messages are already queued (a
     * stream in full flow) this saves a poll per message. */
    loom_msg_t *m = NULL;
    int rc = loom_msg_recv(c->sock, 0, &c->limits, ZMQ_DONTWAIT, &m, err);
    if (rc < 0)
        return rc;
    if (rc == 0) {
        if (wait_ms == 0)
            return 0;
        zmq_pollitem_t it[2] = {{c->sock, 0, ZMQ_POLLIN, 0},
                                {loom_conn_watch_socket(c->watch), 0, ZMQ_POLLIN, 0}};
        rc = zmq_poll(it, c->watch ? 2 : 1, wait_ms < 0 ? -1 : (long)wait_ms);
        if (rc < 0) {
            if (errno == EINTR)
                return 0;
            return loom_err_set(err, LOOM_EIO, "zmq_poll: %s", zmq_strerror(errno));
        }
        if (c->watch && (it[1].revents & ZMQ_POLLIN) &&
            loom_conn_watch_lost(c->watch, loom_endpoints_current(&c->eps)))
            c->lost = 1;
        if (!(it[0].revents & ZMQ_POLLIN))
            return 0;
        rc = loom_msg_recv(c->sock, 0, &c->limits, ZMQ_DONTWAIT, &m, err);
        if (rc <= 0)
            return rc;
    }
    uint64_t id = loom_msg_request_id(m);
    int valid = loom_msg_status(m) == LOOM_STATUS_OK;
    if (!valid && !loom_msg_envelope(m)) {
        LOOM_DEBUG("client", "msg=\"dropped malformed message\" why=\"%s\"", loom_msg_error(m));
        loom_msg_destroy(&m);
        return 1;
    }
    /* A reply (or a malformed message whose header names one of our
     * requests, e.g. a reply over the payload limit). */
    if (loom_msg_is_reply(m) || !valid) {
        loom_stream_t *s;
        if (c->unary_id && id == c->unary_id && !c->unary_reply) {
            c->unary_reply = m;
        } else if ((s = find_stream(c, id)) && s->status < 0) {
            if (q_push(&s->q, m) != 0) {
                loom_msg_destroy(&m);
                send_cancel(c, id, s->method);
                stream_end(s, LOOM_STATUS_RESOURCE_EXHAUSTED,
                           "the client fell behind: too many stream items queued");
            }
        } else {
            LOOM_DEBUG("client", "msg=\"dropped late reply\" request_id=%llu",
                       (unsigned long long)id);
            loom_msg_destroy(&m);
        }
        return 1;
    }
    if (q_push(&c->inbox, m) != 0) { /* a request or cancel from the server */
        if (!(loom_msg_flags(m) & (LOOM_FLAG_ONEWAY | LOOM_FLAG_CANCEL)))
            loom_rpc_send_reply(c->sock, loom_msg_origin(m), 0, LOOM_STATUS_RESOURCE_EXHAUSTED,
                                "worker inbox full", NULL, NULL, NULL);
        loom_msg_destroy(&m);
    }
    return 1;
}

/* Remaining ms until a monotonic deadline (0 = none -> -1 = forever). */
static int64_t remaining(uint64_t deadline_mono)
{
    if (!deadline_mono)
        return -1;
    uint64_t now = loom_clock_ms();
    return now >= deadline_mono ? 0 : (int64_t)(deadline_mono - now);
}

/* Fills err from a non-OK reply (message + structured error). */
static int reply_failed(const loom_msg_t *m, loom_err_t *err)
{
    int st = loom_msg_status(m) != LOOM_STATUS_OK ? loom_msg_status(m) : loom_msg_reply_status(m);
    const char *msg = loom_msg_status(m) != LOOM_STATUS_OK ? loom_msg_error(m)
                                                           : loom_msg_reply_message(m);
    loom_err_set(err, loom_err_from_status(st), "%s: %s", loom_status_name(st),
                 msg[0] ? msg : "(no message)");
    const Loom__V1__Envelope *env = loom_msg_envelope(m);
    if (env && env->error && err) {
        if (env->error->detail && env->error->detail[0])
            loom_err_detail(err, "%s", env->error->detail);
        if (env->error->hint && env->error->hint[0])
            loom_err_hint(err, "%s", env->error->hint);
        if (env->error->location && env->error->location[0])
            loom_err_field(err, "%s", env->error->location);
    }
    return st;
}

/* Failover: moves the socket to the leader a standby named (detail) or to
 * the next endpoint; streams open on the old connection end UNAVAILABLE
 * (their runs go on: watch again). */
static void move_on(loom_client_t *c, const char *detail)
{
    char pending[sizeof c->hint];
    snprintf(pending, sizeof pending, "%s", c->hint);
    c->hint[0] = 0;
    if (!detail && pending[0])
        detail = pending;
    const char *old = loom_endpoints_current(&c->eps);
    char was[256];
    snprintf(was, sizeof was, "%s", old);
    const char *now = loom_endpoints_advance(&c->eps, detail);
    c->lost = 0;
    if (strcmp(was, now) == 0)
        return;
    zmq_disconnect(c->sock, was);
    if (zmq_connect(c->sock, now) != 0)
        LOOM_WARN("client", "msg=\"cannot connect\" endpoint=%s error=\"%s\"", now,
                  zmq_strerror(errno));
    if (!c->watch && c->eps.cur != 0) /* a standby pointed a one-endpoint client elsewhere */
        c->watch = loom_conn_watch_new(c->zctx, c->sock);
    LOOM_DEBUG("client", "msg=\"moving to another loomd\" from=%s to=%s", was, now);
    for (loom_stream_t *s = c->streams; s; s = s->next)
        if (s->status < 0)
            stream_end(s, LOOM_STATUS_UNAVAILABLE, "the connection to loomd was lost");
}

/* 1 when a reply comes from a standby (server.c: detail "standby; ..."). */
static int from_standby(const loom_msg_t *m)
{
    const Loom__V1__Envelope *env = loom_msg_envelope(m);
    return env && (int)env->status == LOOM_STATUS_UNAVAILABLE && env->error && env->error->detail &&
           strncmp(env->error->detail, "standby;", 8) == 0;
}

const char *loom_client_endpoint(const loom_client_t *c) { return loom_endpoints_current(&c->eps); }

int loom_client_call(loom_client_t *c, const char *method, const ProtobufCMessage *req,
                     const ProtobufCMessageDescriptor *reply_desc, int64_t timeout_ms,
                     ProtobufCMessage **reply, loom_err_t *err)
{
    *reply = NULL;
    uint64_t dl_mono = timeout_ms > 0 ? loom_clock_ms() + (uint64_t)timeout_ms : 0;
    int64_t dl_wall = timeout_ms > 0 ? loom_wall_ms() + timeout_ms : 0;
    int pause_ms = 50; /* between failover hops, doubling to 500 */
    loom_msg_t *m = NULL;
    for (;;) {
        if (c->lost)
            move_on(c, NULL);
        uint64_t id = c->next_id++;
        int rc = send_request(c, id, method, req, dl_wall, 0, err);
        if (rc == LOOM_EUNAVAIL) {
            return LOOM_STATUS_UNAVAILABLE;
        } else if (rc != 0) {
            return loom_status_from_err(rc);
        }
        c->unary_id = id;
        loom_msg_destroy(&c->unary_reply);
        while (!c->unary_reply && !c->lost) {
            int64_t left = remaining(dl_mono);
            if (left == 0) {
                c->unary_id = 0;
                send_cancel(c, id, method);
                loom_err_set(err, LOOM_ETIMEDOUT, "DEADLINE_EXCEEDED: %s: no reply within %lld ms",
                             method, (long long)timeout_ms);
                return LOOM_STATUS_DEADLINE_EXCEEDED;
            }
            rc = pump(c, left, err);
            if (rc < 0) {
                c->unary_id = 0;
                return LOOM_STATUS_UNAVAILABLE;
            }
        }
        m = c->unary_reply;
        c->unary_reply = NULL;
        c->unary_id = 0;
        /* a standby, or the connection lost before a reply (several
         * endpoints): the same request to the next loomd while time is left */
        int standby = m && from_standby(m);
        if (m && !standby)
            break;
        int64_t left = remaining(dl_mono);
        if (left == 0 || (!standby && !c->lost))
            break;
        if (standby) {
            char detail[300];
            snprintf(detail, sizeof detail, "%s", loom_msg_envelope(m)->error->detail);
            move_on(c, detail);
        } else {
            move_on(c, NULL);
        }
        loom_msg_destroy(&m);
        int64_t nap = left > 0 && left < pause_ms ? left : pause_ms;
        zmq_poll(NULL, 0, (long)nap);
        pause_ms = pause_ms * 2 > 500 ? 500 : pause_ms * 2;
    }
    if (!m) {
        loom_err_set(err, LOOM_ETIMEDOUT, "DEADLINE_EXCEEDED: %s: no reply within %lld ms", method,
                     (long long)timeout_ms);
        return LOOM_STATUS_DEADLINE_EXCEEDED;
    }
    int st;
    if (loom_msg_status(m) != LOOM_STATUS_OK || loom_msg_reply_status(m) != LOOM_STATUS_OK)
        st = reply_failed(m, err);
    else
        st = loom_msg_unpack(m, reply_desc, &c->limits, reply, err);
    loom_msg_destroy(&m);
    return st;
}

int loom_client_send_oneway(loom_client_t *c, const char *method, const ProtobufCMessage *req,
                            loom_err_t *err)
{
    return send_request(c, c->next_id++, method, req, 0, LOOM_FLAG_ONEWAY, err);
}

/* ---- streams ------------------------------------------------------------------- */

int loom_client_stream(loom_client_t *c, const char *method, const ProtobufCMessage *req,
                       const ProtobufCMessageDescriptor *item_desc, int64_t timeout_ms,
                       loom_stream_t **out, loom_err_t *err)
{
    *out = NULL;
    loom_stream_t *s = calloc(1, sizeof *s);
    if (!s) {
        loom_err_set(err, LOOM_ENOMEM, "out of memory");
        return LOOM_STATUS_RESOURCE_EXHAUSTED;
    }
    if (c->lost)
        move_on(c, NULL);
    s->c = c;
    s->id = c->next_id++;
    snprintf(s->method, sizeof s->method, "%s", method);
    s->item_desc = item_desc;
    s->status = -1;
    s->deadline_mono = timeout_ms > 0 ? loom_clock_ms() + (uint64_t)timeout_ms : 0;
    int64_t dl_wall = timeout_ms > 0 ? loom_wall_ms() + timeout_ms : 0;
    int rc = send_request(c, s->id, method, req, dl_wall, 0, err);
    if (rc != 0) {
        free(s);
        return loom_status_from_err(rc);
    }
    s->next = c->streams;
    c->streams = s;
    *out = s;
    return LOOM_STATUS_OK;
}

static void stream_end(loom_stream_t *s, int status, const char *msg)
{
    s->status = status;
    snprintf(s->message, sizeof s->message, "%s", msg ? msg : "");
    q_clear(&s->q);
}

int loom_stream_next(loom_stream_t *s, int64_t wait_ms, ProtobufCMessage **item, loom_err_t *err)
{
    *item = NULL;
    if (s->status >= 0 || !s->c) {
        if (s->status < 0)
            stream_end(s, LOOM_STATUS_CANCELLED, "client destroyed");
        return LOOM_STREAM_END;
    }
    uint64_t until = wait_ms < 0 ? 0 : loom_clock_ms() + (uint64_t)wait_ms;
    for (;;) {
        loom_msg_t *m = q_pop(&s->q);
        if (m) {
            uint32_t fl = loom_msg_flags(m);
            int bad = loom_msg_status(m) != LOOM_STATUS_OK;
            if (!bad && (fl & LOOM_FLAG_STREAM) && loom_msg_reply_status(m) == LOOM_STATUS_OK) {
                int st = loom_msg_unpack(m, s->item_desc, &s->c->limits, item, err);
                loom_msg_destroy(&m);
                if (st == LOOM_STATUS_OK)
                    return LOOM_STREAM_ITEM;
                send_cancel(s->c, s->id, s->method);
                stream_end(s, st, err ? err->msg : "stream item does not decode");
                return LOOM_STREAM_END;
            }
            /* End of stream, or any other reply (e.g. the request was rejected). */
            if (from_standby(m)) { /* the next call or stream goes to the leader it names */
                snprintf(s->c->hint, sizeof s->c->hint, "%s", loom_msg_envelope(m)->error->detail);
                s->c->lost = 1;
            }
            loom_err_t tmp;
            int st = LOOM_STATUS_OK;
            if (bad || loom_msg_reply_status(m) != LOOM_STATUS_OK)
                st = reply_failed(m, err ? err : &tmp);
            stream_end(s, st, st == LOOM_STATUS_OK ? loom_msg_reply_message(m)
                                                   : (err ? err->msg : tmp.msg));
            loom_msg_destroy(&m);
            return LOOM_STREAM_END;
        }
        int64_t left_stream = remaining(s->deadline_mono);
        if (left_stream == 0) {
            send_cancel(s->c, s->id, s->method);
            stream_end(s, LOOM_STATUS_DEADLINE_EXCEEDED, "stream deadline passed");
            loom_err_set(err, LOOM_ETIMEDOUT, "DEADLINE_EXCEEDED: %s: stream deadline passed",
                         s->method);
            return LOOM_STREAM_END;
        }
        int64_t left = until ? (int64_t)(until > loom_clock_ms() ? until - loom_clock_ms() : 0) : -1;
        if (left == 0)
            return LOOM_STREAM_IDLE;
        if (left_stream >= 0 && (left < 0 || left_stream < left))
            left = left_stream;
        if (pump(s->c, left, err) < 0) {
            stream_end(s, LOOM_STATUS_UNAVAILABLE, err ? err->msg : "socket failure");
            return LOOM_STREAM_END;
        }
        if (s->c->lost && !s->q.head) { /* several endpoints: the next call moves on */
            stream_end(s, LOOM_STATUS_UNAVAILABLE, "the connection to loomd was lost");
            loom_err_set(err, LOOM_EUNAVAIL, "UNAVAILABLE: %s: the connection to loomd was lost",
                         s->method);
            return LOOM_STREAM_END;
        }
    }
}

int loom_stream_status(const loom_stream_t *s) { return s->status; }
const char *loom_stream_message(const loom_stream_t *s) { return s->message; }

void loom_stream_cancel(loom_stream_t *s)
{
    if (!s || s->status >= 0)
        return;
    if (s->c)
        send_cancel(s->c, s->id, s->method);
    stream_end(s, LOOM_STATUS_CANCELLED, "cancelled by the client");
}

void loom_stream_destroy(loom_stream_t **ps)
{
    if (!ps || !*ps)
        return;
    loom_stream_t *s = *ps;
    loom_stream_cancel(s);
    if (s->c) {
        for (loom_stream_t **pp = &s->c->streams; *pp; pp = &(*pp)->next)
            if (*pp == s) {
                *pp = s->next;
                break;
            }
    }
    q_clear(&s->q);
    free(s);
    *ps = NULL;
}

/* ---- worker side ------------------------------------------------------------------ */

int loom_client_serve_next(loom_client_t *c, int64_t wait_ms, loom_msg_t **req, loom_err_t *err)
{
    *req = NULL;
    uint64_t until = wait_ms < 0 ? 0 : loom_clock_ms() + (uint64_t)wait_ms;
    for (;;) {
        loom_msg_t *m = q_pop(&c->inbox);
        if (m) {
            *req = m;
            return 1;
        }
        int64_t left = -1;
        if (until) {
            uint64_t now = loom_clock_ms();
            if (now >= until)
                return 0;
            left = (int64_t)(until - now);
        }
        int rc = pump(c, left, err);
        if (rc < 0)
            return rc;
        if (rc == 0 && until && loom_clock_ms() >= until)
            return 0;
    }
}

int loom_client_respond(loom_client_t *c, const loom_msg_t *req, int status, const char *message,
                        const ProtobufCMessage *reply, loom_err_t *err)
{
    if (loom_msg_flags(req) & (LOOM_FLAG_ONEWAY | LOOM_FLAG_CANCEL))
        return 0;
    return loom_rpc_send_reply(c->sock, loom_msg_origin(req), 0, status, message,
                               status == LOOM_STATUS_OK ? reply : NULL, NULL, err);
}

/* ---- typed wrappers ---------------------------------------------------------------- */

#define UNARY(fn, Req, Rep, METHOD, desc)                                                   \
    int loom_client_##fn(loom_client_t *c, const Req *req, int64_t timeout_ms, Rep **reply, \
                         loom_err_t *err)                                                   \
    {                                                                                       \
        return loom_client_call(c, METHOD, (const ProtobufCMessage *)req, &desc, timeout_ms, \
                                (ProtobufCMessage **)reply, err);                           \
    }
UNARY(submit, Loom__V1__SubmitRequest, Loom__V1__SubmitReply, LOOM_METHOD_SUBMIT, loom__v1__submit_reply__descriptor)
UNARY(plan, Loom__V1__PlanRequest, Loom__V1__PlanReply, LOOM_METHOD_PLAN, loom__v1__plan_reply__descriptor)
UNARY(get, Loom__V1__GetRequest, Loom__V1__GetReply, LOOM_METHOD_GET, loom__v1__get_reply__descriptor)
UNARY(list, Loom__V1__ListRequest, Loom__V1__ListReply, LOOM_METHOD_LIST, loom__v1__list_reply__descriptor)
UNARY(cancel, Loom__V1__CancelRequest, Loom__V1__CancelReply, LOOM_METHOD_CANCEL, loom__v1__cancel_reply__descriptor)
UNARY(retry, Loom__V1__RetryRequest, Loom__V1__SubmitReply, LOOM_METHOD_RETRY, loom__v1__submit_reply__descriptor)
UNARY(list_workers, Loom__V1__ListWorkersRequest, Loom__V1__ListWorkersReply, LOOM_METHOD_LIST_WORKERS, loom__v1__list_workers_reply__descriptor)
UNARY(health, Loom__V1__HealthRequest, Loom__V1__HealthReply, LOOM_METHOD_HEALTH, loom__v1__health_reply__descriptor)
UNARY(register, Loom__V1__RegisterRequest, Loom__V1__RegisterReply, LOOM_METHOD_REGISTER, loom__v1__register_reply__descriptor)
UNARY(heartbeat, Loom__V1__HeartbeatRequest, Loom__V1__HeartbeatReply, LOOM_METHOD_HEARTBEAT, loom__v1__heartbeat_reply__descriptor)
UNARY(result, Loom__V1__ResultRequest, Loom__V1__ResultReply, LOOM_METHOD_RESULT, loom__v1__result_reply__descriptor)
UNARY(progress, Loom__V1__ProgressRequest, Loom__V1__ProgressReply, LOOM_METHOD_PROGRESS, loom__v1__progress_reply__descriptor)

int loom_client_watch(loom_client_t *c, const Loom__V1__WatchRequest *req, int64_t timeout_ms,
                      loom_stream_t **out, loom_err_t *err)
{
    return loom_client_stream(c, LOOM_METHOD_WATCH, (const ProtobufCMessage *)req,
                              &loom__v1__run_event__descriptor, timeout_ms, out, err);
}
