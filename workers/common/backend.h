/* backend.h — what a worker can run: the op registry and the device
 * backend vtable shared by loom-worker-{cpu,gpu,npu}.
 *
 * A backend (CPU, GPU, NPU) fills a loom_backend_t: it measures its device
 * profile at start and registers op handlers ("tool.exec", "llm.decode",
 * "compute", ...) into a loom_ops_t. The worker skeleton (worker.h) owns
 * the sockets: it advertises the profile and op names to loomd, receives
 * task assignments, and calls the handler for each task on one of its N
 * slot threads.
 *
 * A handler gets the task's input already rendered by loomd (templates
 * resolved) as a JSON value, and returns its output as a JSON value or as
 * raw bytes. While it runs it may stream progress (e.g. generated tokens)
 * and must poll loom_op_cancelled() in long loops: loomd cancels tasks
 * (run cancelled, timeout) and the worker sets the flag.
 *
 * Threading: handlers run concurrently on slot threads, so a handler and
 * its `ud` must be thread-safe, unless the op is registered with
 * LOOM_OP_SERIAL (then at most one task of that op runs at a time).
 * LOOM_OP_INLINE ops (noop, echo) are cheap and never block: the worker
 * runs them on its I/O thread without a thread hand-off. */
#ifndef LOOM_WORKERS_BACKEND_H
#define LOOM_WORKERS_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/buf.h"
#include "common/err.h"

/* The device profile a worker registers with (measured at start where it
 * can be). Strings are borrowed from the backend for the worker's life. */
typedef struct loom_device_profile {
    const char *kind;        /* "cpu", "gpu", "npu" */
    const char *model;       /* "AMD EPYC 7B13", "NVIDIA H100 80GB HBM3" */
    const char *arch;        /* generation/arch: "x86_64-avx2", "sm_90", "int8-v1" */
    int cores;               /* CPU cores, or SMs for a GPU, or NPU cores */
    uint64_t memory_bytes;   /* RAM or device memory */
    double gflops;           /* measured (or datasheet) GFLOP/s */
    double gbps;             /* measured memory bandwidth, GB/s */
    double price_per_hour;   /* USD, from flags/config; 0 = unknown */
    int slots;               /* tasks it runs at once */
} loom_device_profile_t;

typedef struct loom_op_ctx loom_op_ctx_t; /* one running task; owned by the worker */

/* A handler's result. Set exactly one of json (the worker takes
 * ownership and frees it) or bytes (handler appends; the worker frees).
 * On failure return a negative LOOM_E* and fill err: err->msg becomes the
 * task's error; LOOM_ETIMEDOUT and LOOM_ECANCELLED are reported as such. */
typedef struct loom_op_output {
    json_t *json;
    loom_buf_t bytes;
    /* Retry policy hint: 1 when retrying cannot help (bad input). */
    int permanent;
    /* LLM ops: prompt and generated tokens (reported in Timings, counted in
     * loomd's per-worker token metrics). */
    uint64_t tokens_in, tokens_out;
} loom_op_output_t;

/* input is borrowed for the call. ud is what the op was registered with. */
typedef int (*loom_op_fn)(void *ud, loom_op_ctx_t *ctx, const json_t *input,
                          loom_op_output_t *out, loom_err_t *err);

enum {
    LOOM_OP_INLINE = 1 << 0, /* cheap, non-blocking: run on the I/O thread */
    LOOM_OP_SERIAL = 1 << 1, /* at most one task of this op at a time */
};

typedef struct loom_ops loom_ops_t;

loom_ops_t *loom_ops_new(void);
void loom_ops_destroy(loom_ops_t **pops);
/* Registers (or replaces) op `name`. ud is borrowed (the backend owns it).
 * Returns 0, LOOM_EINVAL (bad name) or LOOM_ENOMEM. */
int loom_ops_add(loom_ops_t *ops, const char *name, loom_op_fn fn, void *ud, int flags);
/* Looks an op up; returns 0 and fills fn/ud/flags, or LOOM_ENOTFOUND. */
int loom_ops_find(const loom_ops_t *ops, const char *name, loom_op_fn *fn, void **ud,
                  int *flags);
size_t loom_ops_count(const loom_ops_t *ops);
/* i-th op name in registration order (borrowed), NULL past the end. */
const char *loom_ops_name(const loom_ops_t *ops, size_t i);

/* Models resident in the worker, for heartbeats: a backend that loads
 * models (the LLM ops) registers fn, which writes their names comma-separated
 * into out (at most n bytes, NUL-terminated; "" when none). fn is called from
 * the worker's I/O thread while handlers run, so it must be thread-safe. */
