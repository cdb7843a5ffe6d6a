/* lease_pg.c — the leader lease (see lease_pg.h): one thread, one libpq
 * connection holding the advisory lock, loom_leader for the epoch and the
 * leader's endpoints. */
#include "orchestrator/lease_pg.h"

#include <errno.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"

#define COMP "lease"
/* The leader lock: the two-key form, so it never meets the migration lock
 * (store_pg.c's single key 1819242349, "loom"). */
#define LOCK_SQL "SELECT pg_try_advisory_lock(1819242349, 1)"
#define ROW_SQL                                                                                   \
    "SELECT epoch, client_endpoint, worker_endpoint, "                                            \
    "COALESCE(extract(epoch FROM now() - renewed) * 1000, 0)::bigint, lease_pid "                 \
    "FROM loom_leader WHERE id = 1"
#define TAKE_SQL                                                                                  \
    "UPDATE loom_leader SET epoch = epoch + 1, holder = $1, client_endpoint = $2, "              \
    "worker_endpoint = $3, since = now(), renewed = now(), lease_pid = pg_backend_pid() "        \
    "WHERE id = 1 RETURNING epoch"
#define RENEW_SQL "UPDATE loom_leader SET renewed = now() WHERE id = 1 AND epoch = $1 RETURNING epoch"

struct loom_lease {
    char *url, *holder;
    char client_ep[256], worker_ep[256];
    loom_store_pg_t *store;
    int poll_ms, check_ms, ttl_ms;
    atomic_uint_fast64_t alive_ms;   /* loomd's event loop last turned (loom_clock_ms) */
    int efd;
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;                        /* under mu */
    loom_lease_role_t role;          /* under mu */
    int64_t epoch;                   /* under mu: ours while leading */
    char lead_client[256], lead_worker[256]; /* under mu */
    PGconn *conn;                    /* the thread's */
};

loom_lease_t *loom_lease_new(const loom_lease_opts_t *o, loom_err_t *err)
{
    if (!o || !o->url || !o->url[0]) {
        loom_err_set(err, LOOM_EINVAL, "the leader lease needs a database URL");
        return NULL;
    }
    loom_lease_t *l = calloc(1, sizeof *l);
    char host[128] = "host";
    gethostname(host, sizeof host - 1);
    char def[200];
    snprintf(def, sizeof def, "%s/%d", host, (int)getpid());
    if (!l || !(l->url = strdup(o->url)) || !(l->holder = strdup(o->holder ? o->holder : def))) {
        if (l)
            free(l->url);
        free(l);
        loom_err_set(err, LOOM_ENOMEM, "out of memory");
        return NULL;
    }
    l->store = o->store;
    l->poll_ms = o->poll_ms > 0 ? o->poll_ms : 200;
    l->check_ms = o->check_ms > 0 ? o->check_ms : 1000;
    l->ttl_ms = o->ttl_ms > 0 ? o->ttl_ms : 10000;
    if (l->check_ms > l->ttl_ms / 3)
        l->check_ms = l->ttl_ms / 3 > 0 ? l->ttl_ms / 3 : 1;
    atomic_store(&l->alive_ms, loom_clock_ms());
    l->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    return l;
}

static void set_role(loom_lease_t *l, loom_lease_role_t role, int64_t epoch)
{
    pthread_mutex_lock(&l->mu);
    l->role = role;
    l->epoch = epoch;
    pthread_mutex_unlock(&l->mu);
    uint64_t one = 1;
    ssize_t n = write(l->efd, &one, sizeof one);
    (void)n;
}

/* The role as the thread sees it (loom_lease_role also consumes the fd). */
static loom_lease_role_t cur_role(loom_lease_t *l)
{
    pthread_mutex_lock(&l->mu);
    loom_lease_role_t r = l->role;
    pthread_mutex_unlock(&l->mu);
    return r;
}

static void drop_conn(loom_lease_t *l)
{
    PQfinish(l->conn);
    l->conn = NULL;
}

