/* zap.c — ZAP handler with reloadable key allow-lists (see zap.h). */
#include "orchestrator/zap.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <zmq.h>

#include "common/clock.h"
#include "common/log.h"
#include "protocol/keys.h"
#include "common/grow.h"

#define COMP "loomd"
#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define MAX_KEYS 100000

typedef struct {
    char key[41];
    char name[64];
} entry_t;

typedef struct {
    const char *domain;
    char *dir;              /* NULL: any key (clients without a directory) */
    struct timespec mtime;  /* of dir when last read */
    int loaded;
    entry_t *v;
    size_t n;
} allow_t;

struct loom_zap {
    void *sock;
    allow_t workers, clients;
    char self_key[41];      /* loomd's own public key: an admitted client ("" = none) */
    int force;
    int changed;            /* an allow-list was re-read since loom_zap_refresh last said so */
    char last_refused[41];  /* refusals are logged once per key per 10 s */
    uint64_t last_refused_ms;
};

/* Reads every NAME.pub of a directory (a file without a key is skipped
 * with a warning, so one bad file does not lock every worker out). */
static void load(allow_t *a)
{
    DIR *d = opendir(a->dir);
    if (!d) {
        LOOM_ERROR(COMP, "msg=\"cannot read key allow-list; admitting no key\" dir=%s error=\"%s\"",
                   a->dir, strerror(errno));
        a->n = 0;
        return;
    }
    entry_t *v = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < MAX_KEYS) {
        size_t len = strlen(de->d_name);
        if (len < 5 || strcmp(de->d_name + len - 4, ".pub") != 0 || de->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", a->dir, de->d_name);
        entry_t e;
        loom_err_t err;
        if (loom_key_read_public(path, e.key, &err) != 0) {
            LOOM_WARN(COMP, "msg=\"key file skipped\" file=%s error=\"%s\"", path, err.msg);
            continue;
        }
        snprintf(e.name, sizeof e.name, "%.*s", (int)(len - 4), de->d_name);
        if (LOOM_GROW(v, cap, n + 1) != 0)
                break;
        v[n++] = e;
    }
    closedir(d);
    free(a->v);
    a->v = v;
    a->n = n;
    LOOM_INFO(COMP, "msg=\"key allow-list loaded\" domain=%s dir=%s keys=%zu", a->domain, a->dir, n);
}

/* Re-reads when the directory changed (or when forced). Returns 1 when read. */
static int refresh(allow_t *a, int force)
{
    if (!a->dir)
        return 0;
    struct stat st;
    if (stat(a->dir, &st) != 0)
        memset(&st, 0, sizeof st);
    if (!force && a->loaded && st.st_mtim.tv_sec == a->mtime.tv_sec &&
        st.st_mtim.tv_nsec == a->mtime.tv_nsec)
        return 0;
    a->mtime = st.st_mtim;
    a->loaded = 1;
    load(a);
    return 1;
}

static void refresh_all(loom_zap_t *z)
{
    int force = z->force;
    z->force = 0;
    if (refresh(&z->workers, force) | refresh(&z->clients, force))
        z->changed = 1;
}

int loom_zap_refresh(loom_zap_t *z)
{
    refresh_all(z);
    int changed = z->changed;
    z->changed = 0;
    return changed;
}

loom_zap_t *loom_zap_new(void *zctx, const char *workers_dir, const char *clients_dir,
                         const char *self_key, loom_err_t *err)
{
    loom_zap_t *z = calloc(1, sizeof *z);
    if (!z) {
        loom_err_set(err, LOOM_ENOMEM, "out of memory");
        return NULL;
    }
    if (self_key && loom_key_is_z85(self_key))
        memcpy(z->self_key, self_key, sizeof z->self_key);
    z->workers.domain = LOOM_ZAP_WORKERS;
    z->clients.domain = LOOM_ZAP_CLIENTS;
    struct stat st;
    if (!workers_dir || stat(workers_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        loom_err_set(err, LOOM_EINVAL, "worker key allow-list %s is not a directory",
                     workers_dir ? workers_dir : "(none)");
        loom_err_hint(err, "`loom keygen --dir DIR` creates DIR/workers/; admit a worker by "
                           "copying its NAME.pub there");
        goto fail;
    }
    if (!(z->workers.dir = strdup(workers_dir)) ||
        (clients_dir && !(z->clients.dir = strdup(clients_dir)))) {
        loom_err_set(err, LOOM_ENOMEM, "out of memory");
        goto fail;
    }
    z->sock = zmq_socket(zctx, ZMQ_REP);
    int linger = 0;
    if (!z->sock || zmq_setsockopt(z->sock, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_bind(z->sock, ZAP_ENDPOINT) != 0) {
        loom_err_set(err, LOOM_EIO, "cannot start the ZAP handler: %s", zmq_strerror(errno));
        goto fail;
    }
    refresh_all(z);
    z->changed = 0;
    return z;
fail:
    loom_zap_destroy(&z);
    return NULL;
}

void loom_zap_destroy(loom_zap_t **pz)
{
    if (!pz || !*pz)
        return;
    loom_zap_t *z = *pz;
    if (z->sock)
        zmq_close(z->sock);
    free(z->workers.dir);
    free(z->workers.v);
    free(z->clients.dir);
    free(z->clients.v);
    free(z);
    *pz = NULL;
}

void *loom_zap_socket(loom_zap_t *z) { return z->sock; }
void loom_zap_reload(loom_zap_t *z) { z->force = 1; }

int loom_zap_admitted(loom_zap_t *z, const char *domain, const char *key, char *name)
{
    allow_t *a = strcmp(domain, LOOM_ZAP_WORKERS) == 0   ? &z->workers
                 : strcmp(domain, LOOM_ZAP_CLIENTS) == 0 ? &z->clients
                                                         : NULL;
    if (name)
        name[0] = '\0';
    if (!a)
        return 0;
    if (!a->dir)
        return 1;
    if (a == &z->clients && z->self_key[0] && strcmp(key, z->self_key) == 0) {
        if (name)
            snprintf(name, 64, "loomd");
        return 1;
    }
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->v[i].key, key) == 0) {
            if (name)
                snprintf(name, 64, "%s", a->v[i].name);
            return 1;
        }
    return 0;
}

