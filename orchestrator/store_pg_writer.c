/* store_pg_writer.c — bounded write queue + batching writer thread on libpq
 * pipeline mode. See store_pg_writer.h. */
#include "orchestrator/store_pg_writer.h"

#include <errno.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/map.h"

typedef struct op {
    struct op *next;
    int stmt;
    int status;
    loom_pgw_done_fn done;
    void *arg;
    uint64_t enq_ns;
    const char *params[LOOM_PGW_MAX_PARAMS];
    char data[]; /* the parameter strings */
} op_t;

struct loom_pgw {
    char *url;
    const loom_pgw_stmt_t *stmts;
    int nstmts;
    size_t queue_max, batch_max;

    pthread_t thread;
    int thread_started;
    pthread_mutex_t mu;
    pthread_cond_t work;    /* queue non-empty or stop */
    pthread_cond_t drained; /* a batch left the queue */
    op_t *head, *tail;
    size_t queued;
    op_t *done_head, *done_tail;
    int efd;
    int stop;

    int connected, ever_connected;
    uint64_t committed, failed, batches, reconnects, coalesced;
    char rejected[64][64]; /* first params of the last rejected keyed writes (a ring) */
    unsigned nrejected;
    char fence[24];   /* the leader epoch every transaction checks first; "" = none */
    int fenced;       /* a transaction found the epoch moved on: write nothing more */

    PGconn *conn; /* writer thread only */
};

enum { SENT_OK = 0, SENT_CONN = 1, SENT_DATA = 2, SENT_FENCED = 3 };

#define FENCE_SQL "SELECT loom_fence($1::bigint)"

/* 1 when r failed because another loomd took the leadership (006_leader.sql). */
static int is_fenced(const PGresult *r) {
    const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    return st && strcmp(st, "LM001") == 0;
}


static void notify(loom_pgw_t *w) {
    uint64_t one = 1;
    ssize_t n = write(w->efd, &one, sizeof one);
    (void)n; /* a full counter is still readable: nothing lost */
}

/* Moves the first n ops (all with their status set) off the queue. Called
 * with the lock held. */
static void retire(loom_pgw_t *w, size_t n) {
    int any = 0;
    for (size_t i = 0; i < n && w->head; i++) {
        op_t *o = w->head;
        w->head = o->next;
        if (!w->head) w->tail = NULL;
        w->queued--;
        if (o->status == 0) w->committed++;
        else w->failed++;
        if (o->stmt >= 0 && o->status != 0 && w->stmts[o->stmt].keyed && o->params[0])
            snprintf(w->rejected[w->nrejected++ % 64], sizeof w->rejected[0], "%s", o->params[0]);
        for (unsigned k = 0; o->stmt == LOOM_PGW_BARRIER && o->params[0] && k < 64 && k < w->nrejected; k++)
            if (strcmp(w->rejected[k], o->params[0]) == 0)
                o->status = LOOM_EDB; /* the keyed write before it was refused */
        o->next = NULL;
        if (o->done) {
            if (w->done_tail) w->done_tail->next = o;
            else w->done_head = o;
            w->done_tail = o;
            any = 1;
        } else {
            free(o);
        }
    }
    if (any) notify(w);
    pthread_cond_broadcast(&w->drained);
}

static int do_connect(loom_pgw_t *w) {
    const char *keys[] = {"dbname", "application_name", "connect_timeout", NULL};
    const char *vals[] = {w->url, "loomd-writer", "5", NULL};
    w->conn = PQconnectdbParams(keys, vals, 1);
    if (!w->conn || PQstatus(w->conn) != CONNECTION_OK) {
        LOOM_DEBUG("store", "msg=\"writer connect failed\" error=\"%s\"",
                   w->conn ? strtok(PQerrorMessage(w->conn), "\n") : "out of memory");
        goto fail;
    }
    for (int i = 0; i < w->nstmts; i++) {
        PGresult *r = PQprepare(w->conn, w->stmts[i].name, w->stmts[i].sql,
                                w->stmts[i].nparams, NULL);
        int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok)
            LOOM_ERROR("store", "msg=\"prepare failed\" stmt=%s error=\"%s\"",
                       w->stmts[i].name, strtok(PQresultErrorMessage(r), "\n"));
        PQclear(r);
        if (!ok) goto fail;
    }
    return 0;