/* Connects with short keepalives on both ends, so a vanished leader's
 * session (and its lock) ends within seconds, not hours. */
static int do_connect(loom_lease_t *l)
{
    const char *keys[] = {"dbname", "application_name", "connect_timeout", "keepalives",
                          "keepalives_idle", "keepalives_interval", "keepalives_count", NULL};
    const char *vals[] = {l->url, "loomd-lease", "3", "1", "2", "1", "3", NULL};
    l->conn = PQconnectdbParams(keys, vals, 1);
    if (!l->conn || PQstatus(l->conn) != CONNECTION_OK) {
        LOOM_DEBUG(COMP, "msg=\"connect failed\" error=\"%s\"",
                   l->conn ? strtok(PQerrorMessage(l->conn), "\n") : "out of memory");
        drop_conn(l);
        return -1;
    }
    PGresult *r = PQexec(l->conn, "SET tcp_keepalives_idle = 2; SET tcp_keepalives_interval = 1; "
                                  "SET tcp_keepalives_count = 3; SET statement_timeout = '30s'; "
                                  "SET client_min_messages = warning");
    PQclear(r);
    return 0;
}

/* One-row, one-column boolean/bigint queries. Return -1 on a lost
 * connection or error (the connection is then dropped). */
static int query_bool(loom_lease_t *l, const char *sql, int *out)
{
    PGresult *r = PQexec(l->conn, sql);
    int ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
    if (ok)
        *out = PQgetvalue(r, 0, 0)[0] == 't';
    else
        LOOM_DEBUG(COMP, "msg=\"query failed\" error=\"%s\"", strtok(PQresultErrorMessage(r), "\n"));
    PQclear(r);
    if (!ok)
        drop_conn(l);
    return ok ? 0 : -1;
}

/* Reads the leader row: its epoch and endpoints, how long ago it was
 * renewed (ms) and the backend pid of the session holding the lock. */
static int read_row(loom_lease_t *l, int64_t *epoch, int64_t *age_ms, int *pid)
{
    PGresult *r = PQexec(l->conn, ROW_SQL);
    int ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
    if (ok) {
        *epoch = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        *age_ms = strtoll(PQgetvalue(r, 0, 3), NULL, 10);
        *pid = PQgetisnull(r, 0, 4) ? 0 : atoi(PQgetvalue(r, 0, 4));
        pthread_mutex_lock(&l->mu);
        snprintf(l->lead_client, sizeof l->lead_client, "%s", PQgetvalue(r, 0, 1));
        snprintf(l->lead_worker, sizeof l->lead_worker, "%s", PQgetvalue(r, 0, 2));
        pthread_mutex_unlock(&l->mu);
    } else {
        LOOM_DEBUG(COMP, "msg=\"reading loom_leader failed\" error=\"%s\"",
                   strtok(PQresultErrorMessage(r), "\n"));
        drop_conn(l);
    }
    PQclear(r);
    return ok ? 0 : -1;
}

/* Holding the lock: bump the epoch (waits for a deposed leader's open
 * transaction, whose fence check holds the row) and fence our store. */
static int take(loom_lease_t *l, int64_t *epoch)
{
    const char *p[3] = {l->holder, l->client_ep, l->worker_ep};
    PGresult *r = PQexecParams(l->conn, TAKE_SQL, 3, NULL, p, NULL, NULL, 0);
    int ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
    if (ok)
        *epoch = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    else
        LOOM_WARN(COMP, "msg=\"taking the lead failed\" error=\"%s\"",
                  strtok(PQresultErrorMessage(r), "\n"));
    PQclear(r);
    if (!ok)
        drop_conn(l);
    return ok ? 0 : -1;
}

/* Runs sql with one parameter; 1 when it returned a row, 0 when none, -1
 * on failure (the connection is then dropped). */
