/* objstore.c — content-addressed object cache in files (shared memory by
 * default) plus the thread that serves byte ranges over ZeroMQ. */
#include "workers/common/objstore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <xxhash.h>
#include <zmq.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/map.h"
#include "common/sha.h"
#include "loom/v1/objects.pb-c.h"
#include "protocol/keys.h"

#define COMP "objects"
#define MAX_CHUNK (16u << 20)
#define MAX_REQUEST 1024
#define MAX_PENDING 256         /* requests held for unwritten stream bytes */
#define KEEPALIVE_MS 1000       /* PENDING answers to held requests, this often */

/* A run that holds an object: while pinned, a consumer of the run may still
 * fetch it (never dropped: spilled instead); once released it stays only
 * as cache, for `loom logs`, until evicted or the run is forgotten. */
typedef struct holder {
    char run[40];
    int pinned;
    uint64_t since;            /* loom_clock_ms() of the pin */
} holder_t;

/* A read-only mapping of an object's file, shared by its entry and the
 * chunks the server thread hands to ZeroMQ without copying them: the last
 * of them unmaps it, so an object dropped while its chunks are still being
 * sent stays readable until they are out. */
typedef struct mapping {
    void *addr;
    size_t size;
    int refs;                  /* atomic */
} mapping_t;

static mapping_t *mapping_get(mapping_t *m) {
    __atomic_add_fetch(&m->refs, 1, __ATOMIC_RELAXED);
    return m;
}

static void mapping_put(mapping_t *m) {
    if (m && __atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        munmap(m->addr, m->size);
        free(m);
    }
}

/* ZeroMQ's free function for a chunk sent from a mapping (its I/O thread). */
static void chunk_sent(void *data, void *hint) {
    (void)data;
    mapping_put(hint);
}

typedef struct entry {
    struct entry *prev, *next; /* storage order: head = oldest */
    char id[65];
    char checksum[33];
    uint64_t size;
    mapping_t *map;            /* the file, mapped (NULL when size 0 or while streaming) */
    int spilled;               /* the file is in the spill directory, not the memory tier */
    holder_t *runs;            /* runs that hold it */
    size_t n_runs;
    int fd;                    /* a stream's file while it is written (else -1) */
    int streaming;             /* 1 while its producer appends (never evicted or spilled) */
    uint64_t ready;            /* bytes written (size once complete) */
} entry_t;

/* A request for stream bytes not written yet, answered when they are. */
typedef struct pending {
    uint8_t rid[256];          /* the consumer's routing id */
    size_t rid_len;
    char id[65];
    uint64_t offset, seq;
    uint32_t length;
    uint64_t said_ms;          /* last PENDING answer (or when held) */
} pending_t;

static struct {
    pthread_once_t once;
    pthread_mutex_t mu;        /* everything below */
    int ready;                 /* 1 ok, -1 failed (err says why) */
    char err[700];
    char dir[400];
    char spill[400];           /* the spill tier's directory ("" = no spill tier) */
    char endpoint[256];
    uint64_t budget, bytes;    /* memory tier: bound and bytes held */
    uint64_t spill_budget, spill_bytes;
    uint64_t pin_ms;           /* a pin loomd never released lapses after this */
    uint64_t spilled_total, evicted_total; /* objects moved to the spill tier / dropped */
    loom_map_t *byid;          /* id -> entry_t */
    entry_t *head, *tail;
    void *zctx, *sock, *zap;
    int wake;                  /* eventfd: a stream grew or ended */
    pthread_t thread;
    pending_t pend[MAX_PENDING]; /* the server thread's only */
    int n_pend;
} S = {.once = PTHREAD_ONCE_INIT, .mu = PTHREAD_MUTEX_INITIALIZER, .wake = -1};

/* CURVE (loom_objstore_set_curve): this process's key pair and the folder
 * of admitted consumers' public keys ("" = any CURVE key). */
static struct {
    int on;
    char pub[41], sec[41];
    char peers[400];
} C;

/* snprintf that says whether it fit (paths here are bounded up front, so a
 * truncation is an error, never a silent wrong name). */
static int fmt(char *out, size_t n, const char *f, ...) __attribute__((format(printf, 3, 4)));
static int fmt(char *out, size_t n, const char *f, ...) {
    va_list ap;
    va_start(ap, f);
    int k = vsnprintf(out, n, f, ap);
    va_end(ap);
    return k >= 0 && (size_t)k < n ? 0 : -1;
}

static pthread_once_t host_once = PTHREAD_ONCE_INIT;
static char host_id[64];

static void load_host(void) {
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    if (!f) return;
    if (fgets(host_id, sizeof host_id, f)) host_id[strcspn(host_id, "\n")] = 0;
    fclose(f);
}

const char *loom_objstore_host_id(void) {
    pthread_once(&host_once, load_host);
    return host_id;
}

/* ---- the cache directory ---------------------------------------------- */

/* The object root ($LOOM_OBJECT_DIR or the default); -1 when too long. */
static int root_dir(char *out, size_t n) {
    const char *root = getenv("LOOM_OBJECT_DIR");
    return root && *root ? fmt(out, n, "%s", root) : fmt(out, n, "/dev/shm/loom-objects-%u", (unsigned)getuid());
}

/* The spill root ($LOOM_OBJECT_SPILL_DIR or $TMPDIR/loom-spill-<uid>,
 * TMPDIR defaulting to /var/tmp: a disk, not memory); -1 when too long. */
static int spill_root(char *out, size_t n) {
    const char *root = getenv("LOOM_OBJECT_SPILL_DIR"), *tmp = getenv("TMPDIR");
    if (root && *root) return fmt(out, n, "%s", root);
    return fmt(out, n, "%s/loom-spill-%u", tmp && *tmp ? tmp : "/var/tmp", (unsigned)getuid());
}

/* 1 when path is root/<digits>/<64 hex>. */
static int under(const char *root, const char *path) {
    size_t l = strlen(root), d;
    if (strncmp(path, root, l) || path[l] != '/') return 0;
    path += l + 1;
    if (!(d = strspn(path, "0123456789")) || path[d] != '/') return 0;
    path += d + 1;
    return strlen(path) == 64 && strspn(path, "0123456789abcdef") == 64;
}

