/* objfetch.c — fetches an object by reference: same-host file or chunked
 * ZeroMQ transfer from the producer, verified against its XXH3-128 checksum. */
#include "workers/common/objfetch.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <poll.h>
#include <unistd.h>

#include <xxhash.h>
#include <zmq.h>

#include "common/clock.h"
#include "common/log.h"
#include "loom/v1/objects.pb-c.h"

#define COMP "objects"
#define COPY_BLOCK (64u << 10) /* a received chunk is copied and hashed in blocks this size */
#define READ_BLOCK (8u << 20) /* the same-host path reads, then hashes, blocks this size (256 KiB measured slower) */

void loom_objfetch_opts_default(loom_objfetch_opts_t *o) {
    memset(o, 0, sizeof *o);
    const char *t = getenv("LOOM_OBJECT_TIMEOUT_MS"), *s = getenv("LOOM_OBJECT_SAME_HOST");
    o->timeout_ms = t && atoi(t) > 0 ? atoi(t) : 10000;
    o->chunk = 1u << 20;
    o->window = 8;
    o->same_host = !(s && !strcmp(s, "0"));
}

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static void *zctx;

static void init(void) {
    /* glibc's dynamic thresholds at their ceiling from the start (the state
     * they reach once a 32 MiB block was freed): ZeroMQ's I/O thread
     * mallocs every chunk it receives and we free it after copying, and with
     * the defaults freed chunks at the top of the heap are soon handed back
     * to the kernel and faulted in afresh for the next ones: measured by
     * bench-kv, up to a fifth of a fetch's pages, at 0.1-0.25 GB/s on the
     * development VM, which made the fetch 3x slower than the wire. */
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    zctx = zmq_ctx_new();
}

void loom_objfetch_init(void) { pthread_once(&init_once, init); }

static double now_s(void) { return (double)loom_clock_ms() / 1000.0; }

static int check_digest(XXH3_state_t *h, const loom_objref_t *r, loom_err_t *e) {
    char hex[33];
    loom_objstore_checksum_hex(XXH3_128bits_digest(h), hex);
    if (strcmp(hex, r->checksum))
        return loom_err_set(e, LOOM_EPARSE, "checksum mismatch: object %.16s… (XXH3-128 %.12s…) arrived as %.12s…",
                            r->id, r->checksum, hex);
    return 0;
}

static XXH3_state_t *hash_new(void) {
    XXH3_state_t *h = XXH3_createState();
    if (h) XXH3_128bits_reset(h);
    return h;
}

/* ---- stream segments -------------------------------------------------------- */

/* Where the next segment of a stream starts (the bytes before it were
 * verified and handed on). */
typedef struct segs {
    uint64_t pos, index;
} segs_t;

/* Verifies and hands on every whole segment in buf[pos, got). */
static int feed(segs_t *g, const loom_objref_t *r, const loom_objfetch_opts_t *o, const uint8_t *buf, uint64_t got,
                loom_err_t *e) {
    while (got - g->pos >= 8) {
        uint64_t len = 0;
        for (int i = 7; i >= 0; i--) len = len << 8 | buf[g->pos + (uint64_t)i];
        uint64_t room = r->size - g->pos;
        if (room < LOOM_OBJSTREAM_FRAME || len > room - LOOM_OBJSTREAM_FRAME)
            return loom_err_set(e, LOOM_EPROTO, "stream %.16s…: segment %llu claims %llu bytes past the object's end", r->id,
                                (unsigned long long)g->index, (unsigned long long)len);
        if (got - g->pos < len + LOOM_OBJSTREAM_FRAME) break;
        const uint8_t *data = buf + g->pos + 8;
        char want[33], hex[33];
        loom_objstore_checksum_hex(XXH3_128bits(data, len), hex);
        XXH128_canonical_t c;
        memcpy(c.digest, data + len, 16);
        loom_objstore_checksum_hex(XXH128_hashFromCanonical(&c), want);
        if (strcmp(hex, want))
            return loom_err_set(e, LOOM_EPARSE, "checksum mismatch: segment %llu of stream %.16s… (XXH3-128 %.12s…) arrived as %.12s…",
                                (unsigned long long)g->index, r->id, want, hex);
        int rc = o->on_segment ? o->on_segment(o->seg_ud, g->index, data, len, e) : 0;
        if (rc) return rc;
        g->pos += len + LOOM_OBJSTREAM_FRAME;
        g->index++;
    }
    if (got == r->size && g->pos != got)
        return loom_err_set(e, LOOM_EPROTO, "stream %.16s… ends inside segment %llu", r->id, (unsigned long long)g->index);
    return 0;
}

