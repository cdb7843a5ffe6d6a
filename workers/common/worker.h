/* worker.h — the worker skeleton every loom-worker-* binary runs.
 *
 * It connects a ZeroMQ DEALER to loomd's worker endpoint, registers the
 * backend's measured device profile and op names, heartbeats (also while
 * every slot is busy: the I/O thread never runs blocking ops), receives
 * task assignments (singly or batched), runs each on one of N slot threads
 * (LOOM_OP_INLINE ops on the I/O thread), sends results back in batches,
 * forwards progress, and sets the cancel flag of tasks loomd cancels. An
 * unknown op or a failing handler fails that task only; the worker stays up.
 *
 * A device worker's main() is one line:
 *     int main(int argc, char **argv) { return loom_worker_main(&my_backend, argc, argv); }
 */
#ifndef LOOM_WORKERS_WORKER_H
#define LOOM_WORKERS_WORKER_H

#include "workers/common/backend.h"

typedef struct loom_worker_opts {
    const char *endpoint;   /* loomd's worker endpoint; default tcp://127.0.0.1:7401 */
    const char *worker_id;  /* proposed id; NULL = <host>/<kind>/<pid> */
    int slots;              /* concurrent tasks; 0 = the profile's (or cores) */
    int heartbeat_ms;       /* 0 = what loomd asks for (default 1000) */
    double price_per_hour;  /* overrides the profile's when > 0 */
    const char *only_ops;   /* comma-separated allow-list of ops to offer; NULL = all */
    /* CURVE (docs/SECURITY.md): loomd's public key (Z85 or a .pub file) and
     * this worker's key pair file (NAME.key, protocol/keys.h). Both or none. */
    const char *server_key;
    const char *key_file;
    long long outbox_bytes; /* finished results kept for loomd to ask again (default 32 MiB) */
    const char *spool_dir;  /* tool.exec spool (spool.h); NULL = per id and endpoint under
                             * $LOOM_SPOOL_DIR or $TMPDIR/loom-spool-<uid> */
} loom_worker_opts_t;

/* Parses the common flags (--endpoint, --id, --slots, --heartbeat-ms,
 * --price, --log-level, --help), passes the rest to backend->init, and runs
 * until SIGINT/SIGTERM. Returns the process exit code (0, 2 bad usage,
 * 3 system error). */
int loom_worker_main(const loom_backend_t *backend, int argc, char **argv);

/* Runs a worker with explicit options until *stop becomes non-zero (or a
 * signal arrives). backend_self comes from backend->init. Returns 0 or a
 * negative LOOM_E* with err filled. */
int loom_worker_run(const loom_backend_t *backend, void *backend_self,
                    const loom_worker_opts_t *opts, volatile int *stop, loom_err_t *err);

#endif
