/* envelope.c — encode/decode of Loom's multipart ZeroMQ messages with
 * bounded memory (see envelope.h for the framing). */
#include "protocol/envelope.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

/* The decoded header may use at most this much memory (the header frame is
 * at most max_header bytes; protobuf-c needs a small multiple of that). */
#define HEADER_DECODE_BUDGET (1u * 1024 * 1024)
/* Frames loom_msg_recv keeps; further parts are counted and dropped. */
#define KEEP_FRAMES 4

struct loom_msg {
    loom_origin_t origin;
    Loom__V1__Envelope *env; /* NULL when the header did not decode */
    uint8_t *payload;        /* malloc'd copy, or the data of zpayload; NULL when none */
    size_t payload_len;
    int has_zpayload;        /* payload lives in zpayload (zero-copy from loom_msg_recv) */
    zmq_msg_t zpayload;
    int status;              /* decode outcome */
    char error[256];
    char peer_key[41];       /* the sender's CURVE public key (ZAP User-Id), "" in plain mode */
    int has_principal;
    loom_principal_t principal; /* set by the server's auth check */
};

void loom_limits_default(loom_limits_t *l)
{
    l->max_header = LOOM_DEFAULT_MAX_HEADER;
    l->max_payload = LOOM_DEFAULT_MAX_PAYLOAD;
    l->max_decoded = LOOM_DEFAULT_MAX_DECODED;
}

static const loom_limits_t *limits_or_default(const loom_limits_t *lim, loom_limits_t *tmp)
{
    if (lim)
        return lim;
    loom_limits_default(tmp);
    return tmp;
}

/* ---- bounded protobuf-c allocator ------------------------------------------
 * Each block carries a 16-byte header so that free needs no state; the
 * budget only lives for the duration of one unpack. */
typedef struct budget {
    size_t used, limit;
    int exceeded;
} budget_t;

#define BLOCK_HDR 16

static void *budget_alloc(void *data, size_t n)
{
    budget_t *b = data;
    if (n > b->limit || b->limit - n < b->used + BLOCK_HDR) {
        b->exceeded = 1;
        return NULL;
    }
    unsigned char *p = malloc(n + BLOCK_HDR);
    if (!p)
        return NULL;
    b->used += n + BLOCK_HDR;
    return p + BLOCK_HDR;
}

static void budget_free(void *data, void *ptr)
{
    (void)data;
    if (ptr)
        free((unsigned char *)ptr - BLOCK_HDR);
}

static ProtobufCAllocator free_only = {budget_alloc, budget_free, NULL};

int loom_pb_unpack(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                   size_t max_decoded, ProtobufCMessage **out, loom_err_t *err)
{
    *out = NULL;
    budget_t b = {0, max_decoded ? max_decoded : LOOM_DEFAULT_MAX_DECODED, 0};
    ProtobufCAllocator a = {budget_alloc, budget_free, &b};
    static const uint8_t empty[1];
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, &a, len, data ? data : empty);
    if (!m) {
        if (b.exceeded) {
            loom_err_set(err, LOOM_ETOOBIG, "%s would need more than %zu bytes to decode",
                         desc->name, b.limit);
            return LOOM_STATUS_RESOURCE_EXHAUSTED;
        }
        loom_err_set(err, LOOM_EPARSE, "%s: truncated or malformed protobuf (%zu bytes)",
                     desc->name, len);
        return LOOM_STATUS_INVALID_ARGUMENT;
    }
    *out = m;
    return LOOM_STATUS_OK;
}

void loom_pb_free(void *msg)
{
    if (msg)
        protobuf_c_message_free_unpacked(msg, &free_only);
}

/* ---- decode ---------------------------------------------------------------- */

static int fail(loom_msg_t *m, loom_err_t *err, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(loom_msg_t *m, loom_err_t *err, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->error, sizeof m->error, fmt, ap);
    va_end(ap);
    m->status = status;
    int code = status == LOOM_STATUS_RESOURCE_EXHAUSTED ? LOOM_ETOOBIG
               : status == LOOM_STATUS_FAILED_PRECONDITION ? LOOM_EPROTO
                                                            : LOOM_EPARSE;
    loom_err_set(err, code, "%s", m->error);
    return status;
}

