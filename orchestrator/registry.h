/* registry.h — the workers loomd knows: registration with a device
 * profile, heartbeats, death after missed heartbeats, drain, and the
 * in-flight count placement uses. Single-threaded (loomd's event loop).
 *
 * Worker records are transparent so placement policies can read them;
 * only registry.c and the task code in engine.c modify them. */
#ifndef LOOM_ORCHESTRATOR_REGISTRY_H
#define LOOM_ORCHESTRATOR_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

typedef enum {
    LOOM_WORKER_READY = 1,
    LOOM_WORKER_DRAINING = 2,
    LOOM_WORKER_LOST = 3,
} loom_worker_state_t;

struct loom_task;

/* One word to a worker about a run's hold on an object in its object store
 * (worker.proto ObjectRelease), queued until its next HeartbeatReply. */
typedef struct loom_obj_release {
    char run[32];
    char id[65];   /* "" = every object of the run */
    int forget;    /* 0: the run's consumers are done; 1: the run's data is gone */
} loom_obj_release_t;

#define LOOM_OBJ_RELEASE_MAX 65536 /* queued per worker; beyond, its pins lapse on their own */

typedef struct loom_worker_rec {
    char id[128];
    uint8_t peer[256];          /* ZeroMQ routing id of its DEALER */
    size_t peer_len;
    uint8_t prev_peer[256];     /* its connection before it re-registered: results
                                 * still queued there are its own */
    size_t prev_peer_len;
    loom_worker_state_t state;
    /* profile (copied at registration) */
    char kind[16];              /* "cpu", "gpu", "npu" */
    char model[128];
    char arch[64];
    int cores;
    uint64_t memory_bytes;
    double gflops, gbps, price_per_hour;
    int slots;
    char **ops;                 /* supported op names (owned) */
    size_t n_ops;
    char *profile_json;         /* the whole profile as JSON, for the store/CLI */
    /* live state */
    int inflight;               /* tasks assigned and not finished */
    int max_inflight;           /* slots * depth: what loomd keeps queued on it */
    int64_t registered_ms, last_seen_ms; /* wall clock */
    uint64_t last_seen_mono;    /* loom_clock_ms() of the last message */
    uint64_t tasks_done, tasks_failed;
    double load;
    uint64_t beats;             /* heartbeats received */
    uint64_t free_memory_bytes; /* from the last heartbeat */
    char **models;              /* models resident, from the last heartbeat (owned) */
    size_t n_models;
    /* Back-pressure: its socket did not take a message to it (send queue
     * full, or its connection gone while it reconnects). Those tasks went
     * back to loomd's queue; it gets no new task until a message from it
     * arrives (loom_registry_touch). Not a loss: only the heartbeat
     * timeout loses a worker. */
    int send_paused;
    uint64_t send_paused_logged; /* loom_clock_ms() of the last warning about it */
    char key[41];               /* CURVE public key it registered with ("" in plain mode) */
    int revoked;                /* its key left the allow-list: nothing it sends counts */
    int keeps_tools;            /* its tools outlive its process (RegisterRequest.keeps_tools) */
    struct loom_task *tasks;    /* assigned tasks (intrusive list via task->wnext) */
    loom_obj_release_t *releases; /* object releases for its next HeartbeatReply (FIFO) */
    size_t n_releases, cap_releases;
    uint64_t releases_dropped;  /* not queued: the queue was full */
    /* Prompt prefixes whose KV its engine holds (protocol/prefix_key.h):
     * from its last heartbeat, plus what loomd learnt from its results since */
    uint64_t *prefix_keys;
    uint32_t *prefix_tokens;
    size_t n_prefixes;
} loom_worker_rec_t;

#define LOOM_WORKER_MAX_PREFIXES 1024

typedef struct loom_registry loom_registry_t;

/* depth: tasks kept in flight per slot (>= 1). */
loom_registry_t *loom_registry_new(int depth);
void loom_registry_destroy(loom_registry_t **pr);