int loom_objstore_path_ok(const char *path) {
    char root[400], sroot[400];
    return (!root_dir(root, sizeof root) && under(root, path)) ||
           (!spill_root(sroot, sizeof sroot) && under(sroot, path));
}

/* Removes dir/<pid> directories whose process is gone (killed workers). */
static void sweep_dead(const char *root) {
    DIR *d = opendir(root);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d))) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (*end || pid <= 0 || pid == getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        char sub[PATH_MAX];
        fmt(sub, sizeof sub, "%s/%s", root, de->d_name);
        DIR *s = opendir(sub);
        struct dirent *fe;
        while (s && (fe = readdir(s))) {
            if (fe->d_name[0] == '.') continue;
            char f[PATH_MAX + 80];
            fmt(f, sizeof f, "%s/%s", sub, fe->d_name);
            unlink(f);
        }
        if (s) closedir(s);
        if (!rmdir(sub)) LOOM_INFO(COMP, "msg=\"swept objects of a dead process\" dir=%s", sub);
    }
    closedir(d);
}

static void remove_dir(void) {
    pthread_mutex_lock(&S.mu);
    for (entry_t *x = S.head; x; x = x->next) {
        char f[PATH_MAX];
        fmt(f, sizeof f, "%s/%s", x->spilled ? S.spill : S.dir, x->id);
        unlink(f);
    }
    if (S.dir[0]) rmdir(S.dir);
    if (S.spill[0]) rmdir(S.spill);
    pthread_mutex_unlock(&S.mu);
}

/* ---- CURVE ------------------------------------------------------------------ */

int loom_objstore_set_curve(const char *pub, const char *sec, const char *peers_dir, loom_err_t *e) {
    if (S.ready) return loom_err_set(e, LOOM_EINVAL, "the object store has started: set CURVE before the first object");
    if (strlen(pub) != 40 || strlen(sec) != 40) return loom_err_set(e, LOOM_EINVAL, "CURVE keys must be 40 Z85 characters");
    if (fmt(C.peers, sizeof C.peers, "%s", peers_dir ? peers_dir : ""))
        return loom_err_set(e, LOOM_EINVAL, "the peer key folder path is too long");
    memcpy(C.pub, pub, 41);
    memcpy(C.sec, sec, 41);
    C.on = 1;
    return 0;
}

int loom_objstore_curve_pair(char pub[41], char sec[41]) {
    if (!C.on) return 0;
    memcpy(pub, C.pub, 41);
    memcpy(sec, C.sec, 41);
    return 1;
}

/* Is the Z85 key one of the NAME.pub files of the peers folder (read on
 * every handshake: one per consumer connection)? */
static int peer_admitted(const char *key) {
    if (!C.peers[0]) return 1;
    DIR *d = opendir(C.peers);
    struct dirent *de;
    int ok = 0;
    while (d && !ok && (de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l < 5 || strcmp(de->d_name + l - 4, ".pub")) continue;
        char path[PATH_MAX], k[41];
        loom_err_t e = {0};
        if (!fmt(path, sizeof path, "%s/%s", C.peers, de->d_name) && !loom_key_read_public(path, k, &e))
            ok = !strcmp(k, key);
    }
    if (d) closedir(d);
    return ok;
}

/* One ZAP request (RFC 27): admit CURVE clients whose key is admitted. */
static void zap_one(void *sock) {
    zmq_msg_t f[8];
    int n = 0, more = 1;
    size_t ml = sizeof more;
    while (more && n < 8) {
        zmq_msg_init(&f[n]);
        if (zmq_msg_recv(&f[n], sock, 0) < 0) { zmq_msg_close(&f[n]); break; }
        n++;
        zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &ml);
    }
    while (more) { /* more frames than ZAP has: drop them */
        zmq_msg_t x;
        zmq_msg_init(&x);
        zmq_msg_recv(&x, sock, 0);
        zmq_msg_close(&x);
        zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &ml);
    }
    const char *code = "400", *text = "CURVE required";
    char key[41] = "";
    if (n >= 7 && zmq_msg_size(&f[5]) == 5 && !memcmp(zmq_msg_data(&f[5]), "CURVE", 5) && zmq_msg_size(&f[6]) == 32) {
        zmq_z85_encode(key, zmq_msg_data(&f[6]), 32);
        if (peer_admitted(key)) code = "200", text = "OK";
        else text = "key not admitted";
    }
    if (n >= 2) {
        zmq_send(sock, "1.0", 3, ZMQ_SNDMORE);
        zmq_send(sock, zmq_msg_data(&f[1]), zmq_msg_size(&f[1]), ZMQ_SNDMORE);
        zmq_send(sock, code, 3, ZMQ_SNDMORE);
        zmq_send(sock, text, strlen(text), ZMQ_SNDMORE);
        zmq_send(sock, "", 0, ZMQ_SNDMORE);
        zmq_send(sock, "", 0, 0);
    }
    if (code[0] != '2') LOOM_WARN(COMP, "msg=\"object peer refused\" key=%s reason=\"%s\"", key[0] ? key : "-", text);
    for (int i = 0; i < n; i++) zmq_msg_close(&f[i]);
}

/* ---- the server thread -------------------------------------------------- */

/* Answers one request (rq NULL: a malformed one, bad says why); a stream's
 * range with what is written of it (a shorter answer). Returns 1 when
 * nothing of the range is written yet (the caller holds it), after
 * answering PENDING when `pending` is set, else without a word. */