/* copy_payload: 0 = leave m->payload NULL and let the caller attach the
 * frame it keeps (loom_msg_recv moves the zmq_msg_t: no copy). */
static int decode_frames(const loom_frame_t *frames, size_t n_kept, size_t n_total, int routed,
                         const loom_limits_t *lim, int copy_payload, loom_msg_t **out,
                         loom_err_t *err)
{
    loom_limits_t tmp;
    lim = limits_or_default(lim, &tmp);
    loom_msg_t *m = calloc(1, sizeof *m);
    *out = m;
    if (!m) {
        loom_err_set(err, LOOM_ENOMEM, "out of memory decoding a message");
        return LOOM_STATUS_RESOURCE_EXHAUSTED;
    }
    size_t i = 0;
    if (n_total == 0)
        return fail(m, err, LOOM_STATUS_INVALID_ARGUMENT, "empty message (no frames)");
    if (routed) {
        if (frames[0].len == 0 || frames[0].len > LOOM_MAX_ROUTING_ID)
            return fail(m, err, LOOM_STATUS_INVALID_ARGUMENT, "bad routing id (%zu bytes)",
                        frames[0].len);
        memcpy(m->origin.peer, frames[0].data, frames[0].len);
        m->origin.peer_len = frames[0].len;
        i = 1;
    }
    if (n_total <= i)
        return fail(m, err, LOOM_STATUS_INVALID_ARGUMENT, "empty message (no header frame)");
    const loom_frame_t *hdr = &frames[i];
    if (hdr->len == 0)
        return fail(m, err, LOOM_STATUS_INVALID_ARGUMENT, "empty header frame");
    if (hdr->len > lim->max_header)
        return fail(m, err, LOOM_STATUS_RESOURCE_EXHAUSTED,
                    "header frame of %zu bytes exceeds the limit of %zu", hdr->len,
                    lim->max_header);
    ProtobufCMessage *pm = NULL;
    loom_err_t perr;
    int st = loom_pb_unpack(&loom__v1__envelope__descriptor, hdr->data, hdr->len,
                            HEADER_DECODE_BUDGET, &pm, &perr);
    if (st != LOOM_STATUS_OK)
        return fail(m, err, st, "header frame does not decode as loom.v1.Envelope "
                                "(truncated or garbage, %zu bytes)", hdr->len);
    m->env = (Loom__V1__Envelope *)pm;
    m->origin.request_id = m->env->request_id;
    if (m->env->version != LOOM_PROTOCOL_VERSION)
        return fail(m, err, LOOM_STATUS_FAILED_PRECONDITION,
                    "protocol version %u not supported (this peer speaks %d)",
                    m->env->version, LOOM_PROTOCOL_VERSION);
    size_t mlen = strlen(m->env->method);
    if (mlen > LOOM_MAX_METHOD)
        return fail(m, err, LOOM_STATUS_INVALID_ARGUMENT, "method name of %zu bytes is too long",
                    mlen);
    memcpy(m->origin.method, m->env->method, mlen + 1);
    size_t parts = n_total - i;
    if (parts > 2)
        return fail(m, err, LOOM_STATUS_INVALID_ARGUMENT,
                    "too many frames: %zu after the routing id (at most header + payload)",
                    parts);
    if (parts == 2) {
        const loom_frame_t *pl = &frames[i + 1];
        if (pl->len > lim->max_payload)
            return fail(m, err, LOOM_STATUS_RESOURCE_EXHAUSTED,
                        "payload frame of %zu bytes exceeds the limit of %zu", pl->len,
                        lim->max_payload);
        if (i + 1 >= n_kept)
            return fail(m, err, LOOM_STATUS_INTERNAL, "payload frame was not kept");
        m->payload_len = pl->len;
        if (!copy_payload) {
            m->status = LOOM_STATUS_OK;
            return LOOM_STATUS_OK;
        }
        m->payload = malloc(pl->len ? pl->len : 1);
        if (!m->payload)
            return fail(m, err, LOOM_STATUS_RESOURCE_EXHAUSTED, "out of memory for payload");
        if (pl->len)
            memcpy(m->payload, pl->data, pl->len);
        m->payload_len = pl->len;
    }
    m->status = LOOM_STATUS_OK;
    return LOOM_STATUS_OK;
}