/* Same-host path of a stream: reads the producer's file as it grows,
 * waiting on inotify. It waits as long as the producer holds the file's
 * lock (an exclusive flock while it writes: the kernel drops it when the
 * process dies, whatever PID namespace it is in) and the file stays (a
 * slow prefill is no failure; on_chunk may stop it); a dead producer or an
 * unlinked (abandoned) file fails it at once. */
static int same_host_stream(const loom_objref_t *r, const loom_objfetch_opts_t *o, int fd, uint8_t *buf, loom_err_t *e) {
    int in = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (in >= 0 && inotify_add_watch(in, r->path, IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_DELETE_SELF) < 0) {
        close(in);
        in = -1;
    }
    segs_t g = {0};
    uint64_t got = 0;
    int rc = 0;
    while (!rc && got < r->size) {
        ssize_t k = pread(fd, buf + got, r->size - got, (off_t)got);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) { rc = loom_err_set(e, LOOM_EIO, "cannot read %s: %s", r->path, strerror(errno)); break; }
        if (k > 0) {
            got += (uint64_t)k;
            if ((rc = feed(&g, r, o, buf, got, e))) break;
            if (o->on_chunk && o->on_chunk(o->ud, got, r->size)) rc = loom_err_set(e, LOOM_ECANCELLED, "fetch stopped");
            continue;
        }
        /* nothing new: is the producer still there? */
        struct stat st;
        if (fstat(fd, &st) || st.st_nlink == 0) {
            rc = loom_err_set(e, LOOM_ENOTFOUND, "worker %s abandoned stream %.16s… after %llu of %llu bytes", r->worker, r->id,
                              (unsigned long long)got, (unsigned long long)r->size);
            break;
        }
        if (flock(fd, LOCK_SH | LOCK_NB) == 0) { /* nobody writes it: the producer is gone */
            flock(fd, LOCK_UN);
            if (pread(fd, buf + got, 1, (off_t)got) > 0) continue; /* it finished just now */
            rc = loom_err_set(e, LOOM_EUNAVAIL, "worker %s is gone after %llu of %llu bytes of stream %.16s…", r->worker,
                              (unsigned long long)got, (unsigned long long)r->size, r->id);
            break;
        }
        if (o->on_chunk && o->on_chunk(o->ud, got, r->size)) { rc = loom_err_set(e, LOOM_ECANCELLED, "fetch stopped"); break; }
        if (in >= 0) {
            struct pollfd p = {in, POLLIN, 0};
            if (poll(&p, 1, 200) > 0) {
                char ev[4096];
                while (read(in, ev, sizeof ev) > 0) {}
            }
        } else {
            usleep(2000);
        }
    }
    if (in >= 0) close(in);
    return rc;
}

/* Same-host path: 1 when it applied (rc in *rc), 0 when the file is not
 * visible here (the caller goes to the network). */
