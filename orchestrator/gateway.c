/* gateway.c — the HTTP gateway's RPC thread. See gateway.h. */
#include "orchestrator/gateway.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <zmq.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/map.h"
#include "protocol/methods.h"
#include "protocol/pb_json.h"
#include "protocol/status.h"

#define TICK_MS 1000

typedef struct gw_call {
    uint64_t id;
    loom_gateway_call_t c; /* method points at a literal; auth_token is ours */
    uint64_t deadline_mono; /* 0 = none */
    struct gw_call *next;   /* submission queue */
} gw_call_t;

struct loom_gateway {
    pthread_t thread;
    int started, wake_fd;
    void (*tick)(void *);
    void *tick_ud;
    _Atomic uint64_t in_flight;
    /* Shared with the HTTP threads, under mu. */
    pthread_mutex_t mu;
    int stopping;
    uint64_t next_id;
    gw_call_t *queue_head, *queue_tail; /* new calls */
    uint64_t *cancels;                  /* ids to cancel */
    size_t n_cancels, cap_cancels;
    char endpoint[256];
    int endpoint_changed;
    char curve_pub[41], curve_sec[41]; /* secure mode: loomd's own key pair ("" = plain) */
    /* Gateway thread only. */
    void *zctx, *sock;
    loom_limits_t limits;
    loom_map_t *calls; /* "id" -> gw_call_t */
    uint64_t next_deadline; /* earliest deadline_mono among calls (0 = none known) */
};

static void key_of(uint64_t id, char out[24]) { snprintf(out, 24, "%" PRIu64, id); }

static void wake(loom_gateway_t *g) {
    uint64_t one = 1;
    ssize_t w = write(g->wake_fd, &one, sizeof one);
    (void)w;
}

static void finish(loom_gateway_t *g, gw_call_t *k, int status, const char *msg,
                   const Loom__V1__Error *error, ProtobufCMessage *reply) {
    k->c.done(k->c.ud, status, msg, error, reply);
    loom_pb_json_free(k->c.request);
    free((char *)k->c.auth_token);
    free(k);
    atomic_fetch_sub(&g->in_flight, 1);
}

/* ---- gateway thread -------------------------------------------------------- */

static int send_msg(loom_gateway_t *g, gw_call_t *k, uint32_t flags) {
    const char *keys[1] = {"authorization"}, *vals[1] = {k->c.auth_token};
    loom_send_t s = {0};
    s.request_id = k->id;
    s.method = k->c.method;
    s.flags = flags;
    if (!flags) {
        s.deadline_ms = k->c.timeout_ms > 0 ? loom_wall_ms() + k->c.timeout_ms : 0;
        s.payload = k->c.request;
        s.meta_keys = keys;
        s.meta_values = vals;
        s.n_meta = k->c.auth_token ? 1 : 0;
    }
    return loom_msg_send(g->sock, &s, ZMQ_DONTWAIT, NULL);
}

static void forget(loom_gateway_t *g, gw_call_t *k) {
    char key[24];
    key_of(k->id, key);
    loom_map_del(g->calls, key);
}