int loom_msg_decode(const loom_frame_t *frames, size_t n, int routed, const loom_limits_t *lim,
                    loom_msg_t **out, loom_err_t *err)
{
    return decode_frames(frames, n, n, routed, lim, 1, out, err);
}

int loom_msg_recv(void *sock, int routed, const loom_limits_t *lim, int zmq_flags,
                  loom_msg_t **out, loom_err_t *err)
{
    *out = NULL;
    zmq_msg_t parts[KEEP_FRAMES];
    loom_frame_t frames[KEEP_FRAMES];
    size_t kept = 0, total = 0;
    int more = 1;
    while (more) {
        zmq_msg_t scratch;
        zmq_msg_t *zm = kept < KEEP_FRAMES ? &parts[kept] : &scratch;
        zmq_msg_init(zm);
        int rc = zmq_msg_recv(zm, sock, total == 0 ? zmq_flags : 0);
        if (rc < 0) {
            int e = errno;
            zmq_msg_close(zm);
            if (total == 0 && (e == EAGAIN || e == EINTR))
                return 0;
            if (total > 0 && e == EINTR) /* the rest of a multipart message is queued */
                continue;
            for (size_t k = 0; k < kept; k++)
                zmq_msg_close(&parts[k]);
            return loom_err_set(err, LOOM_EIO, "zmq_msg_recv: %s", zmq_strerror(e));
        }
        more = zmq_msg_more(zm);
        total++;
        if (zm == &scratch) {
            zmq_msg_close(zm); /* extra part: counted, not kept */
        } else {
            frames[kept].data = zmq_msg_data(zm);
            frames[kept].len = zmq_msg_size(zm);
            kept++;
        }
    }
    int st = decode_frames(frames, kept, total, routed, lim, 0, out, err);
    if (*out && routed && kept > 0) {
        /* set by loomd's ZAP handler (orchestrator/zap.c) on CURVE sockets */
        const char *uid = zmq_msg_gets(&parts[0], "User-Id");
        if (!uid && kept > 1)
            uid = zmq_msg_gets(&parts[1], "User-Id");
        if (uid && strlen(uid) < sizeof (*out)->peer_key)
            strcpy((*out)->peer_key, uid);
    }
    size_t pl_index = routed ? 2 : 1;
    if (*out && st == LOOM_STATUS_OK && total == pl_index + 1) {
        /* Well formed with a payload: hand the frame over without copying. */
        zmq_msg_init(&(*out)->zpayload);
        zmq_msg_move(&(*out)->zpayload, &parts[pl_index]);
        (*out)->has_zpayload = 1;
        (*out)->payload = zmq_msg_data(&(*out)->zpayload);
    }
    for (size_t k = 0; k < kept; k++)
        zmq_msg_close(&parts[k]);
    return *out ? 1 : loom_err_set(err, LOOM_ENOMEM, "out of memory receiving a message");
}

void loom_msg_destroy(loom_msg_t **pm)
{
    if (!pm || !*pm)
        return;
    loom_msg_t *m = *pm;
    loom_pb_free(m->env);
    if (m->has_zpayload)
        zmq_msg_close(&m->zpayload);
    else
        free(m->payload);
    free(m);
    *pm = NULL;
}

/* ---- accessors --------------------------------------------------------------- */

int loom_msg_status(const loom_msg_t *m) { return m->status; }
const char *loom_msg_error(const loom_msg_t *m) { return m->error; }
const char *loom_msg_peer_key(const loom_msg_t *m) { return m->peer_key; }
const loom_principal_t *loom_msg_principal(const loom_msg_t *m) { return m->has_principal ? &m->principal : NULL; }