static int exec_row(loom_lease_t *l, const char *sql, const char *param)
{
    PGresult *r = PQexecParams(l->conn, sql, param ? 1 : 0, NULL, &param, NULL, NULL, 0);
    int st = PQresultStatus(r) == PGRES_TUPLES_OK ? PQntuples(r) > 0 : -1;
    if (st < 0)
        LOOM_DEBUG(COMP, "msg=\"query failed\" error=\"%s\"", strtok(PQresultErrorMessage(r), "\n"));
    PQclear(r);
    if (st < 0)
        drop_conn(l);
    return st;
}

/* Sleeps ms unless stopped; returns 1 when stopping. */
static int nap(loom_lease_t *l, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&l->mu);
    while (!l->stop && pthread_cond_timedwait(&l->cv, &l->mu, &ts) != ETIMEDOUT)
        ;
    int stop = l->stop;
    pthread_mutex_unlock(&l->mu);
    return stop;
}

static void *lease_main(void *arg)
{
    loom_lease_t *l = arg;
    int64_t mine = 0; /* our epoch while leading */
    int backoff = 100;
    for (;;) {
        loom_lease_role_t role = cur_role(l);
        if (role == LOOM_LEASE_DEPOSED)
            break;
        if (!l->conn && do_connect(l) != 0) {
            if (nap(l, backoff))
                break;
            backoff = backoff * 2 > 2000 ? 2000 : backoff * 2;
            continue;
        }
        backoff = 100;
        int locked = 0, pid = 0;
        int64_t epoch = 0, age = 0;
        if (role == LOOM_LEASE_STANDBY) {
            if (query_bool(l, LOCK_SQL, &locked) != 0)
                continue;
            if (!locked) {
                /* a leader that stopped renewing (hung, stopped, cut off
                 * from us but not from the database): end its lease
                 * session, which frees the lock; its writes are fenced */
                if (read_row(l, &epoch, &age, &pid) == 0 && epoch > 0 && age > l->ttl_ms && pid > 0) {
                    char p[16];
                    snprintf(p, sizeof p, "%d", pid);
                    LOOM_WARN(COMP, "msg=\"the leader stopped renewing its lease; ending its session\" "
                                    "epoch=%lld silent_ms=%lld ttl_ms=%d",
                              (long long)epoch, (long long)age, l->ttl_ms);
                    if (exec_row(l, "SELECT pg_terminate_backend($1::int)", p) < 0)
                        continue;
                }
            } else if (take(l, &mine) == 0) {
                if (l->store)
                    loom_store_pg_set_fence(l->store, mine);
                LOOM_INFO(COMP, "msg=\"this loomd is the leader now\" epoch=%lld holder=%s",
                          (long long)mine, l->holder);
                set_role(l, LOOM_LEASE_LEADER, mine);
            }
            if (nap(l, l->poll_ms))
                break;
            continue;
        }
        /* Leading: is the lease still ours? A connection that dropped
         * lost the lock with its session; take it again if nobody else
         * led in between (same epoch). */
        if (l->store && loom_store_pg_fenced(l->store)) {
            set_role(l, LOOM_LEASE_DEPOSED, 0);
            break;
        }
        /* Renew while loomd's event loop turns: a hung loop stops
         * renewing, and a standby takes over after the TTL. */
        char e[24];
        snprintf(e, sizeof e, "%lld", (long long)mine);
        uint64_t stalled = loom_clock_ms() - atomic_load(&l->alive_ms);
        int st;
        if (stalled < (uint64_t)l->ttl_ms / 2) {
            st = exec_row(l, RENEW_SQL, e);
            epoch = st == 1 ? mine : -1;
        } else {
            LOOM_WARN(COMP, "msg=\"event loop stalled; not renewing the lease\" stalled_ms=%llu",
                      (unsigned long long)stalled);
            st = read_row(l, &epoch, &age, &pid) < 0 ? -1 : 1;
        }
        if (st < 0) {
            LOOM_WARN(COMP, "msg=\"lease connection lost; serving on, taking the lock again once "
                            "the database answers\" epoch=%lld", (long long)mine);
            while (!l->conn) {
                if (nap(l, backoff))
                    goto out;
                backoff = backoff * 2 > 2000 ? 2000 : backoff * 2;
                if (do_connect(l) == 0 && query_bool(l, LOCK_SQL, &locked) == 0 &&
                    read_row(l, &epoch, &age, &pid) == 0)
                    break;
            }
            /* ours again only if nobody led in between: then re-point the
             * row at this session */
            if (locked && epoch == mine &&
                exec_row(l, "UPDATE loom_leader SET renewed = now(), lease_pid = pg_backend_pid() "
                            "WHERE id = 1 AND epoch = $1 RETURNING epoch", e) != 1)
                epoch = -1;
            backoff = 100;
            if (!locked || epoch != mine) {
                LOOM_ERROR(COMP, "msg=\"another loomd took the lead; stopping\" epoch=%lld now=%lld",
                           (long long)mine, (long long)epoch);
                set_role(l, LOOM_LEASE_DEPOSED, 0);
                break;
            }
            LOOM_INFO(COMP, "msg=\"lease taken again\" epoch=%lld", (long long)mine);
        } else if (epoch != mine) {
            LOOM_ERROR(COMP, "msg=\"another loomd took the lead; stopping\" epoch=%lld now=%lld",
                       (long long)mine, (long long)epoch);
            set_role(l, LOOM_LEASE_DEPOSED, 0);
            break;
        }
        if (nap(l, l->check_ms))
            break;
    }
out:
    drop_conn(l);
    return NULL;
}