fail:
    PQfinish(w->conn);
    w->conn = NULL;
    return -1;
}

static int is_ok(PGresult *r) {
    ExecStatusType st = PQresultStatus(r);
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

/* The coalescing plan of one batch: for write i, skip[i] is SEND (send
 * stmts[].sql with params[i]: its own, or merged with the earlier writes of
 * its row), FOLDED (covered by a later write) or SEND_ARRAY (send
 * stmts[].array_sql with params[i]: text[] literals of the column values of
 * every write of that statement in the batch). */
enum { SEND = 0, FOLDED = 1, SEND_ARRAY = 2 };
typedef struct plan {
    unsigned char *skip;
    const char *(*params)[LOOM_PGW_MAX_PARAMS];
    size_t folded;
    loom_buf_t *arrays; /* nstmts * LOOM_PGW_MAX_PARAMS, owned */
    int narrays;
} plan_t;

/* Appends s as one element of a PostgreSQL array literal. */
static void array_elem(loom_buf_t *b, const char *s) {
    loom_buf_putc(b, b->len ? ',' : '{');
    if (!s) {
        loom_buf_puts(b, "NULL");
        return;
    }
    loom_buf_putc(b, '"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') loom_buf_putc(b, '\\');
        loom_buf_putc(b, *s);
    }
    loom_buf_putc(b, '"');
}

/* Groups the writes of each statement with an array_sql into one SEND_ARRAY
 * write at the position of the last of them. Returns 0 or -1 (out of
 * memory: the caller then sends every write as it is). */
static int plan_arrays(const loom_pgw_stmt_t *stmts, int nstmts, op_t *first, size_t n,
                       plan_t *pl) {
    for (int st = 0; st < nstmts; st++) {
        if (!stmts[st].array_sql) continue;
        size_t count = 0, lastw = 0;
        op_t *o = first;
        for (size_t i = 0; i < n; i++, o = o->next)
            if (o->stmt == st) count++, lastw = i;
        if (count < 2) continue;
        if (!pl->arrays) {
            pl->narrays = nstmts * LOOM_PGW_MAX_PARAMS;
            pl->arrays = calloc((size_t)pl->narrays, sizeof *pl->arrays);
            if (!pl->arrays) return -1;
        }
        loom_buf_t *arr = &pl->arrays[st * LOOM_PGW_MAX_PARAMS];
        o = first;
        for (size_t i = 0; i < n; i++, o = o->next) {
            if (o->stmt != st) continue;
            for (int k = 0; k < stmts[st].nparams; k++) array_elem(&arr[k], o->params[k]);
            pl->skip[i] = i == lastw ? SEND_ARRAY : FOLDED;
        }
        for (int k = 0; k < stmts[st].nparams; k++) {
            if (loom_buf_putc(&arr[k], '}') != 0 || !arr[k].data) return -1;
            pl->params[lastw][k] = arr[k].data;
        }
    }
    return 0;
}

/* Builds the plan for the n writes from first (see merge_keys in the
 * header). Returns 0, or -1 when out of memory (then nothing is merged). */
