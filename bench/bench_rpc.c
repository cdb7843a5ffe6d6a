/* bench_rpc.c — cost of Loom's RPC layer over raw ZeroMQ, measured in the
 * same run on the same loopback TCP connection shape (DEALER -> ROUTER, a
 * server thread). Loom adds: envelope encode/decode, protobuf payloads,
 * bounded decoding, metadata, deadline and auth checks.
 *
 *   bench_rpc [--quick] [--json]
 *
 * Rows: small unary call (Health vs a raw echo of the same bytes), 64 KiB
 * unary request (Submit vs raw), and server streaming (Watch RunEvents vs
 * raw frames of the same size). Ratio = loom / raw throughput. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "common/clock.h"
#include "protocol/client.h"
#include "protocol/rpc_server.h"

#define REPS 5

typedef struct srv_arg {
    void *ctx;
    char endpoint[128];
    int loom;            /* 1 = loom rpc server, 0 = raw echo */
    int stream_items;    /* items per Watch / raw stream request */
    volatile int ready, stop;
} srv_arg_t;

static void *raw_server(void *p)
{
    srv_arg_t *a = p;
    void *s = zmq_socket(a->ctx, ZMQ_ROUTER);
    int one = 1, hwm = 100000;
    zmq_setsockopt(s, ZMQ_ROUTER_MANDATORY, &one, sizeof one); /* block at HWM, never drop */
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_bind(s, "tcp://127.0.0.1:*");
    size_t n = sizeof a->endpoint;
    zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, a->endpoint, &n);
    a->ready = 1;
    char id[256];
    static char buf[1 << 17];
    static const char ev[64] = {0};
    while (!a->stop) {
        zmq_pollitem_t it = {s, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 50) <= 0)
            continue;
        int il = zmq_recv(s, id, sizeof id, 0);
        int bl = zmq_recv(s, buf, sizeof buf, 0);
        if (bl > 0 && buf[0] == 'S') { /* stream request */
            for (int i = 0; i < a->stream_items; i++) {
                zmq_send(s, id, (size_t)il, ZMQ_SNDMORE);
                zmq_send(s, ev, sizeof ev, 0);
            }
            zmq_send(s, id, (size_t)il, ZMQ_SNDMORE);
            zmq_send(s, "E", 1, 0);
        } else {
            zmq_send(s, id, (size_t)il, ZMQ_SNDMORE);
            zmq_send(s, "ok-reply-0123456789", 19, 0);
        }
    }
    zmq_close(s);
    return NULL;
}

static void *loom_server(void *p)
{
    srv_arg_t *a = p;
    loom_rpc_server_opts_t o = {.auth_token = "bench-token", .sndhwm = 100000};
    loom_rpc_server_t *srv = loom_rpc_server_new(a->ctx, "tcp://127.0.0.1:*", &o, NULL);
    snprintf(a->endpoint, sizeof a->endpoint, "%s", loom_rpc_server_endpoint(srv));
    a->ready = 1;
    while (!a->stop) {
        zmq_pollitem_t it = {loom_rpc_server_socket(srv), 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 50) <= 0)
            continue;
        loom_msg_t *m;
        while (loom_rpc_server_recv(srv, &m, NULL) == 1) {
            loom_origin_t to = *loom_msg_origin(m);
            const char *meth = loom_msg_method(m);
            if (strcmp(meth, LOOM_METHOD_HEALTH) == 0) {
                Loom__V1__HealthReply r = LOOM__V1__HEALTH_REPLY__INIT;
                r.status = "SERVING";
                loom_rpc_reply(srv, &to, &r.base, NULL);
            } else if (strcmp(meth, LOOM_METHOD_SUBMIT) == 0) {
                Loom__V1__SubmitRequest *rq;
                if (loom_msg_unpack(m, &loom__v1__submit_request__descriptor, NULL,
                                    (ProtobufCMessage **)&rq, NULL) == 0) {
                    Loom__V1__SubmitReply r = LOOM__V1__SUBMIT_REPLY__INIT;
                    r.run_id = "run-0123456789";
                    loom_rpc_reply(srv, &to, &r.base, NULL);
                    loom_pb_free(rq);
                }
            } else if (strcmp(meth, LOOM_METHOD_WATCH) == 0) {
                Loom__V1__RunEvent ev = LOOM__V1__RUN_EVENT__INIT;
                ev.run_id = "run-0123456789";
                ev.kind = LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_STEP_FINISHED;
                ev.step_id = "answer";
                ev.message = "step finished";
                for (int i = 0; i < a->stream_items; i++) {
                    ev.seq = (uint64_t)i + 1;
                    ev.elapsed_ms = i;
                    loom_err_t e;
                    /* Queue full: wait for the client to read (a real
                     * server would drop a peer that is gone instead). */
                    while (loom_rpc_stream_send(srv, &to, &ev.base, &e) != 0 && !a->stop)
                        loom_sleep_ms(0);
                }
                /* The end must not be lost to a full queue (HWM) either. */
                for (int tries = 0; tries < 100000; tries++)
                    if (loom_rpc_stream_end(srv, &to, LOOM_STATUS_OK, NULL, NULL) == 0)
                        break;
            }
            loom_msg_destroy(&m);
        }
    }
    loom_rpc_server_destroy(&srv);
    return NULL;
}