static void connect_endpoint(loom_gateway_t *g, const char *ep, const char *pub,
                             const char *sec) {
    if (g->sock) zmq_close(g->sock);
    g->sock = zmq_socket(g->zctx, ZMQ_DEALER);
    if (!g->sock) return;
    loom_socket_setup(g->sock, &g->limits, NULL);
    /* secure mode: CURVE with loomd's own pair, the server key being its
     * public half (zap.c admits that key as a client) */
    if (pub[0] && (zmq_setsockopt(g->sock, ZMQ_CURVE_SERVERKEY, pub, 40) != 0 ||
                   zmq_setsockopt(g->sock, ZMQ_CURVE_PUBLICKEY, pub, 40) != 0 ||
                   zmq_setsockopt(g->sock, ZMQ_CURVE_SECRETKEY, sec, 40) != 0)) {
        LOOM_ERROR("gateway", "msg=\"cannot set up CURVE\" error=\"%s\"", zmq_strerror(errno));
        zmq_close(g->sock);
        g->sock = NULL;
        return;
    }
    int hwm = 100000;
    zmq_setsockopt(g->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(g->sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    char url[300];
    const char *star = strstr(ep, "://*:"), *any = strstr(ep, "://0.0.0.0:");
    if (star) snprintf(url, sizeof url, "%.*s://127.0.0.1:%s", (int)(star - ep), ep, star + 5);
    else if (any) snprintf(url, sizeof url, "%.*s://127.0.0.1:%s", (int)(any - ep), ep, any + 11);
    else snprintf(url, sizeof url, "%s", ep);
    if (zmq_connect(g->sock, url) != 0) {
        LOOM_WARN("gateway", "msg=\"cannot connect\" endpoint=%s error=\"%s\"", url,
                  zmq_strerror(errno));
        zmq_close(g->sock);
        g->sock = NULL;
    }
}

/* Takes new calls and cancels from the HTTP threads. */
static void take_submissions(loom_gateway_t *g) {
    uint64_t n;
    ssize_t r = read(g->wake_fd, &n, sizeof n);
    (void)r;
    pthread_mutex_lock(&g->mu);
    gw_call_t *list = g->queue_head;
    g->queue_head = g->queue_tail = NULL;
    uint64_t cancels[256];
    size_t nc = g->n_cancels < 256 ? g->n_cancels : 256;
    if (nc) { /* (g->cancels is NULL until the first cancel: no memcpy from NULL) */
        memcpy(cancels, g->cancels, nc * sizeof *cancels);
        memmove(g->cancels, g->cancels + nc, (g->n_cancels - nc) * sizeof *cancels);
        g->n_cancels -= nc;
    }
    if (g->n_cancels) wake(g); /* more next turn */
    char ep[256] = "", pub[41], sec[41];
    if (g->endpoint_changed) {
        snprintf(ep, sizeof ep, "%s", g->endpoint);
        g->endpoint_changed = 0;
    }
    memcpy(pub, g->curve_pub, sizeof pub);
    memcpy(sec, g->curve_sec, sizeof sec);
    pthread_mutex_unlock(&g->mu);
    if (ep[0]) connect_endpoint(g, ep, pub, sec);
    while (list) {
        gw_call_t *k = list;
        list = k->next;
        if (!g->sock) {
            finish(g, k, LOOM_STATUS_UNAVAILABLE, "loomd's client endpoint is not bound yet", NULL,
                   NULL);
            continue;
        }
        char key[24];
        key_of(k->id, key);
        if (loom_map_put(g->calls, key, k) != 0) {
            finish(g, k, LOOM_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL, NULL);
            continue;
        }
        if (send_msg(g, k, 0) != 0) {
            forget(g, k);
            finish(g, k, LOOM_STATUS_UNAVAILABLE, "cannot send to loomd (queue full)", NULL, NULL);
            continue;
        }
        if (k->deadline_mono && (!g->next_deadline || k->deadline_mono < g->next_deadline))
            g->next_deadline = k->deadline_mono;
    }
    for (size_t i = 0; i < nc; i++) {
        char key[24];
        key_of(cancels[i], key);
        gw_call_t *k = loom_map_get(g->calls, key);
        if (!k) continue; /* already over */
        send_msg(g, k, LOOM_FLAG_CANCEL);
        forget(g, k);
        finish(g, k, LOOM_STATUS_CANCELLED, "cancelled by the client", NULL, NULL);
    }
}

/* Files one message from loomd. */
static void on_message(loom_gateway_t *g, loom_msg_t *m) {
    char key[24];
    key_of(loom_msg_request_id(m), key);
    gw_call_t *k = loom_map_get(g->calls, key);
    if (!k || !loom_msg_is_reply(m)) return; /* late (cancelled, timed out) or not for us */
    const Loom__V1__Envelope *env = loom_msg_envelope(m);
    int status = loom_msg_status(m);
    if (status != LOOM_STATUS_OK) { /* did not decode: a reply too big, garbage */
        forget(g, k);
        finish(g, k, status, loom_msg_error(m), NULL, NULL);
        return;
    }
    status = loom_msg_reply_status(m);
    int item = (loom_msg_flags(m) & LOOM_FLAG_STREAM) && status == LOOM_STATUS_OK;
    if (status != LOOM_STATUS_OK || (k->c.stream && !item)) { /* failure or end of stream */
        forget(g, k);
        finish(g, k, status, loom_msg_reply_message(m), env ? env->error : NULL, NULL);
        return;
    }
    ProtobufCMessage *msg = NULL;
    loom_err_t err = {0};
    int st = loom_msg_unpack(m, k->c.answer, &g->limits, &msg, &err);
    if (st != LOOM_STATUS_OK) {
        if (k->c.stream) send_msg(g, k, LOOM_FLAG_CANCEL);
        forget(g, k);
        finish(g, k, st, err.msg, NULL, NULL);
        return;
    }
    if (k->c.stream) {
        k->c.item(k->c.ud, msg);
        return;
    }
    forget(g, k);
    finish(g, k, LOOM_STATUS_OK, "", NULL, msg);
}

/* Ends calls past their deadline; returns ms to the next deadline (at most
 * TICK_MS). Walks the calls only when the earliest deadline has come. */
static long expire(loom_gateway_t *g) {
    uint64_t now = loom_clock_ms(), next = now + TICK_MS;
    if (!g->next_deadline || g->next_deadline > now)
        return g->next_deadline && g->next_deadline < next ? (long)(g->next_deadline - now)
                                                           : TICK_MS;
    g->next_deadline = 0;
    size_t it = 0;
    const char *key;
    void *v;
    while (loom_map_next(g->calls, &it, &key, &v)) {
        gw_call_t *k = v;
        if (!k->deadline_mono) continue;
        if (k->deadline_mono <= now) {
            send_msg(g, k, LOOM_FLAG_CANCEL);
            loom_map_del(g->calls, key); /* allowed for the current key */
            finish(g, k, LOOM_STATUS_DEADLINE_EXCEEDED, "deadline passed", NULL, NULL);
        } else if (!g->next_deadline || k->deadline_mono < g->next_deadline) {
            g->next_deadline = k->deadline_mono;
        }
    }
    if (g->next_deadline && g->next_deadline < next) next = g->next_deadline;
    return (long)(next - now);
}

static void *gateway_main(void *arg) {
    loom_gateway_t *g = arg;
    uint64_t next_tick = loom_clock_ms() + TICK_MS;
    for (;;) {
        long wait = expire(g);
        uint64_t now = loom_clock_ms();
        if (now >= next_tick) {
            if (g->tick) g->tick(g->tick_ud);
            next_tick = now + TICK_MS;
        }
        if ((long)(next_tick - now) < wait) wait = (long)(next_tick - now);
        zmq_pollitem_t items[2] = {{NULL, g->wake_fd, ZMQ_POLLIN, 0}, {g->sock, 0, ZMQ_POLLIN, 0}};
        int rc = zmq_poll(items, g->sock ? 2 : 1, wait);
        if (rc < 0 && errno != EINTR) {
            LOOM_ERROR("gateway", "msg=\"zmq_poll failed\" error=\"%s\"", zmq_strerror(errno));
            break;
        }
        pthread_mutex_lock(&g->mu);
        int stopping = g->stopping;
        pthread_mutex_unlock(&g->mu);
        if (stopping) break;
        if (rc > 0 && (items[0].revents & ZMQ_POLLIN)) take_submissions(g);
        /* Drain what loomd sent, a bounded batch per turn. */
        for (int i = 0; g->sock && i < 1024; i++) {
            loom_msg_t *m = NULL;
            if (loom_msg_recv(g->sock, 0, &g->limits, ZMQ_DONTWAIT, &m, NULL) <= 0) break;
            on_message(g, m);
            loom_msg_destroy(&m);
        }
    }
    /* Stopping: end everything still open or queued. */
    size_t it = 0;
    const char *key;
    void *v;
    while (loom_map_next(g->calls, &it, &key, &v)) {
        gw_call_t *k = v;
        send_msg(g, k, LOOM_FLAG_CANCEL);
        loom_map_del(g->calls, key);
        finish(g, k, LOOM_STATUS_UNAVAILABLE, "loomd is shutting down", NULL, NULL);
    }
    pthread_mutex_lock(&g->mu);
    gw_call_t *list = g->queue_head;
    g->queue_head = g->queue_tail = NULL;
    pthread_mutex_unlock(&g->mu);
    while (list) {
        gw_call_t *k = list;
        list = k->next;
        finish(g, k, LOOM_STATUS_UNAVAILABLE, "loomd is shutting down", NULL, NULL);
    }
    return NULL;
}

/* ---- any thread ------------------------------------------------------------ */

loom_gateway_t *loom_gateway_new(void (*tick)(void *), void *tick_ud, loom_err_t *err) {
    loom_gateway_t *g = calloc(1, sizeof *g);
    if (!g) {
        loom_err_set(err, LOOM_ENOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&g->mu, NULL);
    g->tick = tick;
    g->tick_ud = tick_ud;
    g->next_id = 1;
    loom_limits_default(&g->limits);
    g->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    g->zctx = zmq_ctx_new();
    g->calls = loom_map_new(NULL);
    if (g->wake_fd < 0 || !g->zctx || !g->calls ||
        pthread_create(&g->thread, NULL, gateway_main, g) != 0) {
        loom_err_set(err, LOOM_EIO, "cannot start the HTTP gateway thread");
        loom_gateway_destroy(&g);
        return NULL;
    }
    g->started = 1;
    return g;
}

int loom_gateway_set_curve(loom_gateway_t *g, const char *secret_key) {
    char pub[41];
    if (!secret_key || zmq_curve_public(pub, secret_key) != 0) return LOOM_EINVAL;
    pthread_mutex_lock(&g->mu);
    memcpy(g->curve_pub, pub, sizeof pub);
    snprintf(g->curve_sec, sizeof g->curve_sec, "%s", secret_key);
    pthread_mutex_unlock(&g->mu);
    return 0;
}

void loom_gateway_set_endpoint(loom_gateway_t *g, const char *endpoint) {
    pthread_mutex_lock(&g->mu);
    snprintf(g->endpoint, sizeof g->endpoint, "%s", endpoint);
    g->endpoint_changed = 1;
    pthread_mutex_unlock(&g->mu);
    wake(g);
}

uint64_t loom_gateway_call(loom_gateway_t *g, const loom_gateway_call_t *call) {
    gw_call_t *k = calloc(1, sizeof *k);
    char *tok = call->auth_token ? strdup(call->auth_token) : NULL;
    if (!k || (call->auth_token && !tok)) {
        free(k);
        free(tok);
        call->done(call->ud, LOOM_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL, NULL);
        loom_pb_json_free(call->request);
        return 0;
    }
    k->c = *call;
    k->c.auth_token = tok;
    k->deadline_mono = call->timeout_ms > 0 ? loom_clock_ms() + (uint64_t)call->timeout_ms : 0;
    atomic_fetch_add(&g->in_flight, 1);
    pthread_mutex_lock(&g->mu);
    if (g->stopping || !g->started) {
        pthread_mutex_unlock(&g->mu);
        finish(g, k, LOOM_STATUS_UNAVAILABLE, "loomd is shutting down", NULL, NULL);
        return 0;
    }
    k->id = g->next_id++;
    if (g->queue_tail) g->queue_tail->next = k;
    else g->queue_head = k;
    g->queue_tail = k;
    uint64_t id = k->id;
    pthread_mutex_unlock(&g->mu);
    wake(g);
    return id;
}

void loom_gateway_cancel(loom_gateway_t *g, uint64_t id) {
    if (!id) return;
    pthread_mutex_lock(&g->mu);
    if (!g->stopping && g->n_cancels == g->cap_cancels) {
        size_t cap = g->cap_cancels ? g->cap_cancels * 2 : 64;
        uint64_t *n = realloc(g->cancels, cap * sizeof *n);
        if (n) {
            g->cancels = n;
            g->cap_cancels = cap;
        }
    }
    if (!g->stopping && g->n_cancels < g->cap_cancels) g->cancels[g->n_cancels++] = id;
    pthread_mutex_unlock(&g->mu);
    wake(g);
}

void loom_gateway_stop(loom_gateway_t *g) {
    if (!g) return;
    pthread_mutex_lock(&g->mu);
    g->stopping = 1;
    int started = g->started;
    g->started = 0;
    pthread_mutex_unlock(&g->mu);
    if (started) {
        wake(g);
        pthread_join(g->thread, NULL);
    }
}

uint64_t loom_gateway_in_flight(const loom_gateway_t *g) {
    return g ? atomic_load(&((loom_gateway_t *)g)->in_flight) : 0;
}

void loom_gateway_destroy(loom_gateway_t **pg) {
    if (!pg || !*pg) return;
    loom_gateway_t *g = *pg;
    loom_gateway_stop(g);
    if (g->sock) zmq_close(g->sock);
    if (g->zctx) zmq_ctx_term(g->zctx);
    if (g->wake_fd >= 0) close(g->wake_fd);
    loom_map_destroy(&g->calls);
    free(g->cancels);
    pthread_mutex_destroy(&g->mu);
    free(g);
    *pg = NULL;
}