static int answer(void *sock, const void *rid, size_t rid_len, const Loom__V1__ObjectRequest *rq, const char *bad,
                  int pending) {
    Loom__V1__ObjectChunk c = LOOM__V1__OBJECT_CHUNK__INIT;
    c.id = rq && rq->id ? rq->id : "";
    c.seq = rq ? rq->seq : 0;
    c.offset = rq ? rq->offset : 0;
    const uint8_t *data = NULL;
    mapping_t *from_map = NULL;
    int from_fd = -1, still_held = 0;
    pthread_mutex_lock(&S.mu);
    entry_t *x = !bad && rq ? loom_map_get(S.byid, rq->id) : NULL;
    /* a stream's range is answered with what is written of it; nothing
     * written yet: held */
    if (x && x->streaming && rq->offset < x->size && x->ready <= rq->offset && rq->length) {
        if (!pending) {
            pthread_mutex_unlock(&S.mu);
            return 1;
        }
        c.status = LOOM__V1__OBJECT_CHUNK__STATUS__STATUS_PENDING;
        c.message = "not written yet";
        c.size = x->size;
        x = NULL;
        bad = "";
        still_held = 1;
    }
    if (bad) {
        if (!c.status) c.status = LOOM__V1__OBJECT_CHUNK__STATUS__STATUS_BAD_REQUEST;
        if (!c.message) c.message = (char *)bad;
    } else if (!x) {
        c.status = LOOM__V1__OBJECT_CHUNK__STATUS__STATUS_NOT_FOUND;
        c.message = "no such object here (evicted, abandoned by its failed producer, or never stored)";
    } else if (rq->offset > x->size) {
        c.status = LOOM__V1__OBJECT_CHUNK__STATUS__STATUS_BAD_REQUEST;
        c.message = "offset past the end of the object";
        c.size = x->size;
    } else {
        c.size = x->size;
        uint64_t left = (x->streaming ? x->ready : x->size) - rq->offset;
        c.length = (uint32_t)(left < rq->length ? left : rq->length);
        if (c.length > MAX_CHUNK) c.length = MAX_CHUNK;
        if (x->map && c.length) from_map = mapping_get(x->map);
        else if (c.length) from_fd = x->fd; /* a stream being written */
    }
    size_t hl = loom__v1__object_chunk__get_packed_size(&c);
    uint8_t hdr[1024];
    int ok = hl <= sizeof hdr;
    if (ok) loom__v1__object_chunk__pack(&c, hdr);
    zmq_msg_t body;
    /* A stored object's chunk is sent straight from its mapping (no copy,
     * no fresh memory: first-touched pages are slow on some VMs); the
     * reference taken under the lock keeps it mapped until ZeroMQ is done.
     * A stream being written is read from its file (under the lock: the
     * writer's close may turn the entry into a mapping). */
    if (from_map) {
        if (ok && zmq_msg_init_data(&body, (uint8_t *)from_map->addr + rq->offset, c.length, chunk_sent, from_map) == 0)
            data = zmq_msg_data(&body);
        else
            mapping_put(from_map);
    }
    if (ok && from_fd >= 0 && zmq_msg_init_size(&body, c.length) == 0) {
        if (pread(from_fd, zmq_msg_data(&body), c.length, (off_t)rq->offset) == (ssize_t)c.length) data = zmq_msg_data(&body);
        else zmq_msg_close(&body);
    }
    pthread_mutex_unlock(&S.mu);
    if (!ok) return still_held;
    if ((from_map || from_fd >= 0) && !data) { /* could not read it: let the consumer fail cleanly */
        c.status = LOOM__V1__OBJECT_CHUNK__STATUS__STATUS_NOT_FOUND;
        c.message = "cannot read the object's file";
        c.length = 0;
        hl = loom__v1__object_chunk__get_packed_size(&c);
        loom__v1__object_chunk__pack(&c, hdr);
    }
    if (zmq_send(sock, rid, rid_len, ZMQ_SNDMORE) < 0 || zmq_send(sock, hdr, hl, data ? ZMQ_SNDMORE : 0) < 0) {
        if (data) zmq_msg_close(&body);
        return still_held;
    }
    if (data && zmq_msg_send(&body, sock, 0) < 0) zmq_msg_close(&body);
    return still_held;
}

/* Holds a request for stream bytes not written yet. A full table (many
 * consumers of streams at once) refuses it: that consumer fails and falls
 * back rather than the producer holding unbounded state. */
static int held(const void *rid, size_t rid_len, const char *id) {
    for (int i = 0; i < S.n_pend; i++)
        if (!strcmp(S.pend[i].id, id) && S.pend[i].rid_len == rid_len && !memcmp(S.pend[i].rid, rid, rid_len))
            return 1;
    return 0;
}

static void hold(void *sock, const void *rid, size_t rid_len, const Loom__V1__ObjectRequest *rq) {
    if (S.n_pend == MAX_PENDING || rid_len > sizeof S.pend[0].rid) {
        answer(sock, rid, rid_len, NULL, "too many requests waiting for streams", 0);
        return;
    }
    pending_t *p = &S.pend[S.n_pend];
    memcpy(p->rid, rid, rid_len);
    p->rid_len = rid_len;
    snprintf(p->id, sizeof p->id, "%s", rq->id);
    p->offset = rq->offset;
    p->length = rq->length;
    p->seq = rq->seq;
    p->said_ms = loom_clock_ms();
    S.n_pend++;
}

/* Answers the held requests whose bytes are there now (or whose stream is
 * gone), and says PENDING to those waiting longer than KEEPALIVE_MS. */
static void serve_pending(void *sock) {
    uint64_t now = loom_clock_ms();
    for (int i = 0; i < S.n_pend;) {
        pending_t *p = &S.pend[i];
        Loom__V1__ObjectRequest rq = LOOM__V1__OBJECT_REQUEST__INIT;
        rq.id = p->id;
        rq.offset = p->offset;
        rq.length = p->length;
        rq.seq = p->seq;
        int say = now - p->said_ms >= KEEPALIVE_MS;
        if (answer(sock, p->rid, p->rid_len, &rq, NULL, say)) {
            if (say) p->said_ms = now;
            i++;
            continue;
        }
        /* answered: keep the rest in arrival order */
        memmove(p, p + 1, (size_t)(--S.n_pend - i) * sizeof *p);
    }
}

static void wake_server(void) {
    if (S.wake >= 0) {
        uint64_t one = 1;
        if (write(S.wake, &one, sizeof one) < 0) { /* the counter saturated: it is awake anyway */ }
    }
}

/* One request: [routing id][ObjectRequest]. Anything else is dropped or
 * answered BAD_REQUEST; nothing a peer sends stops the thread. */