static int same_host(const loom_objref_t *r, const loom_objfetch_opts_t *o, uint8_t *buf, int *rc, loom_err_t *e) {
    if (!r->path[0] || !r->host[0] || strcmp(r->host, loom_objstore_host_id()) || !loom_objstore_path_ok(r->path))
        return 0;
    int fd = open(r->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    if (r->stream) {
        *rc = same_host_stream(r, o, fd, buf, e);
        close(fd);
        return 1;
    }
    struct stat st;
    if (fstat(fd, &st) || (uint64_t)st.st_size != r->size) {
        close(fd);
        return 0;
    }
    XXH3_state_t *h = hash_new();
    size_t got = 0;
    *rc = h ? 0 : loom_err_set(e, LOOM_ENOMEM, "out of memory");
    while (!*rc && got < r->size) {
        size_t want = r->size - got > READ_BLOCK ? READ_BLOCK : r->size - got;
        ssize_t k = read(fd, buf + got, want);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) { *rc = loom_err_set(e, LOOM_EIO, "cannot read %s: %s", r->path, k ? strerror(errno) : "short file"); break; }
        XXH3_128bits_update(h, buf + got, (size_t)k);
        got += (size_t)k;
    }
    close(fd);
    if (!*rc) *rc = check_digest(h, r, e);
    XXH3_freeState(h);
    return 1;
}

static int send_req(void *s, const loom_objref_t *r, uint64_t seq, uint64_t off, uint32_t len) {
    Loom__V1__ObjectRequest q = LOOM__V1__OBJECT_REQUEST__INIT;
    q.id = (char *)r->id;
    q.offset = off;
    q.length = len;
    q.seq = seq;
    uint8_t b[256];
    size_t l = loom__v1__object_request__pack(&q, b);
    return zmq_send(s, b, l, 0) < 0 ? -1 : 0;
}

/* A request in flight. */
typedef struct req {
    uint64_t seq, off;
    uint32_t len;
} req_t;

/* Receives one answer to one of the n requests in want: header frame +
 * data copied into place in buf (hashed into h unless NULL); *which = the
 * request it answers, *got = its bytes (a stream's answer may be shorter
 * than asked). 1: a stream's PENDING (no data). */
static int recv_chunk(void *s, const loom_objref_t *r, const req_t *want, int n, int *which, uint32_t *got,
                      uint8_t *buf, XXH3_state_t *h, loom_err_t *e) {
    uint8_t hb[1024];
    int hl = zmq_recv(s, hb, sizeof hb, 0);
    if (hl < 0) return loom_err_set(e, LOOM_EIO, "receiving from %s: %s", r->endpoint, zmq_strerror(zmq_errno()));
    int more = 0;
    size_t ml = sizeof more;
    zmq_getsockopt(s, ZMQ_RCVMORE, &more, &ml);
    Loom__V1__ObjectChunk *c = hl <= (int)sizeof hb ? loom__v1__object_chunk__unpack(NULL, (size_t)hl, hb) : NULL;
    int rc = 0, w = 0;
    if (c) while (w < n && want[w].seq != c->seq) w++;
    if (!c) rc = loom_err_set(e, LOOM_EPROTO, "malformed chunk header from %s", r->endpoint);
    else if (c->status == LOOM__V1__OBJECT_CHUNK__STATUS__STATUS_PENDING && r->stream && !more)
        rc = 1; /* a live producer still writing: keep waiting */
    else if (c->status == LOOM__V1__OBJECT_CHUNK__STATUS__STATUS_NOT_FOUND)
        rc = loom_err_set(e, LOOM_ENOTFOUND, "worker %s no longer has object %.16s…: %s", r->worker, r->id,
                          c->message ? c->message : "");
    else if (c->status != LOOM__V1__OBJECT_CHUNK__STATUS__STATUS_OK)
        rc = loom_err_set(e, LOOM_EPROTO, "worker %s refused the request: %s", r->worker, c->message ? c->message : "");
    else if (w == n || c->offset != want[w].off || c->size != r->size || !more ||
             (r->stream ? !c->length || c->length > want[w].len : c->length != want[w].len))
        rc = loom_err_set(e, LOOM_EPROTO, "unexpected chunk from %s (seq %llu offset %llu length %u; wanted %llu %llu %u)",
                          r->endpoint, (unsigned long long)c->seq, (unsigned long long)c->offset, c->length,
                          (unsigned long long)want[0].seq, (unsigned long long)want[0].off, want[0].len);
    uint32_t len = rc ? 0 : c->length;
    uint64_t off = rc ? 0 : c->offset;
    if (c) loom__v1__object_chunk__free_unpacked(c, NULL);
    if (!rc) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        int k = zmq_msg_recv(&m, s, 0);
        zmq_getsockopt(s, ZMQ_RCVMORE, &more, &ml);
        if (k != (int)len || more) {
            rc = loom_err_set(e, LOOM_EPROTO, "chunk at %llu has %d bytes, not %u", (unsigned long long)off, k, len);
        } else { /* copied and hashed a block at a time, while the block is in cache */
            const uint8_t *src = zmq_msg_data(&m);
            for (uint32_t i = 0; i < len; i += COPY_BLOCK) {
                uint32_t b = len - i < COPY_BLOCK ? len - i : COPY_BLOCK;
                memcpy(buf + off + i, src + i, b);
                if (h) XXH3_128bits_update(h, buf + off + i, b);
            }
            *which = w;
            *got = len;
        }
        zmq_msg_close(&m);
    }
    while (more) { /* drop the rest of a bad message */
        char junk[64];
        zmq_recv(s, junk, sizeof junk, 0);
        zmq_getsockopt(s, ZMQ_RCVMORE, &more, &ml);
    }
    return rc;
}

