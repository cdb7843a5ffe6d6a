/* rpc_server.c — ROUTER-side request intake and replies (see rpc_server.h). */
#include "protocol/rpc_server.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/sha.h"

/* Malformed messages answered per recv call before yielding to the poll
 * loop, so that a flood of garbage cannot starve other sockets. */
#define MAX_REJECTS_PER_CALL 64

struct loom_rpc_server {
    void *sock;
    loom_limits_t limits;
    char *auth_token;
    loom_rpc_auth_fn auth;
    void *auth_ud;
    char endpoint[256];
    uint64_t next_request_id;
    loom_rpc_server_stats_t stats;
    uint64_t last_auth_log_ms, auth_log_skipped;
};

loom_rpc_server_t *loom_rpc_server_new(void *zctx, const char *endpoint,
                                       const loom_rpc_server_opts_t *opts, loom_err_t *err)
{
    loom_rpc_server_opts_t none = {0};
    if (!opts)
        opts = &none;
    loom_rpc_server_t *s = calloc(1, sizeof *s);
    if (!s) {
        loom_err_set(err, LOOM_ENOMEM, "out of memory");
        return NULL;
    }
    s->limits = opts->limits;
    if (!s->limits.max_header || !s->limits.max_payload || !s->limits.max_decoded) {
        loom_limits_t d;
        loom_limits_default(&d);
        if (!s->limits.max_header) s->limits.max_header = d.max_header;
        if (!s->limits.max_payload) s->limits.max_payload = d.max_payload;
        if (!s->limits.max_decoded) s->limits.max_decoded = d.max_decoded;
    }
    s->auth = opts->auth;
    s->auth_ud = opts->auth_ud;
    s->next_request_id = 1;
    if (opts->auth_token && !(s->auth_token = strdup(opts->auth_token))) {
        loom_err_set(err, LOOM_ENOMEM, "out of memory");
        goto fail_alloc;
    }
    s->sock = zmq_socket(zctx, ZMQ_ROUTER);
    if (!s->sock) {
        loom_err_set(err, LOOM_EIO, "zmq_socket(ROUTER): %s", zmq_strerror(errno));
        goto fail_alloc;
    }
    if (loom_socket_setup(s->sock, &s->limits, err) != 0)
        goto fail_socket;
    if (opts->sndhwm > 0)
        zmq_setsockopt(s->sock, ZMQ_SNDHWM, &opts->sndhwm, sizeof opts->sndhwm);
    if (opts->curve_secret_key) {
        int one = 1;
        if (strlen(opts->curve_secret_key) != 40 ||
            zmq_setsockopt(s->sock, ZMQ_CURVE_SERVER, &one, sizeof one) != 0 ||
            zmq_setsockopt(s->sock, ZMQ_CURVE_SECRETKEY, opts->curve_secret_key, 41) != 0) {
            loom_err_set(err, LOOM_EINVAL, "cannot enable CURVE: %s",
                         strlen(opts->curve_secret_key) != 40 ? "secret key is not 40 Z85 characters"
                                                              : zmq_strerror(errno));
            goto fail_socket;
        }
    }
    if (opts->zap_domain &&
        zmq_setsockopt(s->sock, ZMQ_ZAP_DOMAIN, opts->zap_domain, strlen(opts->zap_domain)) != 0) {
        loom_err_set(err, LOOM_EINVAL, "cannot set the ZAP domain: %s", zmq_strerror(errno));
        goto fail_socket;
    }
    if (zmq_bind(s->sock, endpoint) != 0) {
        loom_err_set(err, LOOM_EIO, "cannot bind %s: %s", endpoint, zmq_strerror(errno));
        loom_err_hint(err, "is another loomd already listening there?");
        goto fail_socket;
    }
    size_t n = sizeof s->endpoint;
    if (zmq_getsockopt(s->sock, ZMQ_LAST_ENDPOINT, s->endpoint, &n) != 0)
        snprintf(s->endpoint, sizeof s->endpoint, "%s", endpoint);
    return s;

fail_socket:
    zmq_close(s->sock);
fail_alloc:
    free(s->auth_token);
    free(s);
    return NULL;
}

void loom_rpc_server_destroy(loom_rpc_server_t **ps)
{
    if (!ps || !*ps)
        return;
    loom_rpc_server_t *s = *ps;
    zmq_close(s->sock);
    free(s->auth_token);
    free(s);
    *ps = NULL;
}