static void serve_one(void *sock) {
    zmq_msg_t rid, req;
    zmq_msg_init(&rid);
    zmq_msg_init(&req);
    int more = 0;
    size_t ml = sizeof more;
    if (zmq_msg_recv(&rid, sock, 0) < 0) goto out_rid;
    zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &ml);
    if (!more) goto out_rid;
    if (zmq_msg_recv(&req, sock, 0) < 0) goto out_req;
    zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &ml);
    while (more) { /* extra frames: drain them */
        zmq_msg_t x;
        zmq_msg_init(&x);
        zmq_msg_recv(&x, sock, 0);
        zmq_msg_close(&x);
        zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &ml);
    }
    Loom__V1__ObjectRequest *rq = NULL;
    const char *bad = NULL;
    if (zmq_msg_size(&req) > MAX_REQUEST) bad = "request too large";
    else if (!(rq = loom__v1__object_request__unpack(NULL, zmq_msg_size(&req), zmq_msg_data(&req))))
        bad = "malformed ObjectRequest";
    else if (!rq->id || strlen(rq->id) != 64 || strspn(rq->id, "0123456789abcdef") != 64) bad = "bad object id";
    /* a consumer's requests are answered in order: behind one held for
     * the same stream, a request waits too */
    const void *id = zmq_msg_data(&rid);
    size_t il = zmq_msg_size(&rid);
    if (!bad && rq && held(id, il, rq->id)) hold(sock, id, il, rq);
    else if (answer(sock, id, il, rq, bad, 0)) hold(sock, id, il, rq);
    if (rq) loom__v1__object_request__free_unpacked(rq, NULL);
out_req:
    zmq_msg_close(&req);
out_rid:
    zmq_msg_close(&rid);
}

static void *serve(void *arg) {
    (void)arg;
    for (;;) {
        zmq_pollitem_t it[3] = {{S.sock, 0, ZMQ_POLLIN, 0}, {NULL, S.wake, ZMQ_POLLIN, 0}, {S.zap, 0, ZMQ_POLLIN, 0}};
        int n = zmq_poll(it, S.zap ? 3 : 2, S.n_pend ? KEEPALIVE_MS / 4 : -1);
        if (n < 0) {
            if (zmq_errno() == ETERM) break;
            continue;
        }
        if (S.zap && (it[2].revents & ZMQ_POLLIN)) zap_one(S.zap);
        if (it[1].revents & ZMQ_POLLIN) {
            uint64_t v;
            if (read(S.wake, &v, sizeof v) < 0) { /* nothing to clear */ }
        }
        if (it[0].revents & ZMQ_POLLIN) serve_one(S.sock);
        if (S.n_pend) serve_pending(S.sock);
    }
    return NULL;
}

/* ---- start ---------------------------------------------------------------- */