static int plan_batch(const loom_pgw_stmt_t *stmts, int nstmts, op_t *first, size_t n,
                      plan_t *pl) {
    pl->folded = 0;
    pl->arrays = NULL;
    pl->narrays = 0;
    pl->skip = calloc(n ? n : 1, 1);
    pl->params = malloc((n ? n : 1) * sizeof *pl->params);
    loom_map_t *last = loom_map_new(NULL); /* row key -> 1 + index of its latest write */
    loom_buf_t key = LOOM_BUF_INIT;
    int rc = (pl->skip && pl->params && last) ? 0 : -1;
    op_t *o = first;
    for (size_t i = 0; i < n && rc == 0; i++, o = o->next) {
        memcpy(pl->params[i], o->params, sizeof o->params);
        if (o->stmt == LOOM_PGW_BARRIER || stmts[o->stmt].merge_keys <= 0) continue;
        const loom_pgw_stmt_t *st = &stmts[o->stmt];
        loom_buf_reset(&key);
        int bad = loom_buf_printf(&key, "%d", o->stmt) != 0;
        /* length-prefixed, so no key text can collide with another */
        for (int k = 0; k < st->merge_keys; k++)
            bad |= (o->params[k] ? loom_buf_printf(&key, "|%zu:%s", strlen(o->params[k]),
                                                   o->params[k])
                                 : loom_buf_puts(&key, "|-")) != 0;
        if (bad || !key.data) {
            rc = -1;
            break;
        }
        size_t prev = (size_t)(uintptr_t)loom_map_get(last, key.data);
        if (prev) {
            for (int j = 0; j < st->nparams; j++)
                if (!pl->params[i][j]) pl->params[i][j] = pl->params[prev - 1][j];
            pl->skip[prev - 1] = FOLDED;
            pl->folded++;
        }
        if (loom_map_put(last, key.data, (void *)(uintptr_t)(i + 1)) != 0) rc = -1;
    }
    loom_buf_free(&key);
    loom_map_destroy(&last);
    if (rc == 0) rc = plan_arrays(stmts, nstmts, first, n, pl);
    if (rc != 0 && pl->skip && pl->params) {
        /* fall back to sending every write as it is */
        memset(pl->skip, 0, n ? n : 1);
        o = first;
        for (size_t i = 0; i < n; i++, o = o->next)
            memcpy(pl->params[i], o->params, sizeof o->params);
        pl->folded = 0;
        rc = 0;
    }
    return rc;
}

static void plan_free(plan_t *pl) {
    for (int i = 0; i < pl->narrays; i++) loom_buf_free(&pl->arrays[i]);
    free(pl->arrays);
    free(pl->skip);
    free(pl->params);
}

/* Sends BEGIN; ops; COMMIT as one pipeline and reads every result. Writes
 * of one row are coalesced first (plan_batch). */
static int send_batch(loom_pgw_t *w, op_t *first, size_t n, const char *fence) {
    PGconn *c = w->conn;
    int data_err = 0, fenced = 0;
    plan_t pl;
    if (plan_batch(w->stmts, w->nstmts, first, n, &pl) != 0) {
        plan_free(&pl);
        return SENT_CONN; /* out of memory: retried like a lost connection */
    }
    if (!PQenterPipelineMode(c)) {
        plan_free(&pl);
        return SENT_CONN;
    }
    if (!PQsendQueryParams(c, "BEGIN", 0, NULL, NULL, NULL, NULL, 0)) goto conn;
    size_t sent = 0;
    if (fence[0]) {
        if (!PQsendQueryParams(c, FENCE_SQL, 1, NULL, &fence, NULL, NULL, 0)) goto conn;
        sent++;
    }
    op_t *o = first;
    for (size_t i = 0; i < n; i++, o = o->next) {
        if (o->stmt == LOOM_PGW_BARRIER || pl.skip[i] == FOLDED) continue;
        sent++;
        const loom_pgw_stmt_t *st = &w->stmts[o->stmt];
        if (pl.skip[i] == SEND_ARRAY) {
            if (!PQsendQueryParams(c, st->array_sql, st->nparams, NULL, pl.params[i], NULL, NULL,
                                   0))
                goto conn;
        } else if (!PQsendQueryPrepared(c, st->name, st->nparams, pl.params[i], NULL, NULL, 0)) {
            goto conn;
        }
    }
    if (!PQsendQueryParams(c, "COMMIT", 0, NULL, NULL, NULL, NULL, 0)) goto conn;
    if (!PQpipelineSync(c)) goto conn;
    for (size_t q = 0; q < sent + 2; q++) {
        PGresult *r = PQgetResult(c);
        if (!r) goto conn;
        if (!is_ok(r)) {
            fenced |= is_fenced(r);
            if (PQresultStatus(r) == PGRES_FATAL_ERROR && PQstatus(c) == CONNECTION_OK)
                LOOM_DEBUG("store", "msg=\"batch rejected\" error=\"%s\"",
                           strtok(PQresultErrorMessage(r), "\n"));
            data_err = 1;
        }
        PQclear(r);
        while ((r = PQgetResult(c)) != NULL) PQclear(r); /* the NULL separator */
        if (PQstatus(c) != CONNECTION_OK) goto conn;
    }
    PGresult *r = PQgetResult(c);
    if (!r || PQresultStatus(r) != PGRES_PIPELINE_SYNC) {
        PQclear(r);
        goto conn;
    }
    PQclear(r);
    if (!PQexitPipelineMode(c)) goto conn;
    /* A failed statement skips the COMMIT but leaves the explicit
     * transaction open (aborted): end it. */
    if (PQtransactionStatus(c) != PQTRANS_IDLE) {
        PGresult *rb = PQexec(c, "ROLLBACK");
        PQclear(rb);
    }
    if (PQstatus(c) != CONNECTION_OK) goto conn;
    if (!data_err) {
        pthread_mutex_lock(&w->mu);
        w->coalesced += pl.folded;
        pthread_mutex_unlock(&w->mu);
    }
    plan_free(&pl);
    return fenced ? SENT_FENCED : data_err ? SENT_DATA : SENT_OK;
conn:
    plan_free(&pl);
    return SENT_CONN;
}