void loom_msg_set_principal(loom_msg_t *m, const loom_principal_t *p)
{
    m->has_principal = p != NULL;
    if (p)
        m->principal = *p;
}
const loom_origin_t *loom_msg_origin(const loom_msg_t *m) { return &m->origin; }
const Loom__V1__Envelope *loom_msg_envelope(const loom_msg_t *m) { return m->env; }
const char *loom_msg_method(const loom_msg_t *m) { return m->origin.method; }
uint64_t loom_msg_request_id(const loom_msg_t *m) { return m->origin.request_id; }
uint32_t loom_msg_flags(const loom_msg_t *m) { return m->env ? m->env->flags : 0; }
int64_t loom_msg_deadline_ms(const loom_msg_t *m) { return m->env ? m->env->deadline_unix_ms : 0; }
int loom_msg_reply_status(const loom_msg_t *m) { return m->env ? (int)m->env->status : LOOM_STATUS_UNKNOWN; }
int loom_msg_is_reply(const loom_msg_t *m) { return (loom_msg_flags(m) & LOOM_FLAG_REPLY) != 0; }
int loom_msg_is_cancel(const loom_msg_t *m) { return (loom_msg_flags(m) & LOOM_FLAG_CANCEL) != 0; }

const char *loom_msg_reply_message(const loom_msg_t *m)
{
    return m->env && m->env->status_message ? m->env->status_message : "";
}

const char *loom_msg_meta(const loom_msg_t *m, const char *key)
{
    if (!m->env)
        return NULL;
    for (size_t i = 0; i < m->env->n_metadata; i++) {
        const Loom__V1__Metadata *md = m->env->metadata[i];
        if (md && md->key && strcmp(md->key, key) == 0)
            return md->value ? md->value : "";
    }
    return NULL;
}

const uint8_t *loom_msg_payload(const loom_msg_t *m, size_t *len)
{
    *len = m->payload_len;
    return m->payload;
}

int loom_msg_unpack(const loom_msg_t *m, const ProtobufCMessageDescriptor *desc,
                    const loom_limits_t *lim, ProtobufCMessage **out, loom_err_t *err)
{
    loom_limits_t tmp;
    lim = limits_or_default(lim, &tmp);
    return loom_pb_unpack(desc, m->payload, m->payload_len, lim->max_decoded, out, err);
}

/* ---- encode ------------------------------------------------------------------ */

static int pack_header(const loom_send_t *s, uint8_t **hdr, size_t *hdr_len)
{
    Loom__V1__Envelope env = LOOM__V1__ENVELOPE__INIT;
    Loom__V1__Metadata md_store[16];
    Loom__V1__Metadata *md_ptr_store[16];
    Loom__V1__Metadata *md_heap = NULL;
    Loom__V1__Metadata **md_ptrs = md_ptr_store, *md = md_store;
    if (s->n_meta > 16) {
        md_heap = calloc(s->n_meta, sizeof *md_heap + sizeof *md_ptrs);
        if (!md_heap)
            return LOOM_ENOMEM;
        md = md_heap;
        md_ptrs = (Loom__V1__Metadata **)(md_heap + s->n_meta);
    }
    for (size_t i = 0; i < s->n_meta; i++) {
        loom__v1__metadata__init(&md[i]);
        md[i].key = (char *)s->meta_keys[i];
        md[i].value = (char *)s->meta_values[i];
        md_ptrs[i] = &md[i];
    }
    env.version = LOOM_PROTOCOL_VERSION;
    env.request_id = s->request_id;
    env.method = (char *)(s->method ? s->method : "");
    env.deadline_unix_ms = s->deadline_ms;
    env.n_metadata = s->n_meta;
    env.metadata = md_ptrs;
    env.status = (Loom__V1__StatusCode)s->status;
    env.status_message = (char *)(s->status_message ? s->status_message : "");
    env.flags = s->flags;
    env.error = (Loom__V1__Error *)s->error;
    size_t n = loom__v1__envelope__get_packed_size(&env);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        free(md_heap);
        return LOOM_ENOMEM;
    }
    *hdr_len = loom__v1__envelope__pack(&env, buf);
    *hdr = buf;
    free(md_heap);
    return 0;
}