void *loom_rpc_server_socket(loom_rpc_server_t *s) { return s->sock; }
const char *loom_rpc_server_endpoint(const loom_rpc_server_t *s) { return s->endpoint; }
const loom_rpc_server_stats_t *loom_rpc_server_stats(const loom_rpc_server_t *s) { return &s->stats; }
const loom_limits_t *loom_rpc_server_limits(const loom_rpc_server_t *s) { return &s->limits; }

int loom_rpc_send_reply(void *sock, const loom_origin_t *to, uint32_t flags, int status,
                        const char *message, const ProtobufCMessage *payload,
                        const Loom__V1__Error *error, loom_err_t *err)
{
    loom_send_t snd = {0};
    snd.peer = to->peer_len ? to->peer : NULL;
    snd.peer_len = to->peer_len;
    snd.request_id = to->request_id;
    snd.method = to->method;
    snd.flags = flags | LOOM_FLAG_REPLY;
    snd.status = status;
    snd.status_message = message;
    snd.payload = payload;
    snd.error = error;
    return loom_msg_send(sock, &snd, ZMQ_DONTWAIT, err);
}

static int counted(loom_rpc_server_t *s, int rc)
{
    if (rc != 0)
        s->stats.send_failed++;
    return rc;
}

int loom_rpc_reply(loom_rpc_server_t *s, const loom_origin_t *to, const ProtobufCMessage *reply,
                   loom_err_t *err)
{
    return counted(s, loom_rpc_send_reply(s->sock, to, 0, LOOM_STATUS_OK, NULL, reply, NULL, err));
}

int loom_rpc_reply_status(loom_rpc_server_t *s, const loom_origin_t *to, int status,
                          const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return counted(s, loom_rpc_send_reply(s->sock, to, 0, status, msg, NULL, NULL, NULL));
}

int loom_rpc_reply_err(loom_rpc_server_t *s, const loom_origin_t *to, const loom_err_t *e)
{
    Loom__V1__Error er = LOOM__V1__ERROR__INIT;
    char loc[600] = "";
    if (e->file[0] || e->field[0]) {
        if (e->file[0] && e->line)
            snprintf(loc, sizeof loc, "%s:%d:%d: %s", e->file, e->line, e->col, e->field);
        else
            snprintf(loc, sizeof loc, "%s%s%s", e->file, e->file[0] ? ": " : "", e->field);
    }
    int status = loom_status_from_err(e->code);
    if (status == LOOM_STATUS_OK)
        status = LOOM_STATUS_UNKNOWN;
    er.code = (Loom__V1__StatusCode)status;
    er.message = (char *)e->msg;
    er.detail = (char *)e->detail;
    er.hint = (char *)e->hint;
    er.location = loc;
    er.retryable = status == LOOM_STATUS_UNAVAILABLE;
    char line[1024];
    loom_err_format(e, line, sizeof line);
    return counted(s, loom_rpc_send_reply(s->sock, to, 0, status, line, NULL, &er, NULL));
}

int loom_rpc_stream_send(loom_rpc_server_t *s, const loom_origin_t *to,
                         const ProtobufCMessage *item, loom_err_t *err)
{
    return counted(s, loom_rpc_send_reply(s->sock, to, LOOM_FLAG_STREAM, LOOM_STATUS_OK, NULL,
                                          item, NULL, err));
}

int loom_rpc_stream_end(loom_rpc_server_t *s, const loom_origin_t *to, int status,
                        const char *message, loom_err_t *err)
{
    return counted(s, loom_rpc_send_reply(s->sock, to, LOOM_FLAG_END_OF_STREAM, status, message,
                                          NULL, NULL, err));
}

int loom_rpc_call_peer(loom_rpc_server_t *s, const uint8_t *peer, size_t peer_len,
                       const char *method, const ProtobufCMessage *req, int64_t deadline_ms,
                       uint32_t flags, uint64_t *request_id, loom_err_t *err)
{
    loom_send_t snd = {0};
    snd.peer = peer;
    snd.peer_len = peer_len;
    snd.request_id = s->next_request_id++;
    snd.method = method;
    snd.deadline_ms = deadline_ms;
    snd.flags = flags & (LOOM_FLAG_ONEWAY);
    snd.payload = req;
    if (request_id)
        *request_id = snd.request_id;
    return counted(s, loom_msg_send(s->sock, &snd, ZMQ_DONTWAIT, err));
}

/* Answers a rejected message when it is a request the peer waits on
 * (never answer a reply, a cancel or a one-way message: no loops). */