/* Replays ops one per transaction after a rejected batch; sets each op's
 * status. Returns how many ops got a verdict (less than n when the
 * connection dropped on the way). */
static size_t send_each(loom_pgw_t *w, op_t *first, size_t n, const char *fence, int *fenced) {
    op_t *o = first;
    size_t i = 0;
    for (; i < n; i++, o = o->next) {
        if (o->stmt == LOOM_PGW_BARRIER) {
            o->status = 0;
            continue;
        }
        const loom_pgw_stmt_t *st = &w->stmts[o->stmt];
        if (fence[0]) { /* the write and its fence check in one transaction */
            PGresult *b = PQexec(w->conn, "BEGIN");
            PQclear(b);
            b = PQexecParams(w->conn, FENCE_SQL, 1, NULL, &fence, NULL, NULL, 0);
            int lost = is_fenced(b);
            PQclear(b);
            if (lost) {
                b = PQexec(w->conn, "ROLLBACK");
                PQclear(b);
                *fenced = 1;
                break;
            }
        }
        PGresult *r = PQexecPrepared(w->conn, st->name, st->nparams, o->params, NULL, NULL, 0);
        if (fence[0]) {
            PGresult *e = PQexec(w->conn, is_ok(r) ? "COMMIT" : "ROLLBACK");
            if (is_ok(r) && !is_ok(e)) { /* the commit failed: report that */
                PQclear(r);
                r = e;
            } else {
                PQclear(e);
            }
        }
        if (PQstatus(w->conn) != CONNECTION_OK) {
            PQclear(r);
            break;
        }
        if (is_ok(r)) {
            o->status = 0;
        } else {
            o->status = LOOM_EDB;
            LOOM_ERROR("store", "msg=\"write rejected\" stmt=%s error=\"%s\"", st->name,
                       r ? strtok(PQresultErrorMessage(r), "\n") : "out of memory");
        }
        PQclear(r);
    }
    return i;
}

/* Sleeps up to ms unless stop is requested (or, with wake_on_work, new
 * work arrives). Called with the lock held. */
static void wait_ms(loom_pgw_t *w, int ms, int wake_on_work) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    while (!w->stop) {
        if (pthread_cond_timedwait(&w->work, &w->mu, &ts) == ETIMEDOUT) break;
        if (wake_on_work && w->head) break;
    }
}

/* Connects when there is no connection (also while idle, so health shows
 * an outage before the next write), probes an idle connection once a
 * second, and sends the queue head in batches. */