int loom_msg_encode(const loom_send_t *s, uint8_t **hdr, size_t *hdr_len, uint8_t **pl,
                    size_t *pl_len)
{
    *hdr = NULL;
    *pl = NULL;
    *pl_len = 0;
    if (pack_header(s, hdr, hdr_len) != 0)
        return LOOM_ENOMEM;
    if (s->payload) {
        size_t n = protobuf_c_message_get_packed_size(s->payload);
        *pl = malloc(n ? n : 1);
        if (!*pl) {
            free(*hdr);
            *hdr = NULL;
            return LOOM_ENOMEM;
        }
        *pl_len = protobuf_c_message_pack(s->payload, *pl);
    }
    return 0;
}

static int send_error(int e, loom_err_t *err, const char *what)
{
    if (e == EHOSTUNREACH || e == EAGAIN)
        return loom_err_set(err, LOOM_EUNAVAIL, "%s: peer unreachable or queue full (%s)", what,
                            zmq_strerror(e));
    return loom_err_set(err, LOOM_EIO, "%s: %s", what, zmq_strerror(e));
}

static void free_buf(void *data, void *hint)
{
    (void)hint;
    free(data);
}

int loom_msg_send(void *sock, const loom_send_t *s, int zmq_flags, loom_err_t *err)
{
    uint8_t *hdr, *pl;
    size_t hdr_len, pl_len;
    if (loom_msg_encode(s, &hdr, &hdr_len, &pl, &pl_len) != 0)
        return loom_err_set(err, LOOM_ENOMEM, "out of memory encoding a message");
    int more = s->payload ? ZMQ_SNDMORE : 0;
    if (s->peer && s->peer_len) {
        if (zmq_send(sock, s->peer, s->peer_len, ZMQ_SNDMORE | zmq_flags) < 0) {
            int e = errno;
            free(hdr);
            free(pl);
            return send_error(e, err, "send routing id");
        }
    }
    /* Once the first part is queued, the rest of the message is too. */
    if (zmq_send(sock, hdr, hdr_len, more | zmq_flags) < 0) {
        int e = errno;
        free(hdr);
        free(pl);
        return send_error(e, err, "send header");
    }
    free(hdr);
    if (s->payload) {
        zmq_msg_t zm;
        if (zmq_msg_init_data(&zm, pl, pl_len ? pl_len : 0, free_buf, NULL) != 0) {
            free(pl);
            return loom_err_set(err, LOOM_ENOMEM, "out of memory sending a payload");
        }
        if (zmq_msg_send(&zm, sock, zmq_flags) < 0) {
            int e = errno;
            zmq_msg_close(&zm);
            return send_error(e, err, "send payload");
        }
    }
    return 0;
}

int loom_socket_setup(void *sock, const loom_limits_t *lim, loom_err_t *err)
{
    loom_limits_t tmp;
    lim = limits_or_default(lim, &tmp);
    int linger = 0;
    size_t biggest = lim->max_payload > lim->max_header ? lim->max_payload : lim->max_header;
    int64_t maxmsg = (int64_t)biggest * 2;
    if (zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) != 0)
        return loom_err_set(err, LOOM_EIO, "zmq_setsockopt: %s", zmq_strerror(errno));
    int type = 0;
    size_t tl = sizeof type;
    if (zmq_getsockopt(sock, ZMQ_TYPE, &type, &tl) == 0 && type == ZMQ_ROUTER) {
        int one = 1;
        if (zmq_setsockopt(sock, ZMQ_ROUTER_MANDATORY, &one, sizeof one) != 0)
            return loom_err_set(err, LOOM_EIO, "zmq_setsockopt: %s", zmq_strerror(errno));
    }
    return 0;
}
