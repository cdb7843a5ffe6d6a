/* server.h — loomd's event loop: the client ROUTER (rpc.proto), the worker
 * ROUTER (worker.proto), the engine, the registry and the store, driven by
 * one zmq_poll loop on one thread (no locks on the hot path). */
#ifndef LOOM_ORCHESTRATOR_SERVER_H
#define LOOM_ORCHESTRATOR_SERVER_H

#include <stdint.h>

#include "common/err.h"
#include "orchestrator/store.h"
#include "protocol/auth.h"

typedef struct loom_server_opts {
    const char *client_endpoint;  /* default tcp://127.0.0.1:7400 */
    const char *worker_endpoint;  /* default tcp://127.0.0.1:7401 */
    int heartbeat_ms;             /* interval asked of workers (default 1000) */
    int heartbeat_timeout_ms;     /* silence after which a worker is lost (default 3000) */
    int depth;                    /* tasks in flight per worker slot (default 16) */
    int64_t placement_timeout_ms; /* fail tasks no worker can run after this (default 30000) */
    int64_t output_ref_bytes;     /* step outputs over this go by reference (0 = 65536, < 0 = never) */
    int chain_depth;              /* worker-side chaining: successors sent ahead per task
                                   * (0 = 32, < 0 = none; orchestrator/README.md, Chains) */
    int prefix_placement_off;     /* placement ignores the prompt prefixes workers hold */
    int64_t object_retention_ms;  /* a finished run's objects stay on workers this long (0 = 1 h, < 0 = until evicted) */
    const char *placement;        /* "least-loaded" (default) or "planner" */
    unsigned inline_ops;          /* LOOM_INLINE_* (engine.h): ops loomd runs itself (default none) */
    const char *auth_token;       /* accepted from clients (as an admin) when set */
    /* HMAC tokens (protocol/auth.h, `loom keygen --token`): clients must
     * present one signed by a secret of the ring; its tenant owns the runs
     * it submits. NULL (and no auth_token) = no client authentication. */
    const loom_auth_keyring_t *auth_keyring;
    /* CURVE (orchestrator/zap.h): loomd's secret key (Z85) encrypts both
     * ports; workers must present a key from workers_keys_dir, clients one
     * from clients_keys_dir (NULL = any key). NULL key = plain mode. */
    const char *curve_secret_key;
    const char *workers_keys_dir;
    const char *clients_keys_dir;
    const char *tenant_ops;       /* file "tenant: op, op" limiting the ops a tenant may submit */
    volatile int *reload;         /* set (e.g. on SIGHUP) to re-read the allow-lists */
    int max_finished_runs;        /* in-memory store bound (default 1000) */
    size_t max_finished_bytes;    /* ... in bytes (0 = LOOM_STORE_MEM_DEFAULT_BYTES) */
    int max_active_runs;          /* Submit answers RESOURCE_EXHAUSTED past this (default 10000) */
    /* Messages queued for one worker connection beyond what the network
     * holds (ZMQ_SNDHWM); past it loomd holds that worker's new tasks back
     * until it is heard from again (back-pressure, not a loss; default
     * 1000000). */
    int worker_send_queue;
    int max_watchers;             /* open Watch streams of active runs, all clients together;
                                   * Watch answers RESOURCE_EXHAUSTED past this (default 10000) */
    loom_store_t *store;          /* borrowed; NULL = an in-memory store owned by the server */
    struct loom_metrics *metrics; /* borrowed; NULL = none (see metrics.h, loomd --http) */
    /* Failover (lease_pg.h; NULL = this loomd always leads): started once
     * the sockets are bound; until it leads, loomd stands by and answers
     * every request UNAVAILABLE naming the leader; once deposed the loop
     * returns LOOM_EUNAVAIL (loomd exits 75). */
    struct loom_lease *lease;
    /* Host name or address advertised for this loomd (to standbys, who pass
     * it on) in place of a wildcard bind address; NULL = the host name. */
    const char *advertise;
    /* Written once bound and leading (may be NULL): the endpoints actually bound, so
     * callers can pass port 0 / "*" and learn the port. */
    void (*on_ready)(void *ud, const char *client_ep, const char *worker_ep);
    void *ud;
} loom_server_opts_t;

/* Runs until *stop becomes non-zero (set from a signal handler). Returns 0,
 * or a negative LOOM_E* when the sockets cannot be bound. */
int loom_server_run(const loom_server_opts_t *opts, volatile int *stop, loom_err_t *err);

#endif