static int start(srv_arg_t *a, pthread_t *t)
{
    a->ready = 0;
    a->stop = 0;
    pthread_create(t, NULL, a->loom ? loom_server : raw_server, a);
    while (!a->ready)
        loom_sleep_ms(1);
    return 0;
}

static void stop_srv(srv_arg_t *a, pthread_t t)
{
    a->stop = 1;
    pthread_join(t, NULL);
}

/* Raw: n round trips of req_bytes; returns calls/s. */
static double raw_unary(void *ctx, const char *ep, int n, size_t req_bytes)
{
    void *d = zmq_socket(ctx, ZMQ_DEALER);
    zmq_connect(d, ep);
    char *req = calloc(1, req_bytes);
    req[0] = 'U';
    char rep[64];
    uint64_t t0 = loom_clock_ns();
    for (int i = 0; i < n; i++) {
        zmq_send(d, req, req_bytes, 0);
        zmq_recv(d, rep, sizeof rep, 0);
    }
    double s = (double)(loom_clock_ns() - t0) / 1e9;
    free(req);
    zmq_close(d);
    return n / s;
}

static double raw_stream(void *ctx, const char *ep)
{
    void *d = zmq_socket(ctx, ZMQ_DEALER);
    int hwm = 100000, tmo = 20000;
    zmq_setsockopt(d, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(d, ZMQ_RCVTIMEO, &tmo, sizeof tmo);
    zmq_connect(d, ep);
    char buf[256];
    uint64_t t0 = loom_clock_ns();
    zmq_send(d, "S", 1, 0);
    int got = 0;
    for (;;) {
        int r = zmq_recv(d, buf, sizeof buf, 0);
        if (r < 0 || (r == 1 && buf[0] == 'E'))
            break;
        got++;
    }
    double s = (double)(loom_clock_ns() - t0) / 1e9;
    zmq_close(d);
    return got / s;
}

static double loom_unary(void *ctx, const char *ep, int n, size_t req_bytes)
{
    loom_client_opts_t o = {.auth_token = "bench-token", .zctx = ctx};
    loom_client_t *c = loom_client_new(ep, &o, NULL);
    char *yaml = NULL;
    if (req_bytes) {
        yaml = malloc(req_bytes + 1);
        memset(yaml, 'y', req_bytes);
        yaml[req_bytes] = 0;
    }
    uint64_t t0 = loom_clock_ns();
    for (int i = 0; i < n; i++) {
        loom_err_t err;
        if (!req_bytes) {
            Loom__V1__HealthRequest rq = LOOM__V1__HEALTH_REQUEST__INIT;
            Loom__V1__HealthReply *rp;
            if (loom_client_health(c, &rq, 5000, &rp, &err) != 0) {
                fprintf(stderr, "bench_rpc: %s\n", err.msg);
                exit(1);
            }
            loom_pb_free(rp);
        } else {
            Loom__V1__SubmitRequest rq = LOOM__V1__SUBMIT_REQUEST__INIT;
            rq.workflow_yaml = yaml;
            Loom__V1__SubmitReply *rp;
            if (loom_client_submit(c, &rq, 5000, &rp, &err) != 0) {
                fprintf(stderr, "bench_rpc: %s\n", err.msg);
                exit(1);
            }
            loom_pb_free(rp);
        }
    }
    double s = (double)(loom_clock_ns() - t0) / 1e9;
    free(yaml);
    loom_client_destroy(&c);
    return n / s;
}

static double loom_stream(void *ctx, const char *ep, int items)
{
    loom_client_opts_t o = {.auth_token = "bench-token", .zctx = ctx};
    loom_client_t *c = loom_client_new(ep, &o, NULL);
    int hwm = 100000;
    zmq_setsockopt(loom_client_socket(c), ZMQ_RCVHWM, &hwm, sizeof hwm);
    Loom__V1__WatchRequest rq = LOOM__V1__WATCH_REQUEST__INIT;
    rq.run_id = "run-0123456789";
    loom_stream_t *s;
    uint64_t t0 = loom_clock_ns();
    loom_client_watch(c, &rq, 60000, &s, NULL);
    ProtobufCMessage *ev;
    int got = 0;
    while (loom_stream_next(s, -1, &ev, NULL) == LOOM_STREAM_ITEM) {
        got++;
        loom_pb_free(ev);
    }
    double secs = (double)(loom_clock_ns() - t0) / 1e9;
    if (got != items || loom_stream_status(s) != LOOM_STATUS_OK)
        fprintf(stderr, "bench_rpc: stream got %d of %d items (%s)\n", got, items,
                loom_status_name(loom_stream_status(s)));
    loom_stream_destroy(&s);
    loom_client_destroy(&c);
    return got / secs;
}

int main(int argc, char **argv)
{
    int quick = 0, json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) quick = 1;
        else if (strcmp(argv[i], "--json") == 0) json = 1;
        else if (strcmp(argv[i], "--help") == 0) {
            printf("usage: bench_rpc [--quick] [--json]\n"
                   "Throughput of Loom RPC (libloom_client + rpc_server) vs raw ZeroMQ on loopback.\n");
            return 0;
        } else {
            fprintf(stderr, "bench_rpc: unknown argument '%s'\n", argv[i]);
            return 2;
        }
    }
    int n_small = quick ? 1000 : 5000, n_big = quick ? 200 : 1000, items = quick ? 20000 : 100000;
    void *ctx = zmq_ctx_new();
    /* Both servers run side by side; each case alternates raw and Loom and
     * keeps the best of REPS rounds, so a burst of load on the shared
     * machine hurts both sides alike and rarely decides the ratio. */
    srv_arg_t raw = {.ctx = ctx, .stream_items = items, .loom = 0};
    srv_arg_t lm = {.ctx = ctx, .stream_items = items, .loom = 1};
    pthread_t traw, tlm;
    start(&raw, &traw);
    start(&lm, &tlm);
    double r[3][2] = {{0}};
    for (int rep = 0; rep < REPS; rep++) {
        double v[3][2];
        v[0][0] = raw_unary(ctx, raw.endpoint, n_small, 24);
        v[0][1] = loom_unary(ctx, lm.endpoint, n_small, 0);
        v[1][0] = raw_unary(ctx, raw.endpoint, n_big, 64 * 1024);
        v[1][1] = loom_unary(ctx, lm.endpoint, n_big, 64 * 1024);
        v[2][0] = raw_stream(ctx, raw.endpoint);
        v[2][1] = loom_stream(ctx, lm.endpoint, items);
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 2; j++)
                if (v[i][j] > r[i][j])
                    r[i][j] = v[i][j];
    }
    stop_srv(&raw, traw);
    stop_srv(&lm, tlm);
    const char *names[3] = {"unary small (Health)", "unary 64 KiB (Submit)", "stream (Watch RunEvent)"};
    const char *keys[3] = {"unary_small", "unary_64k", "stream"};
    if (json) {
        printf("{");
        for (int i = 0; i < 3; i++)
            printf("%s\"%s\":{\"loom_per_s\":%.0f,\"raw_per_s\":%.0f,\"ratio\":%.3f}", i ? "," : "",
                   keys[i], r[i][1], r[i][0], r[i][1] / r[i][0]);
        printf("}\n");
    } else {
        printf("bench-rpc: Loom RPC vs raw ZeroMQ DEALER/ROUTER, loopback TCP, best of %d rounds\n", REPS);
        printf("%-26s %14s %14s %8s %12s\n", "case", "loom /s", "raw zmq /s", "ratio", "loom us/op");
        for (int i = 0; i < 3; i++)
            printf("%-26s %14.0f %14.0f %8.2f %12.1f\n", names[i], r[i][1], r[i][0],
                   r[i][1] / r[i][0], 1e6 / r[i][1]);
    }
    zmq_ctx_term(ctx);
    return 0;
}