/* Where a stream's bytes have landed: contiguous from 0 up to `done`,
 * and the pieces past it (answers that overtook a short one) until the
 * gap before them is filled. */
typedef struct landed {
    uint64_t done;
    struct { uint64_t from, to; } piece[2 * LOOM_OBJFETCH_MAX_WINDOW];
    int n;
} landed_t;

/* Records the bytes [from, to); -1 when too many pieces wait behind a gap
 * (a peer that never answers the gap's request but answers every other). */
static int land(landed_t *l, uint64_t from, uint64_t to) {
    if (l->n == (int)(sizeof l->piece / sizeof l->piece[0])) return -1;
    l->piece[l->n].from = from;
    l->piece[l->n++].to = to;
    for (int i = 0; i < l->n;) { /* absorb every piece that now touches done */
        if (l->piece[i].from == l->done) {
            l->done = l->piece[i].to;
            l->piece[i] = l->piece[--l->n];
            i = 0;
        } else {
            i++;
        }
    }
    return 0;
}

/* A stream: up to window requests in flight for consecutive ranges. The
 * producer answers a range with what is written of it and holds a request
 * of which nothing is written yet; a short answer's rest is asked for
 * again at once (the request keeps its place in the window). Segments are
 * verified as the bytes before them become contiguous. */
