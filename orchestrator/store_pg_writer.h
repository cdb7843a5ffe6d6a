/* store_pg_writer.h — the PostgreSQL store's write queue and writer thread
 * (internal to store_pg.c; see store_pg.h for the contract it serves).
 *
 * A write is one prepared statement plus its text parameters. The writer
 * takes up to batch_max writes from the head of a FIFO queue and sends them
 * as BEGIN; stmt...; COMMIT in one libpq pipeline (one round trip). Writes
 * leave the queue only once committed, so a lost connection loses nothing:
 * the writer reconnects with exponential backoff (100 ms .. 5 s) and sends
 * the same batch again. Statements are idempotent upserts, so a batch whose
 * COMMIT result was lost in flight can be replayed safely. A batch the
 * server rejects (a constraint violation) is replayed one write per
 * transaction to isolate and report the bad write. Within a batch, writes of
 * a statement with merge_keys (below) that target the same row are
 * coalesced into one statement, and the writes of an append statement
 * (array_sql) are sent as one multi-row INSERT. */
#ifndef LOOM_ORCHESTRATOR_STORE_PG_WRITER_H
#define LOOM_ORCHESTRATOR_STORE_PG_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

typedef struct loom_pgw loom_pgw_t;
typedef void (*loom_pgw_done_fn)(void *arg, int status);

typedef struct loom_pgw_stmt {
    const char *name; /* prepared statement name */
    const char *sql;  /* parameterised ($1..$n) */
    int nparams;
    /* > 0: the statement is an upsert keyed by its first merge_keys params
     * in which a NULL param keeps the stored value. Several writes of one
     * key in the same batch are then coalesced into one statement (at the
     * position of the last one) whose params are, per param, the latest
     * non-NULL value: the row ends up exactly as if each had been applied
     * in order, in one write. Every coalesced write still gets its verdict
     * (callback) when the batch commits. 0: every write is sent. */
    int merge_keys;
    /* Non-NULL: the statement is a pure append (an INSERT of new rows that
     * nothing else in the batch depends on). All its writes in a batch are
     * then sent as this one statement, at the position of the last of
     * them, whose $k is a text[] of the k-th params of those writes in
     * queue order (NULL elements for NULL params). */
    const char *array_sql;
    /* 1: a write of this statement the server rejects for good fails the
     * keyed barriers (below) whose key is its first param. */
    int keyed;
} loom_pgw_stmt_t;

#define LOOM_PGW_MAX_PARAMS 20
/* A write with no SQL: its callback runs once every write queued before it
 * has its verdict (a durability barrier), with status 0 -- or, for a keyed
 * barrier (params[0] = a key, e.g. a run id), LOOM_EDB when a keyed
 * statement's write with that first param was rejected for good (among the
 * last 64 such rejections). */
#define LOOM_PGW_BARRIER (-1)

/* stmts must stay valid for the writer's lifetime. Starts the thread; the
 * first connection is made by the thread. */
loom_pgw_t *loom_pgw_new(const char *url, const loom_pgw_stmt_t *stmts, int nstmts,
                         size_t queue_max, size_t batch_max, loom_err_t *err);
void loom_pgw_destroy(loom_pgw_t **pw, int flush_ms);

/* Queues stmts[stmt] (or LOOM_PGW_BARRIER, params NULL or {key}) with params (copied; NULL = SQL NULL). admit: refuse
 * with LOOM_ETOOBIG when the queue holds queue_max writes or more. */
int loom_pgw_enqueue(loom_pgw_t *w, int stmt, const char *const *params, int admit,
                     loom_pgw_done_fn done, void *arg, loom_err_t *err);

/* Fencing (loomd failover, deploy/sql/006_leader.sql): epoch > 0 makes
 * every later transaction begin with loom_fence(epoch), so it commits only
 * while epoch is still the leader's; 0 turns the check off. Once a
 * transaction is refused for that reason the writer sends nothing more
 * (loom_pgw_fenced() turns 1, the fd is signalled) and the queued writes
 * are never acknowledged. */
void loom_pgw_set_fence(loom_pgw_t *w, int64_t epoch);
int loom_pgw_fenced(loom_pgw_t *w);

int loom_pgw_fd(const loom_pgw_t *w);
int loom_pgw_dispatch(loom_pgw_t *w);
int loom_pgw_flush(loom_pgw_t *w, int timeout_ms);

typedef struct loom_pgw_stats {
    int connected;
    size_t queued, queue_max;
    double lag_ms;
    uint64_t committed, failed, batches, reconnects;
    uint64_t coalesced; /* writes folded into a later write of the same row */
} loom_pgw_stats_t;
void loom_pgw_get_stats(loom_pgw_t *w, loom_pgw_stats_t *out);

#endif