static void start(void) {
    const char *ep = getenv("LOOM_OBJECT_ENDPOINT"), *budget = getenv("LOOM_OBJECT_CACHE_BYTES");
    char root[300];
    if (root_dir(root, sizeof root)) {
        fmt(S.err, sizeof S.err, "the object directory path $LOOM_OBJECT_DIR is too long (at most 299 bytes)");
        goto fail;
    }
    S.budget = budget && *budget ? strtoull(budget, NULL, 10) : (4ull << 30);
    const char *sb = getenv("LOOM_OBJECT_SPILL_BYTES"), *pin = getenv("LOOM_OBJECT_PIN_MS");
    S.spill_budget = sb && *sb ? strtoull(sb, NULL, 10) : (16ull << 30);
    S.pin_ms = pin && *pin ? strtoull(pin, NULL, 10) : 24ull * 3600 * 1000;
    if (!ep || !*ep) ep = "tcp://127.0.0.1:*";
    if (mkdir(root, 0700) && errno != EEXIST) {
        fmt(S.err, sizeof S.err, "cannot create the object directory %s: %s", root, strerror(errno));
        goto fail;
    }
    sweep_dead(root);
    if (fmt(S.dir, sizeof S.dir, "%s/%d", root, (int)getpid())) {
        fmt(S.err, sizeof S.err, "the object directory path %.300s is too long", root);
        goto fail;
    }
    if (mkdir(S.dir, 0700) && errno != EEXIST) {
        fmt(S.err, sizeof S.err, "cannot create the object directory %s: %s", S.dir, strerror(errno));
        goto fail;
    }
    if (S.spill_budget) { /* the spill tier: a failure to set it up only disables it */
        char sroot[300];
        if (spill_root(sroot, sizeof sroot) || (mkdir(sroot, 0700) && errno != EEXIST) ||
            fmt(S.spill, sizeof S.spill, "%s/%d", sroot, (int)getpid()) || (mkdir(S.spill, 0700) && errno != EEXIST)) {
            LOOM_WARN(COMP, "msg=\"no spill tier\" dir=%s error=\"%s\"", sroot, strerror(errno));
            S.spill[0] = 0;
            S.spill_budget = 0;
        } else {
            sweep_dead(sroot);
        }
    }
    if (!(S.byid = loom_map_new(NULL)) || !(S.zctx = zmq_ctx_new()) || !(S.sock = zmq_socket(S.zctx, ZMQ_ROUTER)) ||
        (S.wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
        fmt(S.err, sizeof S.err, "cannot start the object server: out of memory or ZeroMQ failed");
        goto fail;
    }
    int linger = 0, hwm = 64, maxmsg = MAX_REQUEST;
    int64_t maxmsg64 = maxmsg;
    zmq_setsockopt(S.sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(S.sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(S.sock, ZMQ_MAXMSGSIZE, &maxmsg64, sizeof maxmsg64);
    if (C.on) { /* the ZAP handler first: it must answer the first handshake */
        int one = 1;
        if (!(S.zap = zmq_socket(S.zctx, ZMQ_REP)) || zmq_bind(S.zap, "inproc://zeromq.zap.01") ||
            zmq_setsockopt(S.sock, ZMQ_CURVE_SERVER, &one, sizeof one) ||
            zmq_setsockopt(S.sock, ZMQ_CURVE_SECRETKEY, C.sec, 41) ||
            zmq_setsockopt(S.sock, ZMQ_ZAP_DOMAIN, "loom-objects", 12)) {
            fmt(S.err, sizeof S.err, "cannot set up CURVE on the object endpoint: %s", zmq_strerror(zmq_errno()));
            goto fail;
        }
        if (!C.peers[0])
            LOOM_WARN(COMP, "msg=\"object endpoint encrypted, but any CURVE key may fetch\" hint=\"set LOOM_OBJECT_PEER_KEYS to a folder of the workers' .pub files\"");
    }
    if (zmq_bind(S.sock, ep) != 0) {
        fmt(S.err, sizeof S.err, "cannot bind the object endpoint %s: %s", ep, zmq_strerror(zmq_errno()));
        goto fail;
    }
    size_t l = sizeof S.endpoint;
    zmq_getsockopt(S.sock, ZMQ_LAST_ENDPOINT, S.endpoint, &l);
    if (!strncmp(S.endpoint, "tcp://0.0.0.0:", 14)) { /* name this host instead of the wildcard */
        char h[200] = "localhost", port[16];
        gethostname(h, sizeof h - 1);
        fmt(port, sizeof port, "%s", S.endpoint + 14);
        fmt(S.endpoint, sizeof S.endpoint, "tcp://%s:%s", h, port);
    }
    if (pthread_create(&S.thread, NULL, serve, NULL)) {
        fmt(S.err, sizeof S.err, "cannot start the object server thread");
        goto fail;
    }
    pthread_detach(S.thread);
    atexit(remove_dir);
    S.ready = 1;
    LOOM_INFO(COMP, "msg=\"object store ready\" dir=%s endpoint=%s budget=%llu spill_dir=%s spill_budget=%llu",
              S.dir, S.endpoint, (unsigned long long)S.budget, S.spill[0] ? S.spill : "-",
              (unsigned long long)S.spill_budget);
    return;
fail:
    S.ready = -1;
    LOOM_ERROR(COMP, "msg=\"object store unavailable\" error=\"%s\"", S.err);
}

/* ---- put / drop ------------------------------------------------------------ */

static void entry_path(const entry_t *x, char *f, size_t n) { fmt(f, n, "%s/%s", x->spilled ? S.spill : S.dir, x->id); }

static void unlink_entry(entry_t *x) {
    if (x->prev) x->prev->next = x->next;
    else S.head = x->next;
    if (x->next) x->next->prev = x->prev;
    else S.tail = x->prev;
    char f[PATH_MAX];
    entry_path(x, f, sizeof f);
    unlink(f);
    mapping_put(x->map);
    if (x->fd >= 0) close(x->fd);
    if (x->spilled) S.spill_bytes -= x->size;
    else S.bytes -= x->size;
    loom_map_del(S.byid, x->id);
    free(x->runs);
    free(x);
}

/* Is x still needed by a run (a pin loomd released neither lapsed)? */
static int pinned(const entry_t *x, uint64_t now) {
    for (size_t i = 0; i < x->n_runs; i++)
        if (x->runs[i].pinned && now - x->runs[i].since < S.pin_ms) return 1;
    return 0;
}

static holder_t *holder_of(entry_t *x, const char *run) {
    for (size_t i = 0; i < x->n_runs; i++)
        if (!strcmp(x->runs[i].run, run)) return &x->runs[i];
    return NULL;
}

/* Pins x for run (a new holder, or a released one pinned again). */
static int pin(entry_t *x, const char *run) {
    if (!run || !*run) return 0;
    holder_t *h = holder_of(x, run);
    if (!h) {
        holder_t *n = realloc(x->runs, (x->n_runs + 1) * sizeof *n);
        if (!n) return LOOM_ENOMEM;
        x->runs = n;
        h = &x->runs[x->n_runs++];
        memset(h, 0, sizeof *h);
        fmt(h->run, sizeof h->run, "%.39s", run);
    }
    h->pinned = 1;
    h->since = loom_clock_ms();
    return 0;
}

/* The oldest object of a tier (spilled 0/1) that no run needs, NULL when
 * every one there is needed. */
static entry_t *victim(int spilled, uint64_t now) {
    for (entry_t *x = S.head; x; x = x->next)
        if (x->spilled == spilled && !x->streaming && !pinned(x, now)) return x;
    return NULL;
}

/* Drops unneeded spilled objects until n more bytes fit the spill tier. */
static int spill_room(uint64_t n, uint64_t now) {
    if (!S.spill[0] || n > S.spill_budget) return 0;
    entry_t *v;
    while (S.spill_bytes + n > S.spill_budget && (v = victim(1, now))) {
        LOOM_INFO(COMP, "msg=\"evicted\" tier=spill id=%.16s bytes=%llu", v->id, (unsigned long long)v->size);
        S.evicted_total++;
        unlink_entry(v);
    }
    return S.spill_bytes + n <= S.spill_budget;
}

static void fill_ref(const entry_t *x, const char *worker, const char *media, loom_objref_t *ref) {
    memset(ref, 0, sizeof *ref);
    memcpy(ref->id, x->id, sizeof ref->id);
    memcpy(ref->checksum, x->checksum, sizeof ref->checksum);
    ref->size = x->size;
    fmt(ref->worker, sizeof ref->worker, "%s", worker ? worker : "");
    fmt(ref->endpoint, sizeof ref->endpoint, "%s", S.endpoint);
    fmt(ref->host, sizeof ref->host, "%s", loom_objstore_host_id());
    entry_path(x, ref->path, sizeof ref->path);
    fmt(ref->media, sizeof ref->media, "%s", media ? media : "");
    if (C.on) memcpy(ref->key, C.pub, sizeof ref->key);
    ref->stream = x->streaming;
}

static void link_entry(entry_t *x) {
    x->prev = S.tail;
    if (S.tail) S.tail->next = x;
    else S.head = x;
    S.tail = x;
}

static int write_file(const char *path, const void *data, size_t n, loom_err_t *e) {
    char tmp[PATH_MAX];
    fmt(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return loom_err_set(e, LOOM_EIO, "cannot create %s: %s", tmp, strerror(errno));
    const char *p = data;
    size_t left = n;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int er = errno;
            close(fd);
            unlink(tmp);
            return loom_err_set(e, LOOM_EIO, "cannot write %s: %s", tmp, strerror(er));
        }
        p += w;
        left -= (size_t)w;
    }
    close(fd);
    if (rename(tmp, path)) {
        unlink(tmp);
        return loom_err_set(e, LOOM_EIO, "cannot rename %s: %s", tmp, strerror(errno));
    }
    return 0;
}


/* Maps the first size bytes of fd read-only (*out NULL when size is 0). */
static int map_fd(int fd, size_t size, mapping_t **out) {
    *out = NULL;
    if (!size) return 0;
    mapping_t *m = malloc(sizeof *m);
    void *a = m ? mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0) : MAP_FAILED;
    if (a == MAP_FAILED) {
        int er = m ? errno : ENOMEM;
        free(m);
        return er;
    }
    *m = (mapping_t){a, size, 1};
    *out = m;
    return 0;
}

/* Maps path read-only into x->map (size x->size). */
static int map_file(entry_t *x, const char *path, loom_err_t *e) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int er = fd < 0 ? errno : map_fd(fd, x->size, &x->map);
    if (fd >= 0) close(fd);
    if (er) return loom_err_set(e, LOOM_EIO, "cannot map %s: %s", path, strerror(er));
    return 0;
}