static void reject(loom_rpc_server_t *s, const loom_msg_t *m, int status, const char *why)
{
    const loom_origin_t *o = loom_msg_origin(m);
    uint32_t fl = loom_msg_flags(m);
    LOOM_DEBUG("rpc", "msg=\"rejected\" method=\"%s\" request_id=%llu status=%s why=\"%s\"",
               o->method, (unsigned long long)o->request_id, loom_status_name(status), why);
    if (o->peer_len == 0 || (fl & (LOOM_FLAG_REPLY | LOOM_FLAG_CANCEL | LOOM_FLAG_ONEWAY)))
        return;
    counted(s, loom_rpc_send_reply(s->sock, o, 0, status, why, NULL, NULL, NULL));
}

/* A request passes with the static token or a token the auth function
 * accepts (either is enough); the principal goes onto the message. */
static int check_auth(loom_rpc_server_t *s, loom_msg_t *m, char *why, size_t n)
{
    const char *tok = loom_msg_meta(m, "authorization");
    if (s->auth_token && tok) {
        size_t want = strlen(s->auth_token);
        if (strlen(tok) == want &&
            loom_digest_equal((const uint8_t *)tok, (const uint8_t *)s->auth_token, want)) {
            loom_principal_t op = {.subject = "static-token", .tenant = "default", .role = "admin"};
            loom_msg_set_principal(m, &op);
            return 0;
        }
    }
    if (s->auth) {
        loom_err_t e;
        loom_principal_t who;
        memset(&who, 0, sizeof who);
        loom_err_clear(&e);
        if (s->auth(s->auth_ud, tok, m, &who, &e) == 0) {
            loom_msg_set_principal(m, &who);
            return 0;
        }
        snprintf(why, n, "%s", e.msg[0] ? e.msg : "not authenticated");
        return -1;
    }
    snprintf(why, n, "%s", tok ? "invalid auth token" : "missing auth token (metadata 'authorization')");
    return -1;
}

/* Refused requests are logged (who tried, why), at most one line a second
 * with a count of those not logged, so a flood cannot fill the disk. */
static void log_unauthenticated(loom_rpc_server_t *s, const loom_msg_t *m, const char *why)
{
    uint64_t now = loom_clock_ms();
    if (now - s->last_auth_log_ms < 1000 && s->last_auth_log_ms) {
        s->auth_log_skipped++;
        return;
    }
    char peer[64] = "-";
    const char *key = loom_msg_peer_key(m);
    LOOM_WARN("rpc", "msg=\"request refused: UNAUTHENTICATED\" method=\"%s\" why=\"%s\" key=%s "
                     "endpoint=%s not_logged=%llu",
              loom_msg_method(m), why, key[0] ? key : peer, s->endpoint,
              (unsigned long long)s->auth_log_skipped);
    s->auth_log_skipped = 0;
    s->last_auth_log_ms = now;
}

int loom_rpc_server_recv(loom_rpc_server_t *s, loom_msg_t **out, loom_err_t *err)
{
    *out = NULL;
    for (int rejects = 0; rejects < MAX_REJECTS_PER_CALL; rejects++) {
        loom_msg_t *m = NULL;
        loom_err_t e;
        int rc = loom_msg_recv(s->sock, 1, &s->limits, ZMQ_DONTWAIT, &m, &e);
        if (rc <= 0) {
            if (rc < 0 && err)
                *err = e;
            return rc;
        }
        s->stats.received++;
        int st = loom_msg_status(m);
        if (st != LOOM_STATUS_OK) {
            s->stats.malformed++;
            reject(s, m, st, loom_msg_error(m));
            loom_msg_destroy(&m);
            continue;
        }
        uint32_t fl = loom_msg_flags(m);
        if (!(fl & (LOOM_FLAG_REPLY | LOOM_FLAG_CANCEL))) {
            char why[300];
            if ((s->auth_token || s->auth) && check_auth(s, m, why, sizeof why) != 0) {
                s->stats.unauthenticated++;
                log_unauthenticated(s, m, why);
                reject(s, m, LOOM_STATUS_UNAUTHENTICATED, why);
                loom_msg_destroy(&m);
                continue;
            }
            int64_t dl = loom_msg_deadline_ms(m);
            if (dl > 0 && dl <= loom_wall_ms()) {
                s->stats.expired++;
                reject(s, m, LOOM_STATUS_DEADLINE_EXCEEDED, "deadline passed before the request arrived");
                loom_msg_destroy(&m);
                continue;
            }
            if (loom_msg_method(m)[0] == '\0') {
                s->stats.malformed++;
                reject(s, m, LOOM_STATUS_INVALID_ARGUMENT, "request without a method name");
                loom_msg_destroy(&m);
                continue;
            }
        }
        *out = m;
        return 1;
    }
    return 0;
}