static int stream_pipelined(void *s, const loom_objref_t *r, const loom_objfetch_opts_t *o, uint8_t *buf, size_t chunk,
                            int window, uint64_t *recvd, loom_err_t *e) {
    segs_t g = {0};
    landed_t l = {0};
    req_t q[LOOM_OBJFETCH_MAX_WINDOW];
    int nq = 0, rc = 0;
    uint64_t next = 0, seq = 0, answers = 0;
    while (!rc && l.done < r->size) {
        while (nq < window && next < r->size) {
            q[nq] = (req_t){seq++, next, (uint32_t)(r->size - next < chunk ? r->size - next : chunk)};
            if (send_req(s, r, q[nq].seq, q[nq].off, q[nq].len)) {
                rc = loom_err_set(e, LOOM_EIO, "sending to %s: %s", r->endpoint, zmq_strerror(zmq_errno()));
                break;
            }
            next += q[nq++].len;
        }
        if (rc) break;
        zmq_pollitem_t it = {s, 0, ZMQ_POLLIN, 0};
        int p = zmq_poll(&it, 1, o->timeout_ms > 0 ? o->timeout_ms : 10000);
        if (p < 0 && zmq_errno() == EINTR) continue;
        if (p <= 0) {
            rc = loom_err_set(e, l.done ? LOOM_ETIMEDOUT : LOOM_EUNAVAIL,
                              "worker %s at %s sent nothing for %d ms after %llu of %llu bytes of a stream (producer gone?)",
                              r->worker[0] ? r->worker : "?", r->endpoint, o->timeout_ms, (unsigned long long)l.done,
                              (unsigned long long)r->size);
            break;
        }
        int w = 0;
        uint32_t got = 0;
        rc = recv_chunk(s, r, q, nq, &w, &got, buf, NULL, e);
        if (rc == 1) { /* PENDING: the producer lives; wait on */
            rc = 0;
            if (o->on_chunk && o->on_chunk(o->ud, l.done, r->size)) rc = loom_err_set(e, LOOM_ECANCELLED, "fetch stopped");
            continue;
        }
        if (rc) break;
        answers++;
        uint64_t before = l.done;
        if (land(&l, q[w].off, q[w].off + got))
            rc = loom_err_set(e, LOOM_EPROTO, "stream %.16s…: too many answers out of order from %s", r->id, r->endpoint);
        if (got < q[w].len) { /* the rest of the range, asked again */
            q[w] = (req_t){seq++, q[w].off + got, q[w].len - got};
            if (!rc && send_req(s, r, q[w].seq, q[w].off, q[w].len))
                rc = loom_err_set(e, LOOM_EIO, "sending to %s: %s", r->endpoint, zmq_strerror(zmq_errno()));
        } else {
            q[w] = q[--nq];
        }
        if (rc || l.done == before) continue;
        if ((rc = feed(&g, r, o, buf, l.done, e))) break;
        if (o->on_chunk && o->on_chunk(o->ud, l.done, r->size)) rc = loom_err_set(e, LOOM_ECANCELLED, "fetch stopped");
    }
    *recvd = answers;
    return rc;
}