/* Moves x from the memory tier to the spill tier (room made by the caller).
 * Consumers on this host then read it over the network path: the file is
 * no longer where the reference says. */
static int spill_one(entry_t *x, loom_err_t *e) {
    char from[PATH_MAX], to[PATH_MAX];
    entry_path(x, from, sizeof from);
    fmt(to, sizeof to, "%s/%s", S.spill, x->id);
    int rc = write_file(to, x->map ? x->map->addr : "", x->size, e);
    if (rc) return rc;
    mapping_t *old = x->map;
    if ((rc = map_file(x, to, e))) {
        x->map = old;
        unlink(to);
        return rc;
    }
    mapping_put(old);
    unlink(from);
    x->spilled = 1;
    S.bytes -= x->size;
    S.spill_bytes += x->size;
    S.spilled_total++;
    LOOM_INFO(COMP, "msg=\"spilled\" id=%.16s bytes=%llu run=%s", x->id, (unsigned long long)x->size,
              x->n_runs ? x->runs[0].run : "-");
    return 0;
}

/* The error when neither tier has room for the n bytes of object id of run. */
static int full(uint64_t n, const char *id, const char *run, loom_err_t *e) {
    loom_err_set(e, LOOM_ETOOBIG,
                 "object store full: object %.16s… (%llu bytes) of run %s cannot be kept: the memory tier (%llu of "
                 "%llu bytes) and the spill tier %s (%llu of %llu bytes) hold only objects that runs' consumers "
                 "still need",
                 id, (unsigned long long)n, run && *run ? run : "-", (unsigned long long)S.bytes,
                 (unsigned long long)S.budget, S.spill[0] ? S.spill : "(none)", (unsigned long long)S.spill_bytes,
                 (unsigned long long)S.spill_budget);
    loom_err_hint(e, "raise LOOM_OBJECT_SPILL_BYTES (--object-spill-bytes) or LOOM_OBJECT_CACHE_BYTES; objects are "
                     "released as their runs' consumers finish");
    return LOOM_ETOOBIG;
}

/* Makes room for n bytes in the memory tier: drops unneeded objects
 * (oldest first), then spills needed ones. 1 when it fits, 0 when not
 * (every object left is needed and the spill tier is full). */
static int memory_room(uint64_t n, uint64_t now, loom_err_t *e, int *rc) {
    entry_t *v;
    while (S.bytes + n > S.budget) {
        if ((v = victim(0, now))) {
            LOOM_INFO(COMP, "msg=\"evicted\" id=%.16s bytes=%llu", v->id, (unsigned long long)v->size);
            S.evicted_total++;
            unlink_entry(v);
            continue;
        }
        entry_t *p = S.head; /* the oldest needed object in memory goes to disk */
        while (p && (p->spilled || p->streaming)) p = p->next;
        if (!p || !spill_room(p->size, now)) return 0;
        if ((*rc = spill_one(p, e))) return 0;
    }
    return 1;
}

int loom_objstore_put_run(const void *data, size_t n, const char *worker, const char *media, const char *run,
                          loom_objref_t *ref, loom_err_t *e) {
    pthread_once(&S.once, start);
    if (S.ready != 1) return loom_err_set(e, LOOM_EIO, "%s", S.err);
    uint8_t dg[32];
    char id[65];
    if (loom_sha256(data, n, dg)) return loom_err_set(e, LOOM_EIO, "SHA-256 failed");
    loom_hex(dg, 32, id);
    pthread_mutex_lock(&S.mu);
    int rc = 0;
    uint64_t now = loom_clock_ms();
    int needed = run && *run;
    entry_t *x = loom_map_get(S.byid, id);
    if (x) { /* content-addressed: already here */
        if (needed && (rc = pin(x, run))) loom_err_set(e, rc, "out of memory");
        goto done;
    }
    /* The memory tier, else (a needed object larger than it, or one that
     * finds it full of needed objects) straight to the spill tier. */
    int spilled = 0;
    if (n > S.budget || !memory_room(n, now, e, &rc)) {
        if (rc) goto out;
        if (!needed) {
            rc = n > S.budget ? loom_err_set(e, LOOM_ETOOBIG, "object of %zu bytes exceeds the object cache (%llu bytes)",
                                             n, (unsigned long long)S.budget)
                              : full(n, id, run, e);
            if (n > S.budget) loom_err_hint(e, "raise LOOM_OBJECT_CACHE_BYTES");
            goto out;
        }
        if (!spill_room(n, now)) {
            rc = full(n, id, run, e);
            goto out;
        }
        spilled = 1;
    }
    if (!(x = calloc(1, sizeof *x))) { rc = loom_err_set(e, LOOM_ENOMEM, "out of memory"); goto out; }
    x->fd = -1;
    x->ready = n;
    memcpy(x->id, id, sizeof id);
    loom_objstore_checksum_hex(XXH3_128bits(data, n), x->checksum);
    x->size = n;
    x->spilled = spilled;
    char path[PATH_MAX];
    entry_path(x, path, sizeof path);
    /* Written while holding the lock: puts are rare and large, and the
     * server must never see a half-made entry. */
    if ((rc = write_file(path, data, n, e))) { free(x); goto out; }
    if ((rc = map_file(x, path, e)) || (needed && (rc = pin(x, run)) && loom_err_set(e, rc, "out of memory")) ||
        (loom_map_put(S.byid, id, x) && (rc = loom_err_set(e, LOOM_ENOMEM, "out of memory")))) {
        mapping_put(x->map);
        unlink(path);
        free(x->runs);
        free(x);
        goto out;
    }
    link_entry(x);
    if (spilled) {
        S.spill_bytes += n;
        S.spilled_total++;
        LOOM_INFO(COMP, "msg=\"spilled\" id=%.16s bytes=%llu run=%s", id, (unsigned long long)n, run);
    } else {
        S.bytes += n;
    }
done:
    fill_ref(x, worker, media, ref);
out:
    pthread_mutex_unlock(&S.mu);
    return rc;
}