static void *writer_main(void *arg) {
    loom_pgw_t *w = arg;
    int backoff = 100;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        if (w->stop) break;
        if (!w->conn) {
            pthread_mutex_unlock(&w->mu);
            int rc = do_connect(w);
            pthread_mutex_lock(&w->mu);
            if (rc != 0) {
                w->connected = 0;
                wait_ms(w, backoff, 0);
                backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
                continue;
            }
            if (w->ever_connected) {
                w->reconnects++;
                LOOM_INFO("store", "msg=\"database reconnected\" queued=%zu", w->queued);
            }
            w->connected = w->ever_connected = 1;
            backoff = 100;
        }
        if (!w->head) {
            wait_ms(w, 1000, 1);
            if (!w->head && !w->stop) {
                pthread_mutex_unlock(&w->mu);
                int dead = !PQconsumeInput(w->conn) || PQstatus(w->conn) != CONNECTION_OK;
                pthread_mutex_lock(&w->mu);
                if (dead) {
                    LOOM_WARN("store", "msg=\"database connection lost\"");
                    w->connected = 0;
                    PQfinish(w->conn);
                    w->conn = NULL;
                }
            }
            continue;
        }
        if (w->fenced) { /* deposed: loomd exits (lease_pg.h); write nothing */
            wait_ms(w, 1000, 0);
            continue;
        }
        size_t n = w->queued < w->batch_max ? w->queued : w->batch_max;
        op_t *first = w->head;
        char fence[sizeof w->fence];
        memcpy(fence, w->fence, sizeof fence);
        pthread_mutex_unlock(&w->mu);

        int rc = send_batch(w, first, n, fence);
        size_t verdicts = n;
        int fenced = rc == SENT_FENCED;
        if (rc == SENT_OK) {
            op_t *o = first;
            for (size_t i = 0; i < n; i++, o = o->next) o->status = 0;
        } else if (rc == SENT_DATA) {
            verdicts = send_each(w, first, n, fence, &fenced);
            if (verdicts < n && !fenced) rc = SENT_CONN;
        } else {
            verdicts = 0;
        }
        pthread_mutex_lock(&w->mu);
        w->batches++;
        retire(w, verdicts);
        if (fenced) {
            w->fenced = 1;
            LOOM_ERROR("store", "msg=\"another loomd is the leader now (epoch %s is fenced); "
                                "writing nothing more\" queued=%zu", fence, w->queued);
            notify(w);
            continue;
        }
        if (rc == SENT_CONN) {
            if (w->connected)
                LOOM_WARN("store", "msg=\"database connection lost, buffering\" queued=%zu",
                          w->queued);
            w->connected = 0;
            PQfinish(w->conn);
            w->conn = NULL;
            wait_ms(w, backoff, 0);
            backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
        }
    }
    pthread_mutex_unlock(&w->mu);
    PQfinish(w->conn);
    w->conn = NULL;
    return NULL;
}

loom_pgw_t *loom_pgw_new(const char *url, const loom_pgw_stmt_t *stmts, int nstmts,
                         size_t queue_max, size_t batch_max, loom_err_t *err) {
    loom_pgw_t *w = calloc(1, sizeof *w);
    if (!w) goto oom;
    w->url = strdup(url);
    if (!w->url) goto oom;
    w->stmts = stmts;
    w->nstmts = nstmts;
    w->queue_max = queue_max;
    w->batch_max = batch_max ? batch_max : 256;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->work, NULL);
    pthread_cond_init(&w->drained, NULL);
    w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->efd < 0) {
        loom_err_set(err, LOOM_EIO, "eventfd failed: %s", strerror(errno));
        goto fail;
    }
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        loom_err_set(err, LOOM_EIO, "cannot start the database writer thread");
        goto fail;
    }
    w->thread_started = 1;
    return w;
oom:
    loom_err_set(err, LOOM_ENOMEM, "out of memory");
fail:
    loom_pgw_destroy(&w, 0);
    return NULL;
}

static void free_list(op_t *o) {
    while (o) {
        op_t *n = o->next;
        free(o);
        o = n;
    }
}

void loom_pgw_destroy(loom_pgw_t **pw, int flush_ms) {
    if (!pw || !*pw) return;
    loom_pgw_t *w = *pw;
    if (w->thread_started) {
        if (flush_ms > 0) loom_pgw_flush(w, flush_ms);
        pthread_mutex_lock(&w->mu);
        w->stop = 1;
        pthread_cond_broadcast(&w->work);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->thread, NULL);
    }
    if (w->queued)
        LOOM_WARN("store", "msg=\"writes not committed at shutdown\" count=%zu", w->queued);
    free_list(w->head);
    free_list(w->done_head);
    if (w->efd >= 0 && w->efd != 0) close(w->efd);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->work);
    pthread_cond_destroy(&w->drained);
    free(w->url);
    free(w);
    *pw = NULL;
}