typedef void (*loom_ops_models_fn)(char *out, size_t n);
void loom_ops_set_models_fn(loom_ops_t *ops, loom_ops_models_fn fn);
loom_ops_models_fn loom_ops_get_models_fn(const loom_ops_t *ops);
/* Writes the resident model names into out ("" without a models fn). */
void loom_ops_models(const loom_ops_t *ops, char *out, size_t n);
/* Prompt prefixes whose KV the backend holds, for heartbeats
 * (protocol/prefix_key.h): fn writes at most max keys and their token
 * counts and returns how many. Thread-safe, like the models fn. */
typedef size_t (*loom_ops_prefixes_fn)(uint64_t *keys, uint32_t *tokens, size_t max);
void loom_ops_set_prefixes_fn(loom_ops_t *ops, loom_ops_prefixes_fn fn);
loom_ops_prefixes_fn loom_ops_get_prefixes_fn(const loom_ops_t *ops);
/* Calls it (0 without one). */
size_t loom_ops_prefixes(const loom_ops_t *ops, uint64_t *keys, uint32_t *tokens, size_t max);

/* Registers the ops every worker has: noop, echo, sleep (ops_basic.c). */
int loom_ops_add_basic(loom_ops_t *ops);

/* ---- what a handler may call on its task context (thread-safe) ---- */

/* 1 once loomd cancelled the task or its deadline passed. */
int loom_op_cancelled(const loom_op_ctx_t *ctx);
/* Milliseconds left before the task's timeout; INT64_MAX without one. */
int64_t loom_op_remaining_ms(const loom_op_ctx_t *ctx);
/* Streams a progress chunk (tokens, a log line) to loomd and clients
 * watching the run. data is copied. Returns 0 or LOOM_ENOMEM. */
int loom_op_progress(loom_op_ctx_t *ctx, const char *data, size_t n);
/* Identity of the task, for logs (borrowed). */
const char *loom_op_task_id(const loom_op_ctx_t *ctx);
/* A status note about the task (not streamed output), e.g. why a KV cache
 * was recomputed: loomd records it as a progress event with a message,
 * which is stored with the run's events. */
int loom_op_note(loom_op_ctx_t *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Announces the task's output before it finishes (early: JSON, copied):
 * a streamed KV cache's reference, so loomd can start the consumer while
 * the producer still computes (ProgressRequest.early_output). The handler
 * still returns its output; loomd may ignore the announcement. */
int loom_op_announce(loom_op_ctx_t *ctx, const json_t *early);
/* The id loomd knows this worker by (borrowed). */
const char *loom_op_worker_id(const loom_op_ctx_t *ctx);
int loom_op_attempt(const loom_op_ctx_t *ctx);
/* The task's idempotency key (AssignRequest.task_key): the same for every
 * attempt of the step instance and across loomd restarts. Tools get it as
 * LOOM_TASK_KEY / an Idempotency-Key header. Borrowed. */
const char *loom_op_task_key(const loom_op_ctx_t *ctx);
/* The run the task belongs to (its task key up to the ':'; "" when the key
 * names none): objects it stores are held for that run (objstore.h). */
void loom_op_run_id(const loom_op_ctx_t *ctx, char *out, size_t n);
/* The task's spool entry (spool.h) for a handler whose work runs outside
 * the worker process (tool.exec): begin creates it (path borrowed, owned by
 * the task: the worker removes it once loomd surely has the result, and
 * keeps it across a crash of the worker); discard removes it now (a result
 * the worker itself caused, e.g. by a kill on cancel, need not survive);
 * entry returns it (NULL when none), e.g. for a task resumed after a
 * restart. */
const char *loom_op_spool_begin(loom_op_ctx_t *ctx, loom_err_t *err);
void loom_op_spool_discard(loom_op_ctx_t *ctx);
const char *loom_op_spool_entry(const loom_op_ctx_t *ctx);

/* A device backend. The worker calls init once, then profile, then
 * add_ops; destroy at shutdown. argc/argv are the backend-specific flags
 * left after the worker's own (it may ignore them). */
typedef struct loom_backend {
    const char *name; /* "cpu", "gpu", "npu" */
    int (*init)(void **self, int argc, char **argv, loom_err_t *err);
    int (*profile)(void *self, loom_device_profile_t *p, loom_err_t *err);
    int (*add_ops)(void *self, loom_ops_t *ops, loom_err_t *err);
    void (*destroy)(void *self);
} loom_backend_t;

#endif