int loom_lease_start(loom_lease_t *l, const char *client_ep, const char *worker_ep,
                     loom_err_t *err)
{
    snprintf(l->client_ep, sizeof l->client_ep, "%s", client_ep ? client_ep : "");
    snprintf(l->worker_ep, sizeof l->worker_ep, "%s", worker_ep ? worker_ep : "");
    if (l->efd < 0)
        return loom_err_set(err, LOOM_EIO, "eventfd: %s", strerror(errno));
    if (pthread_create(&l->thread, NULL, lease_main, l) != 0)
        return loom_err_set(err, LOOM_EIO, "cannot start the lease thread");
    l->started = 1;
    return 0;
}

void loom_lease_destroy(loom_lease_t **pl)
{
    if (!pl || !*pl)
        return;
    loom_lease_t *l = *pl;
    if (l->started) {
        pthread_mutex_lock(&l->mu);
        l->stop = 1;
        pthread_cond_broadcast(&l->cv);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->thread, NULL);
    }
    drop_conn(l);
    if (l->efd >= 0)
        close(l->efd);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    free(l->url);
    free(l->holder);
    free(l);
    *pl = NULL;
}

int loom_lease_fd(const loom_lease_t *l) { return l->efd; }

loom_lease_role_t loom_lease_role(loom_lease_t *l, int64_t *epoch)
{
    uint64_t v;
    ssize_t n = read(l->efd, &v, sizeof v);
    (void)n;
    pthread_mutex_lock(&l->mu);
    loom_lease_role_t r = l->role;
    if (epoch)
        *epoch = l->epoch;
    pthread_mutex_unlock(&l->mu);
    if (r == LOOM_LEASE_LEADER && l->store && loom_store_pg_fenced(l->store))
        r = LOOM_LEASE_DEPOSED;
    return r;
}

void loom_lease_alive(loom_lease_t *l, uint64_t now_ms) { atomic_store(&l->alive_ms, now_ms); }

void loom_lease_leader(loom_lease_t *l, char *client, size_t client_n, char *worker,
                       size_t worker_n)
{
    pthread_mutex_lock(&l->mu);
    if (client && client_n)
        snprintf(client, client_n, "%s", l->lead_client);
    if (worker && worker_n)
        snprintf(worker, worker_n, "%s", l->lead_worker);
    pthread_mutex_unlock(&l->mu);
}