int loom_pgw_enqueue(loom_pgw_t *w, int stmt, const char *const *params, int admit,
                     loom_pgw_done_fn done, void *arg, loom_err_t *err) {
    if (stmt != LOOM_PGW_BARRIER && (stmt < 0 || stmt >= w->nstmts))
        return loom_err_set(err, LOOM_EINVAL, "unknown statement %d", stmt);
    int np = stmt == LOOM_PGW_BARRIER ? (params && params[0] ? 1 : 0) : w->stmts[stmt].nparams;
    size_t bytes = 0;
    for (int i = 0; i < np; i++)
        if (params[i]) bytes += strlen(params[i]) + 1;
    op_t *o = malloc(sizeof *o + bytes);
    if (!o) return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    char *p = o->data;
    for (int i = 0; i < LOOM_PGW_MAX_PARAMS; i++) o->params[i] = NULL;
    for (int i = 0; i < np; i++) {
        if (!params[i]) continue;
        size_t l = strlen(params[i]) + 1;
        memcpy(p, params[i], l);
        o->params[i] = p;
        p += l;
    }
    o->next = NULL;
    o->stmt = stmt;
    o->status = 0;
    o->done = done;
    o->arg = arg;
    o->enq_ns = loom_clock_ns();

    pthread_mutex_lock(&w->mu);
    if (admit && w->queue_max && w->queued >= w->queue_max) {
        size_t q = w->queued;
        int up = w->connected;
        pthread_mutex_unlock(&w->mu);
        free(o);
        loom_err_set(err, LOOM_ETOOBIG, "database write queue full (%zu writes buffered)", q);
        if (!up) loom_err_hint(err, "the database is unreachable; retry when it is back");
        return LOOM_ETOOBIG;
    }
    if (w->tail) w->tail->next = o;
    else w->head = o;
    w->tail = o;
    w->queued++;
    pthread_cond_signal(&w->work);
    pthread_mutex_unlock(&w->mu);
    return 0;
}

int loom_pgw_fd(const loom_pgw_t *w) { return w->efd; }

int loom_pgw_dispatch(loom_pgw_t *w) {
    uint64_t v;
    ssize_t r = read(w->efd, &v, sizeof v);
    (void)r;
    pthread_mutex_lock(&w->mu);
    op_t *list = w->done_head;
    w->done_head = w->done_tail = NULL;
    pthread_mutex_unlock(&w->mu);
    int n = 0;
    while (list) {
        op_t *next = list->next;
        list->done(list->arg, list->status);
        free(list);
        list = next;
        n++;
    }
    return n;
}

int loom_pgw_flush(loom_pgw_t *w, int timeout_ms) {
    uint64_t deadline = loom_clock_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        loom_pgw_dispatch(w);
        pthread_mutex_lock(&w->mu);
        size_t q = w->queued;
        if (q && !w->fenced && loom_clock_ms() < deadline) { /* fenced: it never drains */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 50 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&w->drained, &w->mu, &ts);
            pthread_mutex_unlock(&w->mu);
            continue;
        }
        pthread_mutex_unlock(&w->mu);
        loom_pgw_dispatch(w);
        return q ? LOOM_ETIMEDOUT : 0;
    }
}

void loom_pgw_set_fence(loom_pgw_t *w, int64_t epoch) {
    pthread_mutex_lock(&w->mu);
    if (epoch > 0) snprintf(w->fence, sizeof w->fence, "%lld", (long long)epoch);
    else w->fence[0] = 0;
    pthread_mutex_unlock(&w->mu);
}

int loom_pgw_fenced(loom_pgw_t *w) {
    pthread_mutex_lock(&w->mu);
    int f = w->fenced;
    pthread_mutex_unlock(&w->mu);
    return f;
}

void loom_pgw_get_stats(loom_pgw_t *w, loom_pgw_stats_t *out) {
    pthread_mutex_lock(&w->mu);
    out->connected = w->connected;
    out->queued = w->queued;
    out->queue_max = w->queue_max;
    out->lag_ms = w->head ? (double)(loom_clock_ns() - w->head->enq_ns) / 1e6 : 0.0;
    out->committed = w->committed;
    out->failed = w->failed;
    out->batches = w->batches;
    out->reconnects = w->reconnects;
    out->coalesced = w->coalesced;
    pthread_mutex_unlock(&w->mu);
}