/* Frames of one ZAP request (RFC 27): version, request id, domain,
 * address, identity, mechanism, credentials... */
#define ZAP_FRAMES 7

static void reply(void *sock, const zmq_msg_t *reqid, const char *code, const char *text,
                  const char *user)
{
    zmq_send(sock, "1.0", 3, ZMQ_SNDMORE);
    zmq_send(sock, zmq_msg_data((zmq_msg_t *)reqid), zmq_msg_size((zmq_msg_t *)reqid), ZMQ_SNDMORE);
    zmq_send(sock, code, strlen(code), ZMQ_SNDMORE);
    zmq_send(sock, text, strlen(text), ZMQ_SNDMORE);
    zmq_send(sock, user, strlen(user), ZMQ_SNDMORE);
    zmq_send(sock, "", 0, 0);
}

static int frame_is(zmq_msg_t *f, const char *s)
{
    size_t n = strlen(s);
    return zmq_msg_size(f) == n && memcmp(zmq_msg_data(f), s, n) == 0;
}

static void handle_one(loom_zap_t *z)
{
    zmq_msg_t f[ZAP_FRAMES];
    int n = 0, more = 1;
    while (more) {
        zmq_msg_t scratch, *m = n < ZAP_FRAMES ? &f[n] : &scratch;
        zmq_msg_init(m);
        if (zmq_msg_recv(m, z->sock, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
            zmq_msg_close(m);
            if (n == 0)
                return;
            break;
        }
        more = zmq_msg_more(m);
        if (m == &scratch)
            zmq_msg_close(m);
        else
            n++;
    }
    if (n < 6) { /* not a ZAP request: answer so the REP socket stays usable */
        zmq_send(z->sock, "", 0, 0);
        goto out;
    }
    char domain[64] = "", address[64] = "";
    snprintf(domain, sizeof domain, "%.*s", (int)zmq_msg_size(&f[2]), (char *)zmq_msg_data(&f[2]));
    snprintf(address, sizeof address, "%.*s", (int)zmq_msg_size(&f[3]),
             (char *)zmq_msg_data(&f[3]));
    if (!frame_is(&f[0], "1.0") || !frame_is(&f[5], "CURVE") || n < 7 ||
        zmq_msg_size(&f[6]) != 32) {
        LOOM_WARN(COMP, "msg=\"connection refused: not CURVE\" domain=%s address=%s", domain,
                  address);
        reply(z->sock, &f[1], "400", "CURVE required", "");
        goto out;
    }
    char key[41];
    zmq_z85_encode(key, zmq_msg_data(&f[6]), 32);
    refresh_all(z);
    char name[64];
    if (loom_zap_admitted(z, domain, key, name)) {
        LOOM_DEBUG(COMP, "msg=\"peer admitted\" domain=%s key=%s name=%s address=%s", domain, key,
                   name, address);
        reply(z->sock, &f[1], "200", "OK", key);
    } else {
        uint64_t now = loom_clock_ms();
        if (strcmp(z->last_refused, key) != 0 || now - z->last_refused_ms > 10000) {
            LOOM_WARN(COMP, "msg=\"connection refused: CURVE key not admitted\" domain=%s key=%s "
                            "address=%s",
                      domain, key, address);
            memcpy(z->last_refused, key, 41);
            z->last_refused_ms = now;
        }
        reply(z->sock, &f[1], "400", "key not admitted", "");
    }
out:
    for (int i = 0; i < n; i++)
        zmq_msg_close(&f[i]);
}

void loom_zap_handle(loom_zap_t *z)
{
    for (int i = 0; i < 1000; i++) {
        int ev = 0;
        size_t len = sizeof ev;
        if (zmq_getsockopt(z->sock, ZMQ_EVENTS, &ev, &len) != 0 || !(ev & ZMQ_POLLIN))
            return;
        handle_one(z);
    }
}