int loom_objstore_put(const void *data, size_t n, const char *worker, const char *media, loom_objref_t *ref,
                      loom_err_t *e) {
    return loom_objstore_put_run(data, n, worker, media, NULL, ref, e);
}

/* ---- streams ------------------------------------------------------------- */

struct loom_objstream {
    entry_t *x;                /* owned by the store; valid until close */
    int fd;                    /* our write end */
    uint64_t written, size;
};

int loom_objstore_stream_open(uint64_t size, const char *worker, const char *media, const char *run,
                              loom_objstream_t **out, loom_objref_t *ref, loom_err_t *e) {
    *out = NULL;
    pthread_once(&S.once, start);
    if (S.ready != 1) return loom_err_set(e, LOOM_EIO, "%s", S.err);
    uint8_t rnd[32];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) return loom_err_set(e, LOOM_EIO, "getrandom failed");
    loom_objstream_t *s = calloc(1, sizeof *s);
    entry_t *x = calloc(1, sizeof *x);
    if (!s || !x) {
        free(s);
        free(x);
        return loom_err_set(e, LOOM_ENOMEM, "out of memory");
    }
    loom_hex(rnd, 32, x->id);
    x->size = s->size = size;
    x->streaming = 1;
    x->fd = -1;
    char path[PATH_MAX];
    fmt(path, sizeof path, "%s/%s", S.dir, x->id);
    pthread_mutex_lock(&S.mu);
    int rc = 0;
    if (size > S.budget || !memory_room(size, loom_clock_ms(), e, &rc)) { /* streams live in the memory tier */
        if (!rc) rc = full(size, x->id, run, e);
    } else if (run && *run && pin(x, run)) {
        rc = loom_err_set(e, LOOM_ENOMEM, "out of memory");
    } else if ((s->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0 ||
               flock(s->fd, LOCK_EX | LOCK_NB) || /* held while writing: same-host consumers see a dead writer */
               (x->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        rc = loom_err_set(e, LOOM_EIO, "cannot create %s: %s", path, strerror(errno));
        if (s->fd >= 0) { close(s->fd); unlink(path); }
    } else if (loom_map_put(S.byid, x->id, x)) {
        close(s->fd);
        close(x->fd);
        unlink(path);
        rc = loom_err_set(e, LOOM_ENOMEM, "out of memory");
    }
    if (rc) {
        pthread_mutex_unlock(&S.mu);
        free(x->runs);
        free(s);
        free(x);
        return rc;
    }
    link_entry(x);
    S.bytes += size;
    fill_ref(x, worker, media, ref);
    pthread_mutex_unlock(&S.mu);
    s->x = x;
    *out = s;
    return 0;
}

int loom_objstore_stream_segment(loom_objstream_t *s, const loom_objstream_piece_t *p, int n, loom_err_t *e) {
    uint64_t len = 0;
    XXH3_state_t *h = XXH3_createState();
    if (!h || n > 14) {
        XXH3_freeState(h);
        return loom_err_set(e, n > 14 ? LOOM_EINVAL : LOOM_ENOMEM, "bad segment (at most 14 pieces)");
    }
    XXH3_128bits_reset(h);
    struct iovec iov[16];
    uint8_t head[8], tail[16];
    for (int i = 0; i < n; i++) {
        len += p[i].len;
        XXH3_128bits_update(h, p[i].data, p[i].len);
        iov[i + 1] = (struct iovec){(void *)p[i].data, p[i].len};
    }
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits_digest(h));
    XXH3_freeState(h);
    memcpy(tail, c.digest, 16);
    for (int i = 0; i < 8; i++) head[i] = (uint8_t)(len >> (8 * i));
    iov[0] = (struct iovec){head, 8};
    iov[n + 1] = (struct iovec){tail, 16};
    uint64_t total = len + LOOM_OBJSTREAM_FRAME;
    if (total > s->size - s->written)
        return loom_err_set(e, LOOM_EINVAL, "segment of %llu bytes past the stream's declared size", (unsigned long long)len);
    /* writev in full (a short write continues where it stopped) */
    int cnt = n + 2, at = 0;
    while (at < cnt) {
        ssize_t w = writev(s->fd, iov + at, cnt - at);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return loom_err_set(e, LOOM_EIO, "cannot write the stream: %s", w ? strerror(errno) : "short write");
        while (at < cnt && (size_t)w >= iov[at].iov_len) w -= (ssize_t)iov[at++].iov_len;
        if (at < cnt) {
            iov[at].iov_base = (uint8_t *)iov[at].iov_base + w;
            iov[at].iov_len -= (size_t)w;
        }
    }
    s->written += total;
    pthread_mutex_lock(&S.mu);
    s->x->ready = s->written;
    pthread_mutex_unlock(&S.mu);
    wake_server();
    return 0;
}

int loom_objstore_stream_close(loom_objstream_t *s, int ok, loom_err_t *e) {
    if (!s) return 0;
    int rc = ok && s->written != s->size
                 ? loom_err_set(e, LOOM_EINVAL, "stream closed after %llu of its %llu bytes",
                                (unsigned long long)s->written, (unsigned long long)s->size)
                 : 0;
    pthread_mutex_lock(&S.mu);
    entry_t *x = s->x;
    if (ok && !rc && x->size) {
        int er = map_fd(x->fd, x->size, &x->map);
        if (er) rc = loom_err_set(e, LOOM_EIO, "cannot map the finished stream: %s", strerror(er));
    }
    if (ok && !rc) {
        close(x->fd);
        x->fd = -1;
        x->streaming = 0;
    } else {
        unlink_entry(x); /* waiting consumers get NOT_FOUND */
    }
    pthread_mutex_unlock(&S.mu);
    close(s->fd); /* the writer's lock goes last: same-host readers see "abandoned", not a dead writer */
    wake_server();
    free(s);
    return rc;
}

int loom_objstore_drop(const char *id) {
    pthread_mutex_lock(&S.mu);
    entry_t *x = S.byid ? loom_map_get(S.byid, id) : NULL;
    if (x) unlink_entry(x);
    pthread_mutex_unlock(&S.mu);
    return x ? 0 : LOOM_ENOTFOUND;
}

