/* lease_pg.h — loomd's leadership lease in PostgreSQL (failover).
 *
 * Several loomd share one database; the one holding a session advisory
 * lock on its own connection is the leader and serves, the others stand by
 * (answering every request UNAVAILABLE with the leader's endpoint). The
 * lock goes with the leader's database session: when the leader dies, its
 * connection closes and PostgreSQL releases the lock at once (a vanished
 * host: after the session's TCP keepalives, about 5 s); the next standby to
 * try (every poll_ms) takes it.
 *
 * Fencing: on taking the lock the new leader increments the epoch in
 * loom_leader (deploy/sql/006_leader.sql) and records its endpoints there,
 * then sets that epoch as the fence of its store (store_pg.h): every write
 * transaction checks it first, so a deposed leader that is still running
 * (a partition, a stall) can commit nothing once the epoch moved on.
 *
 * A stalled leader (its event loop hung, the process stopped, or cut off
 * from the others but not from the database) keeps its session, so the
 * lock alone would not move: the leader renews loom_leader.renewed every
 * check_ms while its event loop turns (loom_lease_alive), and a standby
 * that finds the renewal older than ttl_ms ends the leader's lease session
 * (pg_terminate_backend: all loomd use one database role), which frees the
 * lock.
 *
 * The leader checks its lease at each renewal. When its connection drops
 * (a database restart, a partition) it keeps serving (writes are buffered
 * like in any database outage) and, once it reconnects, takes the lock
 * again if the epoch is still its own; otherwise it is DEPOSED and must
 * stop (loomd exits with status 75; its supervisor restarts it as a
 * standby). A fenced write also means DEPOSED.
 *
 * A thread of its own does the database round trips; the accessors below
 * are cheap and safe from loomd's event loop. */
#ifndef LOOM_ORCHESTRATOR_LEASE_PG_H
#define LOOM_ORCHESTRATOR_LEASE_PG_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "orchestrator/store_pg.h"

typedef struct loom_lease loom_lease_t;

typedef enum {
    LOOM_LEASE_STANDBY = 0, /* another loomd leads (or none yet): do not serve */
    LOOM_LEASE_LEADER = 1,  /* serve; writes carry this epoch */
    LOOM_LEASE_DEPOSED = 2, /* was the leader, another took over: stop */
} loom_lease_role_t;

typedef struct loom_lease_opts {
    const char *url;         /* postgresql://... (required) */
    const char *holder;      /* this loomd's name in loom_leader (default host/pid) */
    loom_store_pg_t *store;  /* fenced with the epoch on taking the lead (may be NULL) */
    int poll_ms;             /* standby: tries the lock this often (default 200) */
    int check_ms;            /* leader: renews its lease this often (default 1000) */
    int ttl_ms;              /* a lease not renewed for this long is taken over (default 10000) */
} loom_lease_opts_t;

/* Copies opts; connects nothing yet. NULL with err set on bad options. */
loom_lease_t *loom_lease_new(const loom_lease_opts_t *opts, loom_err_t *err);
/* Starts the thread; client_ep / worker_ep are what this loomd advertises
 * (recorded in loom_leader once it leads). */
int loom_lease_start(loom_lease_t *l, const char *client_ep, const char *worker_ep,
                     loom_err_t *err);
/* Stops the thread and closes the connection, which releases the lock.
 * Safe on NULL / twice. */
void loom_lease_destroy(loom_lease_t **pl);

/* An eventfd, readable after a role change (loom_lease_role reads it). */
int loom_lease_fd(const loom_lease_t *l);
/* The role now; *epoch (may be NULL) receives this loomd's epoch while
 * it leads. */
loom_lease_role_t loom_lease_role(loom_lease_t *l, int64_t *epoch);
/* loomd's event loop turned at now_ms (loom_clock_ms): the leader renews
 * its lease only while this is recent. Cheap (an atomic store). */
void loom_lease_alive(loom_lease_t *l, uint64_t now_ms);
/* The endpoints of the leader as last read from the database ("" when
 * unknown, e.g. before the first leader, or not yet read). */
void loom_lease_leader(loom_lease_t *l, char *client, size_t client_n, char *worker,
                       size_t worker_n);

#endif