static int network(const loom_objref_t *r, const loom_objfetch_opts_t *o, uint8_t *buf, uint64_t *chunks,
                   loom_err_t *e) {
    if (!r->endpoint[0]) return loom_err_set(e, LOOM_EUNAVAIL, "object %.16s… is not on this host and has no endpoint", r->id);
    loom_objfetch_init();
    void *s = zctx ? zmq_socket(zctx, ZMQ_DEALER) : NULL;
    if (!s) return loom_err_set(e, LOOM_EIO, "zmq socket: %s", zmq_strerror(zmq_errno()));
    size_t chunk = o->chunk ? o->chunk : (1u << 20);
    if (chunk > (16u << 20)) chunk = 16u << 20;
    int window = o->window > 0 ? o->window : 8, linger = 0;
    if (window > LOOM_OBJFETCH_MAX_WINDOW) window = LOOM_OBJFETCH_MAX_WINDOW;
    int hwm = window * 2 + 2;
    int64_t maxmsg = (int64_t)chunk + 4096;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    int rc = 0;
    if (r->key[0]) { /* the producer speaks CURVE: authenticate it by its key, present ours */
        char pub[41], sec[41];
        if (o->curve_public && o->curve_secret) {
            snprintf(pub, sizeof pub, "%s", o->curve_public);
            snprintf(sec, sizeof sec, "%s", o->curve_secret);
        } else if (!loom_objstore_curve_pair(pub, sec) && zmq_curve_keypair(pub, sec)) {
            zmq_close(s);
            return loom_err_set(e, LOOM_EIO, "cannot make a CURVE key pair: %s", zmq_strerror(zmq_errno()));
        }
        if (zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, r->key, 41) || zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, pub, 41) ||
            zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, sec, 41)) {
            zmq_close(s);
            return loom_err_set(e, LOOM_EINVAL, "cannot set up CURVE to %s: %s", r->endpoint, zmq_strerror(zmq_errno()));
        }
    }
    XXH3_state_t *h = hash_new();
    if (!h) { rc = loom_err_set(e, LOOM_ENOMEM, "out of memory"); goto out; }
    if (zmq_connect(s, r->endpoint)) {
        rc = loom_err_set(e, LOOM_EUNAVAIL, "cannot connect to %s: %s", r->endpoint, zmq_strerror(zmq_errno()));
        goto out;
    }
    uint64_t n = (r->size + chunk - 1) / chunk, sent = 0, recvd = 0;
    if (r->stream) rc = stream_pipelined(s, r, o, buf, chunk, window, &recvd, e);
    while (!r->stream && !rc && recvd < n) {
        while (sent < n && sent - recvd < (uint64_t)window) {
            uint64_t off = sent * chunk;
            if (send_req(s, r, sent, off, (uint32_t)(r->size - off < chunk ? r->size - off : chunk))) {
                rc = loom_err_set(e, LOOM_EIO, "sending to %s: %s", r->endpoint, zmq_strerror(zmq_errno()));
                break;
            }
            sent++;
        }
        if (rc) break;
        zmq_pollitem_t it = {s, 0, ZMQ_POLLIN, 0};
        int p = zmq_poll(&it, 1, o->timeout_ms > 0 ? o->timeout_ms : 10000);
        if (p < 0 && zmq_errno() == EINTR) continue;
        if (p <= 0) {
            rc = loom_err_set(e, recvd ? LOOM_ETIMEDOUT : LOOM_EUNAVAIL,
                              "worker %s at %s sent nothing for %d ms after %llu of %llu bytes (producer gone?)",
                              r->worker[0] ? r->worker : "?", r->endpoint, o->timeout_ms,
                              (unsigned long long)(recvd * chunk), (unsigned long long)r->size);
            break;
        }
        uint64_t off = recvd * chunk;
        req_t want = {recvd, off, (uint32_t)(r->size - off < chunk ? r->size - off : chunk)};
        int w;
        uint32_t len;
        if ((rc = recv_chunk(s, r, &want, 1, &w, &len, buf, h, e))) break;
        recvd++;
        if (o->on_chunk && o->on_chunk(o->ud, off + len, r->size)) rc = loom_err_set(e, LOOM_ECANCELLED, "fetch stopped");
    }
    *chunks = recvd;
    if (!rc && !r->stream) rc = check_digest(h, r, e);
out:
    XXH3_freeState(h);
    zmq_close(s);
    return rc;
}

int loom_objfetch(const loom_objref_t *ref, const loom_objfetch_opts_t *opts, void **data, size_t *n,
                  loom_objfetch_stats_t *stats, loom_err_t *e) {
    *data = NULL;
    *n = 0;
    if (ref->size > ((uint64_t)1 << 40)) return loom_err_set(e, LOOM_ETOOBIG, "object of %llu bytes is too large", (unsigned long long)ref->size);
    uint8_t *buf = malloc(ref->size ? ref->size : 1);
    if (!buf) return loom_err_set(e, LOOM_ENOMEM, "out of memory for an object of %llu bytes", (unsigned long long)ref->size);
    int rc = loom_objfetch_into(ref, opts, buf, stats, e);
    if (rc) {
        free(buf);
        return rc;
    }
    *data = buf;
    *n = ref->size;
    return 0;
}

int loom_objfetch_into(const loom_objref_t *ref, const loom_objfetch_opts_t *opts, void *dst,
                       loom_objfetch_stats_t *stats, loom_err_t *e) {
    loom_objfetch_opts_t dflt;
    if (!opts) {
        loom_objfetch_opts_default(&dflt);
        opts = &dflt;
    }
    uint8_t *buf = dst;
    double t0 = now_s();
    loom_objfetch_stats_t st = {.path = "same-host"};
    int rc = 0;
    if (!opts->same_host || !same_host(ref, opts, buf, &rc, e)) {
        st.path = "network";
        rc = network(ref, opts, buf, &st.chunks, e);
    }
    st.seconds = now_s() - t0;
    if (stats) *stats = st;
    return rc;
}