size_t loom_objstore_release(const char *run, const char *id, int forget) {
    size_t n = 0;
    if (!run || !*run) return 0;
    pthread_mutex_lock(&S.mu);
    for (entry_t *x = S.head, *next; S.byid && x; x = next) {
        next = x->next;
        holder_t *h = (!id || !*id || !strcmp(x->id, id)) ? holder_of(x, run) : NULL;
        if (!h) continue;
        n++;
        if (!forget) {
            h->pinned = 0;
            continue;
        }
        *h = x->runs[--x->n_runs]; /* the run's data is gone: so is its hold */
        if (!x->n_runs) unlink_entry(x);
    }
    pthread_mutex_unlock(&S.mu);
    return n;
}

void loom_objstore_stats(loom_objstore_stats_t *st) {
    memset(st, 0, sizeof *st);
    pthread_mutex_lock(&S.mu);
    uint64_t now = loom_clock_ms();
    st->bytes = S.bytes;
    st->budget = S.budget;
    st->spill_bytes = S.spill_bytes;
    st->spill_budget = S.spill_budget;
    st->spilled_total = S.spilled_total;
    st->evicted_total = S.evicted_total;
    for (entry_t *x = S.head; x; x = x->next) {
        st->objects++;
        st->pinned += (size_t)pinned(x, now);
        st->spilled += (size_t)x->spilled;
    }
    pthread_mutex_unlock(&S.mu);
}

const char *loom_objstore_spill_dir(void) { return S.ready == 1 ? S.spill : ""; }

const char *loom_objstore_endpoint(void) { return S.ready == 1 ? S.endpoint : ""; }

uint64_t loom_objstore_bytes(void) {
    pthread_mutex_lock(&S.mu);
    uint64_t b = S.bytes;
    pthread_mutex_unlock(&S.mu);
    return b;
}

/* ---- references in JSON ---------------------------------------------------- */

void loom_objstore_checksum_hex(XXH128_hash_t h, char out[33]) {
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, h);
    loom_hex(c.digest, 16, out);
}

json_t *loom_objref_to_json(const loom_objref_t *r) {
    json_t *j = json_pack("{s:{s:s, s:I, s:s, s:s, s:s, s:s, s:s, s:s}}", "$object", "id", r->id, "size",
                          (json_int_t)r->size, "checksum", r->checksum, "worker", r->worker, "endpoint", r->endpoint,
                          "host", r->host, "path", r->path, "media", r->media);
    if (j && r->key[0]) json_object_set_new(json_object_get(j, "$object"), "key", json_string(r->key));
    if (j && r->stream) {
        json_object_del(json_object_get(j, "$object"), "checksum");
        json_object_set_new(json_object_get(j, "$object"), "stream", json_true());
    }
    return j;
}

int loom_objref_is(const json_t *j) { return json_is_object(json_object_get(j, "$object")); }

static int str_field(const json_t *o, const char *k, char *out, size_t n, int required, loom_err_t *e) {
    const json_t *v = json_object_get(o, k);
    out[0] = 0;
    if (!v && !required) return 0;
    if (!json_is_string(v) || json_string_length(v) >= n) {
        loom_err_set(e, LOOM_EINVAL, "object reference: \"%s\" must be a string of at most %zu bytes", k, n - 1);
        loom_err_field(e, "$object.%s", k);
        return LOOM_EINVAL;
    }
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

int loom_objref_from_json(const json_t *j, loom_objref_t *r, loom_err_t *e) {
    memset(r, 0, sizeof *r);
    const json_t *o = json_object_get(j, "$object");
    if (!json_is_object(o)) {
        loom_err_set(e, LOOM_EINVAL, "not an object reference (no \"$object\")");
        return LOOM_EINVAL;
    }
    int rc;
    const json_t *st = json_object_get(o, "stream");
    if (st && !json_is_boolean(st)) {
        loom_err_set(e, LOOM_EINVAL, "object reference: \"stream\" must be true or false");
        loom_err_field(e, "$object.stream");
        return LOOM_EINVAL;
    }
    r->stream = json_is_true(st);
    if ((rc = str_field(o, "id", r->id, sizeof r->id, 1, e)) ||
        (rc = str_field(o, "checksum", r->checksum, sizeof r->checksum, !r->stream, e)) || (rc = str_field(o, "worker", r->worker, sizeof r->worker, 0, e)) ||
        (rc = str_field(o, "endpoint", r->endpoint, sizeof r->endpoint, 0, e)) ||
        (rc = str_field(o, "host", r->host, sizeof r->host, 0, e)) ||
        (rc = str_field(o, "path", r->path, sizeof r->path, 0, e)) ||
        (rc = str_field(o, "media", r->media, sizeof r->media, 0, e)) ||
        (rc = str_field(o, "key", r->key, sizeof r->key, 0, e)))
        return rc;
    if (r->key[0] && !loom_key_is_z85(r->key)) {
        loom_err_set(e, LOOM_EINVAL, "object reference: \"key\" must be a CURVE public key (40 Z85 characters)");
        loom_err_field(e, "$object.key");
        return LOOM_EINVAL;
    }
    if (strlen(r->id) != 64 || strspn(r->id, "0123456789abcdef") != 64) {
        loom_err_set(e, LOOM_EINVAL, "object reference: \"id\" must be 64 lowercase hex digits (SHA-256)");
        loom_err_field(e, "$object.id");
        return LOOM_EINVAL;
    }
    if (r->stream ? r->checksum[0] != 0 : strlen(r->checksum) != 32 || strspn(r->checksum, "0123456789abcdef") != 32) {
        loom_err_set(e, LOOM_EINVAL, r->stream ? "object reference: a stream has no \"checksum\" (its segments carry theirs)"
                                               : "object reference: \"checksum\" must be 32 lowercase hex digits (XXH3-128)");
        loom_err_field(e, "$object.checksum");
        return LOOM_EINVAL;
    }
    const json_t *s = json_object_get(o, "size");
    if (!json_is_integer(s) || json_integer_value(s) < 0) {
        loom_err_set(e, LOOM_EINVAL, "object reference: \"size\" must be a non-negative integer");
        loom_err_field(e, "$object.size");
        return LOOM_EINVAL;
    }
    r->size = (uint64_t)json_integer_value(s);
    if (!r->endpoint[0] && !r->path[0]) {
        loom_err_set(e, LOOM_EINVAL, "object reference names neither an endpoint nor a path");
        loom_err_field(e, "$object.endpoint");
        return LOOM_EINVAL;
    }
    return 0;
}