/* Adds or refreshes a worker by id (a re-registering worker replaces its
 * old record's peer and profile; *was_known says whether it existed and was
 * not lost). ops are copied. Returns the record (borrowed) or NULL on OOM. */
loom_worker_rec_t *loom_registry_register(loom_registry_t *r, const char *id, const uint8_t *peer,
                                          size_t peer_len, const char *kind, const char *model,
                                          const char *arch, int cores, uint64_t memory,
                                          double gflops, double gbps, double price, int slots,
                                          const char *const *ops, size_t n_ops,
                                          const char *profile_json, int *was_known);
/* Lookups (borrowed; NULL when unknown). */
loom_worker_rec_t *loom_registry_by_peer(loom_registry_t *r, const uint8_t *peer, size_t len);
loom_worker_rec_t *loom_registry_by_id(loom_registry_t *r, const char *id);
/* Like by_peer but also finds a worker already declared lost, or by the
 * connection it had before re-registering (its late results may still be
 * the first word on a task). */
loom_worker_rec_t *loom_registry_by_peer_any(loom_registry_t *r, const uint8_t *peer, size_t len);
/* Replaces w's resident model names (copied; heartbeats carry them).
 * Returns 0 or LOOM_ENOMEM (then w keeps no names). */
int loom_registry_set_models(loom_worker_rec_t *w, char *const *names, size_t n);
/* Marks a message seen from w now. */
void loom_registry_touch(loom_registry_t *r, loom_worker_rec_t *w);
/* Workers whose last message is older than timeout_ms become LOST; each is
 * passed to fn (to re-queue its tasks). Returns how many were lost. */
int loom_registry_reap(loom_registry_t *r, uint64_t timeout_ms,
                       void (*fn)(void *ud, loom_worker_rec_t *w), void *ud);
/* Lost workers are dropped from the registry after this long. */
void loom_registry_forget_lost(loom_registry_t *r, uint64_t after_ms);

/* 1 when w is ready and lists op. */
int loom_worker_runs(const loom_worker_rec_t *w, const char *op);
/* 1 when some non-lost worker lists op. */
int loom_registry_any_runs(loom_registry_t *r, const char *op);

size_t loom_registry_count(const loom_registry_t *r);
/* i-th record (registration order), NULL past the end. */
loom_worker_rec_t *loom_registry_at(loom_registry_t *r, size_t i);
/* Tasks w may take now: its free in-flight room while it is ready and
 * not paused by back-pressure (send_paused), else 0. */
int loom_worker_room(const loom_worker_rec_t *w);
/* Total free in-flight capacity over ready workers (loom_worker_room). */
int loom_registry_free_capacity(const loom_registry_t *r);

const char *loom_worker_state_name(loom_worker_state_t s);

/* Queues an object release for w (id NULL or "": all of run's objects).
 * 0, or LOOM_ENOMEM / LOOM_ETOOBIG (queue full: counted in
 * releases_dropped; the worker's pin then lapses on its own). */
int loom_worker_queue_release(loom_worker_rec_t *w, const char *run, const char *id, int forget);
/* Removes the first n queued releases (sent). */
void loom_worker_releases_sent(loom_worker_rec_t *w, size_t n);

/* Replaces (replace = 1: a heartbeat's full list) or extends (0: what a
 * result showed; newest first, the oldest fall off past
 * LOOM_WORKER_MAX_PREFIXES) w's prompt prefixes. 0 or LOOM_ENOMEM. */
int loom_worker_set_prefixes(loom_worker_rec_t *w, const uint64_t *keys, const uint32_t *tokens, size_t n,
                             int replace);
/* Tokens of KV w holds for the longest of keys[0..n) (a task's prefix
 * keys, shortest first) it has, and in *blocks (may be NULL) how many keys
 * deep that is; 0 when none. */
uint32_t loom_worker_prefix_tokens(const loom_worker_rec_t *w, const uint64_t *keys, size_t n, size_t *blocks);

#endif
