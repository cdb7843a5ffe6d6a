/* worker.c — see worker.h.
 *
 * Threads: one I/O thread owns the DEALER socket and all protocol work;
 * N slot threads take tasks from a queue and run handlers. Finished tasks
 * and progress chunks go back through a mutex-protected outbox plus an
 * eventfd that the I/O thread polls next to the socket, so nothing but
 * the I/O thread ever touches ZeroMQ. Results are sent in batches: after
 * draining everything readable, the I/O thread sends one ResultBatch. */
#include "workers/common/worker.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <zmq.h>

#include "common/arena.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/log.h"
#include "common/notify.h"
#include "common/version.h"
#include "loom/v1/envelope.pb-c.h"
#include "loom/v1/worker.pb-c.h"
#include "common/map.h"
#include "protocol/envelope.h"
#include "protocol/zpoll.h"
#include "protocol/failover.h"
#include "protocol/keys.h"
#include "workers/common/objstore.h"
#include "workers/common/ops.h"
#include "workers/common/policy.h"
#include "workers/common/outref.h"
#include "workers/common/secrets.h"
#include "workers/common/spool.h"

#define COMP "worker"

struct loom_op_ctx {
    struct loom_op_ctx *next; /* queue / outbox / running list link */
    struct loom_op_ctx *rnext, *rprev;
    char *task_id, *op, *input_json, *task_key;
    size_t input_len;
    uint32_t attempt;
    atomic_int running;  /* a slot began executing it (0 = still queued) */
    int resumed;         /* a tool of an earlier worker process, found in the spool */
    char *spool_entry;   /* its spool entry (spool.h), removed once loomd has the result */
    int dropped;         /* loomd gave it to another worker: no result is sent */
    int64_t deadline_ms; /* wall clock; 0 = none */
    uint32_t timeout_ms; /* execution budget from the start (AssignRequest.timeout_ms); 0 = none */
    loom_op_fn fn;
    void *ud;
    int flags;
    atomic_int cancelled;
    int64_t received_ms, started_ms, finished_ms;
    /* result */
    int ok, code, permanent;
    char lost_input[65]; /* an input by reference that could not be fetched ("" = none) */
    int refused; /* not run at all (draining): loomd re-queues it elsewhere */
    char *error;
    char *output; /* JSON text or bytes */
    size_t output_len;
    int output_is_json;
    uint64_t tokens_in, tokens_out; /* LLM ops */
    /* progress chunk (is_progress 1: streamed text, 2: a note, 3: an
     * early output, loom_op_announce); Started
     * notice (is_started) */
    int is_progress, is_started;
    /* worker-side chaining (AssignRequest.after_task_id): a task waiting
     * behind its predecessor; succ: the tasks waiting behind this one
     * (linked by succ_next); after_at: JSON Pointers of its input that get
     * the predecessor's output (pred_out, set when the predecessor
     * succeeded); chained: its Started notice follows that result */
    int waiting, chained;
    struct loom_op_ctx *succ, *succ_next;
    char **after_at;
    size_t n_after_at;
    json_t *pred_out;
    uint64_t seq;
    atomic_uint_fast64_t progress_seq;
    struct worker *w;
};

typedef struct worker {
    const loom_backend_t *backend;
    void *bself;
    loom_ops_t *ops;
    loom_device_profile_t profile;
    char id[256];
    void *zctx, *sock;
    void *mon;                  /* CURVE: the socket's handshake-failure events (PAIR) */
    int handshake_failed;       /* loomd refused our CURVE handshake since the last connect */
    int efd;
    int slots;
    int hb_ms, hb_timeout_ms;
    volatile int *stop;
    int registered, draining;
    int keeps_tools;        /* tools outlive this process and a restart finds them (stable id) */
    int exiting;            /* stopping: spool entries stay for the next process */
    char epoch[16];         /* loomd's epoch at registration ("" before) */
    uint32_t lease_ms;      /* fence after this long without a message from loomd */
    atomic_int fenced;      /* slots start no queued task (loomd silent beyond the lease) */
    uint64_t next_req;
    uint64_t register_req;
    uint64_t next_hb;       /* loom_clock_ms() of the next heartbeat */
    uint64_t last_rx;       /* loom_clock_ms() of the last message from loomd */
    int hb_unanswered;      /* heartbeats sent since that message */
    /* failover (protocol/failover.h): loomd's endpoints, the one in use,
     * its connection monitor (several endpoints), the next Register */
    loom_endpoints_t eps;
    loom_conn_watch_t *watch;
    uint64_t next_reg;
    int hop_ms;             /* pause before registering after a move, doubling */
    /* slot pool */
    pthread_t *threads;
    pthread_mutex_t qmu;
    pthread_cond_t qcv;
    loom_op_ctx_t *qhead, *qtail;
    int quit;
    pthread_mutex_t serial_mu;
    /* outbox (slot threads -> I/O thread) */
    pthread_mutex_t omu;
    loom_op_ctx_t *ohead, *otail;
    /* owned by the I/O thread */
    loom_op_ctx_t *running; /* assigned and not yet reported */
    int nrunning;
    /* finished tasks whose results loomd may not have (sent while it was
     * away, or not yet durable when it died): oldest first, bounded by
     * bytes; offered again at each Register (worker.proto) */
    loom_op_ctx_t *hhead, *htail;
    size_t hbytes, hcount, hmax_bytes;
    Loom__V1__TaskRef *started;   /* Started notices of this turn */
    Loom__V1__TaskRef **started_ptrs;
    loom_op_ctx_t **started_ctx;
    size_t nstarted, capstarted;
    Loom__V1__ResultRequest **batch;
    loom_op_ctx_t **batch_tasks;
    size_t nbatch, capbatch;
    uint64_t done, failed;
} worker_t;

static volatile sig_atomic_t got_signal;

/* ---- handler-facing context API --------------------------------------- */

int loom_op_cancelled(const loom_op_ctx_t *ctx)
{
    if (atomic_load(&((loom_op_ctx_t *)ctx)->cancelled))
        return 1;
    return ctx->deadline_ms && loom_wall_ms() >= ctx->deadline_ms;
}

int64_t loom_op_remaining_ms(const loom_op_ctx_t *ctx)
{
    if (!ctx->deadline_ms)
        return INT64_MAX;
    int64_t left = ctx->deadline_ms - loom_wall_ms();
    return left > 0 ? left : 0;
}

const char *loom_op_task_id(const loom_op_ctx_t *ctx)
{
    return ctx->task_id;
}

int loom_op_attempt(const loom_op_ctx_t *ctx)
{
    return (int)ctx->attempt;
}

const char *loom_op_task_key(const loom_op_ctx_t *ctx)
{
    return ctx->task_key && ctx->task_key[0] ? ctx->task_key : ctx->task_id;
}

void loom_op_run_id(const loom_op_ctx_t *ctx, char *out, size_t n)
{
    const char *k = ctx->task_key ? ctx->task_key : "", *c = strchr(k, ':');
    snprintf(out, n, "%.*s", c ? (int)(c - k) : 0, k);
}

static void outbox_push(worker_t *w, loom_op_ctx_t *t)
{
    t->next = NULL;
    pthread_mutex_lock(&w->omu);
    if (w->otail)
        w->otail->next = t;
    else
        w->ohead = t;
    w->otail = t;
    pthread_mutex_unlock(&w->omu);
    uint64_t one = 1;
    ssize_t n = write(w->efd, &one, sizeof one);
    (void)n;
}

/* Worker-side secrets (secrets.h) never leave the worker: *text (len
 * bytes, NUL-terminated) gets "***" in their place. */
static void redact(char **text, size_t *len)
{
    char *r = *text && loom_secrets_count() ? loom_secrets_redact(*text, *len, len) : NULL;
    if (r) {
        free(*text);
        *text = r;
    }
}

static int progress(loom_op_ctx_t *ctx, const char *data, size_t n, int kind)
{
    loom_op_ctx_t *p = calloc(1, sizeof *p);
    if (!p || !(p->task_id = strdup(ctx->task_id)) || !(p->output = malloc(n + 1))) {
        if (p)
            free(p->task_id);
        free(p);
        return LOOM_ENOMEM;
    }
    memcpy(p->output, data, n);
    p->output[n] = 0;
    p->output_len = n;
    redact(&p->output, &p->output_len);
    p->attempt = ctx->attempt;
    p->is_progress = kind;
    p->seq = atomic_fetch_add(&ctx->progress_seq, 1) + 1;
    outbox_push(ctx->w, p);
    return 0;
}

int loom_op_progress(loom_op_ctx_t *ctx, const char *data, size_t n)
{
    return progress(ctx, data, n, 1);
}

int loom_op_announce(loom_op_ctx_t *ctx, const json_t *early)
{
    char *s = json_dumps(early, JSON_COMPACT);
    if (!s)
        return LOOM_ENOMEM;
    int rc = progress(ctx, s, strlen(s), 3);
    free(s);
    return rc;
}

int loom_op_note(loom_op_ctx_t *ctx, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return progress(ctx, msg, n < 0 ? 0 : (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1, 2);
}

const char *loom_op_worker_id(const loom_op_ctx_t *ctx)
{
    return ctx->w->id;
}

/* Marks t running and queues a Started notice for loomd (a task that
 * started counts as an attempt if this worker is lost). */
static void announce_start(worker_t *w, loom_op_ctx_t *t)
{
    atomic_store(&t->running, 1);
    loom_op_ctx_t *n = calloc(1, sizeof *n);
    if (!n || !(n->task_id = strdup(t->task_id))) {
        free(n);
        return;
    }
    n->attempt = t->attempt;
    n->is_started = 1;
    n->chained = t->chained;
    outbox_push(w, n);
}

static void task_free(loom_op_ctx_t *t)
{
    if (!t)
        return;
    free(t->spool_entry);
    free(t->task_id);
    free(t->task_key);
    free(t->op);
    free(t->input_json);
    free(t->error);
    free(t->output);
    for (size_t i = 0; i < t->n_after_at; i++)
        free(t->after_at[i]);
    free(t->after_at);
    json_decref(t->pred_out);
    free(t);
}

/* Frees t once loomd surely has its result (or wants none): its spool
 * entry goes too, except while the worker stops (the next process with
 * this id offers those results to loomd). */
static void task_release(worker_t *w, loom_op_ctx_t *t)
{
    if (t && t->spool_entry && !w->exiting)
        loom_spool_entry_remove(t->spool_entry);
    task_free(t);
}

const char *loom_op_spool_begin(loom_op_ctx_t *ctx, loom_err_t *err)
{
    char path[4096];
    if (ctx->spool_entry) {
        loom_spool_entry_remove(ctx->spool_entry);
        free(ctx->spool_entry);
        ctx->spool_entry = NULL;
    }
    if (loom_spool_entry_new(ctx->task_id, ctx->attempt, path, sizeof path, err) != 0)
        return NULL;
    if (!(ctx->spool_entry = strdup(path))) {
        loom_spool_entry_remove(path);
        loom_err_set(err, LOOM_ENOMEM, "out of memory");
    }
    return ctx->spool_entry;
}

void loom_op_spool_discard(loom_op_ctx_t *ctx)
{
    if (!ctx->spool_entry)
        return;
    loom_spool_entry_remove(ctx->spool_entry);
    free(ctx->spool_entry);
    ctx->spool_entry = NULL;
}

const char *loom_op_spool_entry(const loom_op_ctx_t *ctx)
{
    return ctx->spool_entry;
}

/* ---- running a task ------------------------------------------------------ */

/* Step outputs by reference (outref.h): takes loomd's threshold out of the
 * input (*over, 0 = keep the output inline) and replaces the upstream
 * outputs it references by their bytes. */
static int by_reference_in(loom_op_ctx_t *t, json_t **input, json_int_t *over, loom_err_t *err)
{
    json_t *k = json_object_get(*input, LOOM_OUTREF_KEY);
    if (k) {
        *over = json_is_integer(k) ? json_integer_value(k) : 0;
        json_object_del(*input, LOOM_OUTREF_KEY);
    }
    if (!t->input_len || !memmem(t->input_json, t->input_len, "\"$object\"", 9))
        return 0;
    size_t got = 0;
    uint64_t t0 = loom_clock_ms();
    int rc = loom_outref_resolve(input, NULL, &got, t->lost_input, err);
    if (!rc && got)
        LOOM_INFO(COMP, "msg=\"inputs fetched by reference\" task=%s bytes=%zu ms=%llu", t->task_id,
                  got, (unsigned long long)(loom_clock_ms() - t0));
    return rc;
}

/* Moves the large parts of a finished task's output to the object store,
 * held for the task's run. When the store cannot start, the output stays
 * inline (with a warning); when both of its tiers are full of objects runs
 * still need, the task fails with the store's error (naming the object and
 * the run; retryable: room comes back as consumers finish). */
static int by_reference_out(loom_op_ctx_t *t, json_t **out, size_t over, loom_err_t *err)
{
    size_t moved = 0;
    char run[40];
    loom_op_run_id(t, run, sizeof run);
    int rc = loom_outref_offload(out, over, t->w->id, run, &moved, err);
    if (rc == LOOM_ETOOBIG) {
        LOOM_ERROR(COMP, "msg=\"output cannot be kept\" task=%s error=\"%s\"", t->task_id, err->msg);
        return rc;
    }
    if (rc != 0)
        LOOM_WARN(COMP, "msg=\"output kept inline\" task=%s error=\"%s\"", t->task_id, err->msg);
    else if (moved)
        LOOM_INFO(COMP, "msg=\"output by reference\" task=%s bytes=%zu", t->task_id, moved);
    loom_err_clear(err);
    return 0;
}

/* Sets the value at JSON Pointer ptr (RFC 6901) in root to v (stolen).
 * The place must exist (loomd put null there). 0, or -1. */
static int pointer_set(json_t *root, const char *ptr, json_t *v)
{
    json_t *cur = root;
    char key[512];
    while (*ptr == '/') {
        const char *end = strchr(ptr + 1, '/');
        size_t n = 0;
        for (const char *p = ptr + 1; p < (end ? end : ptr + strlen(ptr)) && n < sizeof key - 1; p++)
            key[n++] = *p == '~' && p[1] == '1' ? (p++, '/') : *p == '~' && p[1] == '0' ? (p++, '~') : *p;
        key[n] = 0;
        char *stop = NULL;
        size_t idx = json_is_array(cur) ? strtoul(key, &stop, 10) : 0;
        if (json_is_array(cur) && (!*key || *stop || idx >= json_array_size(cur)))
            break;
        if (!end) {
            if (json_is_object(cur) && json_object_get(cur, key))
                return json_object_set_new(cur, key, v);
            if (json_is_array(cur))
                return json_array_set_new(cur, idx, v);
            break;
        }
        cur = json_is_array(cur) ? json_array_get(cur, idx) : json_object_get(cur, key);
        if (!cur)
            break;
        ptr = end;
    }
    json_decref(v);
    return -1;
}

/* A chained task: its predecessor's output into its input where loomd
 * left null for it (the JSON Pointers of AssignRequest.after_output_at). */
static int substitute(loom_op_ctx_t *t, json_t *input, loom_err_t *err)
{
    for (size_t i = 0; i < t->n_after_at; i++)
        if (pointer_set(input, t->after_at[i], json_incref(t->pred_out)) != 0)
            return loom_err_set(err, LOOM_EINVAL, "after_output_at '%s' names no place in the task's input",
                                t->after_at[i]);
    return 0;
}

/* Runs the handler and records ok/output or the error in t. */
static void execute(worker_t *w, loom_op_ctx_t *t)
{
    t->started_ms = loom_wall_ms();
    if (t->timeout_ms) { /* the step's timeout counts from here, not from its arrival */
        int64_t end = t->started_ms + (int64_t)t->timeout_ms;
        if (!t->deadline_ms || end < t->deadline_ms)
            t->deadline_ms = end;
    }
    loom_err_t err;
    loom_err_clear(&err);
    loom_op_output_t out = {0};
    json_t *input = NULL;
    json_int_t by_ref_over = 0;
    int rc;
    if (loom_op_cancelled(t) && !t->resumed) { /* a resumed tool runs already: it is killed */
        rc = loom_err_set(&err, atomic_load(&t->cancelled) ? LOOM_ECANCELLED : LOOM_ETIMEDOUT,
                          "task %s before it started",
                          atomic_load(&t->cancelled) ? "cancelled" : "timed out");
    } else {
        json_error_t jerr;
        input = t->input_len ? json_loadb(t->input_json, t->input_len,
                                          JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr)
                             : json_object();
        if (!input) {
            rc = loom_err_set(&err, LOOM_EPARSE, "task input is not JSON: %s (line %d)",
                              jerr.text, jerr.line);
            out.permanent = 1;
        } else if (t->input_len && memmem(t->input_json, t->input_len, "\"$secret_tag\"", 13) &&
                   (rc = loom_secrets_substitute(&input, &err)) != 0) {
            out.permanent = 1; /* a secret this worker does not have */
        } else if (t->pred_out && t->n_after_at && (rc = substitute(t, input, &err)) != 0) {
            out.permanent = 1; /* after the secrets: a predecessor's output is data */
        } else if ((rc = by_reference_in(t, &input, &by_ref_over, &err)) != 0) {
            /* an upstream output the producer no longer serves */
        } else {
            if (t->flags & LOOM_OP_SERIAL)
                pthread_mutex_lock(&w->serial_mu);
            rc = t->fn(t->ud, t, input, &out, &err);
            if (t->flags & LOOM_OP_SERIAL)
                pthread_mutex_unlock(&w->serial_mu);
        }
    }
    if (rc == 0 && loom_op_cancelled(t) && atomic_load(&t->cancelled))
        rc = loom_err_set(&err, LOOM_ECANCELLED, "task cancelled");
    /* a handler that saw loom_op_cancelled() because its time was up (not
     * loomd's cancel) timed out: DEADLINE_EXCEEDED, not CANCELLED */
    if (rc == LOOM_ECANCELLED && !atomic_load(&t->cancelled) && t->deadline_ms &&
        loom_wall_ms() >= t->deadline_ms) {
        char was[300];
        snprintf(was, sizeof was, "%s", err.msg);
        if (t->timeout_ms)
            rc = loom_err_set(&err, LOOM_ETIMEDOUT, "timed out after %u ms of execution (timeout_ms): %s",
                              t->timeout_ms, was);
        else
            rc = loom_err_set(&err, LOOM_ETIMEDOUT, "passed the task deadline: %s", was);
    }
    if (rc == 0 && out.json && by_ref_over > 0 && (rc = by_reference_out(t, &out.json, (size_t)by_ref_over, &err))) {
        json_decref(out.json);
        out.json = NULL;
    }
    t->finished_ms = loom_wall_ms();
    if (rc == 0) {
        t->ok = 1;
        t->tokens_in = out.tokens_in;
        t->tokens_out = out.tokens_out;
        if (out.json) {
            t->output = json_dumps(out.json, JSON_COMPACT | JSON_ENCODE_ANY);
            t->output_len = t->output ? strlen(t->output) : 0;
            t->output_is_json = 1;
            if (!t->output) {
                t->ok = 0;
                t->code = LOOM_ENOMEM;
                t->error = strdup("output could not be serialised");
            }
        } else {
            t->output = loom_buf_detach(&out.bytes, &t->output_len);
        }
    } else {
        t->ok = 0;
        t->code = rc;
        t->permanent = out.permanent;
        char msg[1100];
        loom_err_format(&err, msg, sizeof msg);
        if (!msg[0])
            snprintf(msg, sizeof msg, "op %s failed: %s", t->op, loom_err_name(rc));
        t->error = strdup(msg);
    }
    redact(&t->output, &t->output_len);
    if (t->error) {
        size_t elen = strlen(t->error);
        redact(&t->error, &elen);
    }
    json_decref(out.json);
    loom_buf_free(&out.bytes);
    json_decref(input);
}

static void enqueue(worker_t *w, loom_op_ctx_t *t)
{
    pthread_mutex_lock(&w->qmu);
    t->next = NULL;
    if (w->qtail)
        w->qtail->next = t;
    else
        w->qhead = t;
    w->qtail = t;
    pthread_cond_signal(&w->qcv);
    pthread_mutex_unlock(&w->qmu);
}

/* Drops t and every task chained behind it: not run, no result (loomd
 * forgets them when their predecessor's failure reaches it). On the I/O
 * thread they go at once, from a slot through the outbox. */
static void drop_chain(worker_t *w, loom_op_ctx_t *t, int on_io);
static void running_remove(worker_t *w, loom_op_ctx_t *t);

/* t finished (its result not yet handed on): the tasks chained behind it
 * run now when it succeeded (each gets its output where its input asks),
 * else they are dropped, as are cancelled ones. Returns those to run,
 * linked by next. */
static loom_op_ctx_t *chain_release(worker_t *w, loom_op_ctx_t *t, int on_io)
{
    loom_op_ctx_t *run = NULL, **tail = &run, *s = t->succ, *n;
    t->succ = NULL;
    json_t *out = NULL;
    for (; s; s = n) {
        n = s->succ_next;
        s->succ_next = NULL;
        if (!t->ok || atomic_load(&s->cancelled)) {
            drop_chain(w, s, on_io);
            continue;
        }
        if (s->n_after_at && !out) {
            out = t->output_is_json && t->output ? json_loadb(t->output, t->output_len, JSON_DECODE_ANY, NULL)
                                                 : NULL;
            if (!out) /* not JSON: a string, as loomd reads it */
                out = json_stringn(t->output ? t->output : "", t->output ? t->output_len : 0);
        }
        if (s->n_after_at)
            s->pred_out = json_incref(out);
        s->waiting = 0;
        s->next = NULL;
        *tail = s;
        tail = &s->next;
    }
    json_decref(out);
    return run;
}

static void drop_chain(worker_t *w, loom_op_ctx_t *t, int on_io)
{
    while (t) {
        loom_op_ctx_t *s = t->succ, *sib = t->succ_next;
        t->succ = t->succ_next = NULL;
        t->dropped = 1;
        atomic_store(&t->cancelled, 1);
        if (on_io) {
            running_remove(w, t);
            task_release(w, t);
        } else {
            outbox_push(w, t);
        }
        drop_chain(w, sib, on_io); /* siblings: rare, shallow */
        t = s;
    }
}

static void *slot_main(void *arg)
{
    worker_t *w = arg;
    loom_op_ctx_t *t = NULL; /* a chained task to run next, here */
    for (;;) {
        if (!t) {
            pthread_mutex_lock(&w->qmu);
            /* fenced: loomd has been silent beyond the lease and may have given
             * these tasks to another worker; start none until registered again */
            while ((!w->qhead || atomic_load(&w->fenced)) && !w->quit)
                pthread_cond_wait(&w->qcv, &w->qmu);
            if (w->quit && !w->qhead) {
                pthread_mutex_unlock(&w->qmu);
                return NULL;
            }
            t = w->qhead;
            w->qhead = t->next;
            if (!w->qhead)
                w->qtail = NULL;
            pthread_mutex_unlock(&w->qmu);
        }
        if (!atomic_load(&t->cancelled))
            announce_start(w, t);
        execute(w, t);
        loom_op_ctx_t *next = chain_release(w, t, 0);
        outbox_push(w, t); /* its result before its successors' Started */
        t = NULL;
        while (next) { /* the first runs here at once, unless fenced; the others queue */
            loom_op_ctx_t *n = next->next;
            if (!t && !atomic_load(&w->fenced))
                t = next;
            else
                enqueue(w, next);
            next = n;
        }
    }
}

/* ---- wire helpers ---------------------------------------------------------- */

static int send_msg(worker_t *w, const char *method, uint64_t req_id, uint32_t flags,
                    const ProtobufCMessage *payload)
{
    Loom__V1__Envelope env = LOOM__V1__ENVELOPE__INIT;
    env.version = 1;
    env.request_id = req_id;
    env.method = (char *)method;
    env.flags = flags;
    uint8_t hdr[512];
    size_t hlen = loom__v1__envelope__get_packed_size(&env);
    if (hlen > sizeof hdr)
        return LOOM_ETOOBIG;
    loom__v1__envelope__pack(&env, hdr);
    /* never block: a DEALER with no connection left (libzmq dropped loomd
     * and does not reconnect, see the silence check in the I/O loop)
     * would block the I/O thread forever */
    if (zmq_send(w->sock, hdr, hlen, ZMQ_DONTWAIT | (payload ? ZMQ_SNDMORE : 0)) < 0) {
        LOOM_DEBUG(COMP, "msg=\"message to loomd dropped\" method=%s error=\"%s\"", method,
                   zmq_strerror(zmq_errno()));
        return zmq_errno() == EAGAIN ? LOOM_EUNAVAIL : LOOM_EIO;
    }
    if (!payload)
        return 0;
    size_t plen = protobuf_c_message_get_packed_size(payload);
    zmq_msg_t m;
    if (zmq_msg_init_size(&m, plen) != 0)
        return LOOM_ENOMEM;
    protobuf_c_message_pack(payload, zmq_msg_data(&m));
    if (zmq_msg_send(&m, w->sock, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&m);
        return LOOM_EIO;
    }
    return 0;
}

static void build_profile(worker_t *w, Loom__V1__DeviceProfile *p, char ***names)
{
    const loom_device_profile_t *d = &w->profile;
    p->kind = strcmp(d->kind, "gpu") == 0   ? LOOM__V1__DEVICE_KIND__DEVICE_KIND_GPU
              : strcmp(d->kind, "npu") == 0 ? LOOM__V1__DEVICE_KIND__DEVICE_KIND_NPU
                                            : LOOM__V1__DEVICE_KIND__DEVICE_KIND_CPU;
    p->model_name = (char *)(d->model ? d->model : "");
    p->arch = (char *)(d->arch ? d->arch : "");
    p->compute_units = (uint32_t)d->cores;
    p->memory_bytes = d->memory_bytes;
    p->measured_gflops = d->gflops;
    p->measured_gbps = d->gbps;
    p->price_per_hour_usd = d->price_per_hour;
    p->task_slots = (uint32_t)w->slots;
    size_t n = loom_ops_count(w->ops);
    *names = calloc(n ? n : 1, sizeof **names);
    for (size_t i = 0; *names && i < n; i++)
        (*names)[i] = (char *)loom_ops_name(w->ops, i);
    p->n_supported_ops = *names ? n : 0;
    p->supported_ops = *names;
    static char host[256];
    if (!host[0])
        gethostname(host, sizeof host - 1);
    p->hostname = host;
}

/* Held tasks reported at Register: all queued/running ones, and the most
 * recent finished ones up to this many (the message stays well inside the
 * protocol's payload limit). */
#define MAX_HELD_FINISHED 50000

static int send_register(worker_t *w)
{
    Loom__V1__RegisterRequest r = LOOM__V1__REGISTER_REQUEST__INIT;
    Loom__V1__DeviceProfile p = LOOM__V1__DEVICE_PROFILE__INIT;
    char **names = NULL;
    build_profile(w, &p, &names);
    r.worker_id = w->id;
    r.profile = &p;
    r.version = LOOM_VERSION;
    r.pid = (uint32_t)getpid();
    r.keeps_tools = w->keeps_tools;
    /* what this process still holds, so loomd keeps it instead of running
     * it again (worker.proto, Reconciliation) */
    size_t skip = w->hcount > MAX_HELD_FINISHED ? w->hcount - MAX_HELD_FINISHED : 0;
    size_t cap = (size_t)w->nrunning + w->hcount - skip;
    Loom__V1__HeldTask *held = calloc(cap ? cap : 1, sizeof *held);
    Loom__V1__HeldTask **ptrs = calloc(cap ? cap : 1, sizeof *ptrs);
    size_t n = 0;
    for (loom_op_ctx_t *t = w->running; held && ptrs && t && n < cap; t = t->rnext) {
        if (t->dropped)
            continue;
        loom__v1__held_task__init(&held[n]);
        held[n].task_id = t->task_id;
        held[n].attempt = t->attempt;
        held[n].task_key = t->task_key ? t->task_key : "";
        held[n].state = atomic_load(&t->running) ? LOOM__V1__HELD_STATE__HELD_RUNNING
                                                 : LOOM__V1__HELD_STATE__HELD_QUEUED;
        ptrs[n] = &held[n];
        n++;
    }
    size_t k = 0;
    for (loom_op_ctx_t *t = w->hhead; held && ptrs && t && n < cap; t = t->next, k++) {
        if (k < skip)
            continue;
        loom__v1__held_task__init(&held[n]);
        held[n].task_id = t->task_id;
        held[n].attempt = t->attempt;
        held[n].task_key = t->task_key ? t->task_key : "";
        held[n].state = LOOM__V1__HELD_STATE__HELD_FINISHED;
        ptrs[n] = &held[n];
        n++;
    }
    r.n_held_tasks = n;
    r.held_tasks = ptrs;
    w->register_req = ++w->next_req;
    int rc = send_msg(w, "loom.v1.WorkerHub/Register", w->register_req, 0,
                      (const ProtobufCMessage *)&r);
    free(held);
    free(ptrs);
    free(names);
    return rc;
}

static void set_fence(worker_t *w, int on)
{
    if (atomic_load(&w->fenced) == on)
        return;
    pthread_mutex_lock(&w->qmu);
    atomic_store(&w->fenced, on);
    if (!on)
        pthread_cond_broadcast(&w->qcv);
    pthread_mutex_unlock(&w->qmu);
    if (on)
        LOOM_WARN(COMP, "msg=\"loomd silent beyond the lease; starting no queued task until registered\" lease_ms=%u", w->lease_ms);
    else
        LOOM_INFO(COMP, "msg=\"fence lifted\"");
}

/* Failover: leaves the loomd in use for the leader a standby named
 * (detail) or the next endpoint, and registers there after a pause that
 * doubles (100 ms .. 2 s) until a registration succeeds. */
static void move_on(worker_t *w, const char *detail, const char *why)
{
    char was[256];
    snprintf(was, sizeof was, "%s", loom_endpoints_current(&w->eps));
    const char *now = loom_endpoints_advance(&w->eps, detail);
    if (strcmp(was, now) != 0) {
        zmq_disconnect(w->sock, was);
        if (zmq_connect(w->sock, now) != 0)
            LOOM_ERROR(COMP, "msg=\"cannot connect\" endpoint=%s error=\"%s\"", now,
                       zmq_strerror(zmq_errno()));
        if (!w->watch && w->eps.cur != 0) /* one endpoint, and a standby pointed elsewhere */
            w->watch = loom_conn_watch_new(w->zctx, w->sock);
    }
    LOOM_INFO(COMP, "msg=\"moving to another loomd\" why=\"%s\" from=%s to=%s", why, was, now);
    if (w->registered)
        set_fence(w, 1);
    w->registered = 0;
    w->hb_unanswered = 0;
    w->last_rx = loom_clock_ms();
    w->hop_ms = w->hop_ms ? (w->hop_ms * 2 > 2000 ? 2000 : w->hop_ms * 2) : 100;
    w->next_reg = loom_clock_ms() + (uint64_t)w->hop_ms;
}

static void send_heartbeat(worker_t *w)
{
    Loom__V1__HeartbeatRequest h = LOOM__V1__HEARTBEAT_REQUEST__INIT;
    h.worker_id = w->id;
    h.running_tasks = (uint32_t)w->nrunning;
    h.free_slots = w->nrunning < w->slots ? (uint32_t)(w->slots - w->nrunning) : 0;
    h.load = w->slots ? (double)w->nrunning / w->slots : 0;
    h.draining = w->draining;
    h.time_unix_ms = loom_wall_ms();
    /* free host memory, and the models the backend holds (comma-separated
     * names split in place into the repeated field) */
    long pages = sysconf(_SC_AVPHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    h.free_memory_bytes = pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz : 0;
    char models[2048], *mv[32];
    size_t nm = 0;
    loom_ops_models(w->ops, models, sizeof models);
    for (char *save = NULL, *p = strtok_r(models, ",", &save); p && nm < 32; p = strtok_r(NULL, ",", &save))
        mv[nm++] = p;
    h.n_loaded_models = nm;
    h.loaded_models = mv;
    /* the prompt prefixes its engine holds (prefix-aware placement) */
    uint64_t pkeys[512];
    uint32_t ptoks[512];
    Loom__V1__PrefixHeld ph[512], *php[512];
    size_t np = loom_ops_prefixes(w->ops, pkeys, ptoks, 512);
    for (size_t i = 0; i < np; i++) {
        loom__v1__prefix_held__init(&ph[i]);
        ph[i].key = pkeys[i];
        ph[i].tokens = ptoks[i];
        php[i] = &ph[i];
    }
    h.n_prefixes = np;
    h.prefixes = php;
    char *ids[64];
    size_t n = 0;
    for (loom_op_ctx_t *t = w->running; t && n < 64; t = t->rnext)
        ids[n++] = t->task_id;
    h.n_running_task_ids = n;
    h.running_task_ids = ids;
    send_msg(w, "loom.v1.WorkerHub/Heartbeat", ++w->next_req, 0, (const ProtobufCMessage *)&h);
}

/* ---- results --------------------------------------------------------------- */

static void running_remove(worker_t *w, loom_op_ctx_t *t)
{
    if (t->rprev)
        t->rprev->rnext = t->rnext;
    else if (w->running == t)
        w->running = t->rnext;
    if (t->rnext)
        t->rnext->rprev = t->rprev;
    t->rnext = t->rprev = NULL;
    w->nrunning--;
}

static Loom__V1__StatusCode status_of(int code)
{
    switch (code) {
    case LOOM_ECANCELLED: return LOOM__V1__STATUS_CODE__CANCELLED;
    case LOOM_ETIMEDOUT: return LOOM__V1__STATUS_CODE__DEADLINE_EXCEEDED;
    case LOOM_EINVAL:
    case LOOM_EPARSE: return LOOM__V1__STATUS_CODE__INVALID_ARGUMENT;
    case LOOM_ENOTFOUND: return LOOM__V1__STATUS_CODE__NOT_FOUND;
    case LOOM_ETOOBIG: return LOOM__V1__STATUS_CODE__RESOURCE_EXHAUSTED;
    case LOOM_EUNAVAIL: return LOOM__V1__STATUS_CODE__UNAVAILABLE;
    case LOOM_EINTERNAL: return LOOM__V1__STATUS_CODE__INTERNAL;
    default: return LOOM__V1__STATUS_CODE__UNKNOWN;
    }
}

/* ---- finished-result history (the bounded outbox) ------------------------- */

#define HISTORY_KEEP_MS 30000 /* while loomd answers, results older than this are let go */

static size_t history_cost(const loom_op_ctx_t *t)
{
    return sizeof *t + t->output_len + (t->error ? strlen(t->error) : 0) + strlen(t->task_id) +
           (t->task_key ? strlen(t->task_key) : 0) + 64;
}

static void history_pop(worker_t *w)
{
    loom_op_ctx_t *t = w->hhead;
    w->hhead = t->next;
    if (!w->hhead)
        w->htail = NULL;
    w->hbytes -= history_cost(t);
    w->hcount--;
    task_release(w, t);
}

/* Keeps sent result t (its input is no longer needed); the oldest go when
 * the byte budget is exceeded. */
static void history_add(worker_t *w, loom_op_ctx_t *t)
{
    free(t->input_json);
    t->input_json = NULL;
    free(t->op);
    t->op = NULL;
    t->next = NULL;
    if (w->htail)
        w->htail->next = t;
    else
        w->hhead = t;
    w->htail = t;
    w->hbytes += history_cost(t);
    w->hcount++;
    int dropped = 0;
    while (w->hhead && w->hbytes > w->hmax_bytes && w->hhead != t) {
        history_pop(w);
        dropped++;
    }
    if (dropped && !w->registered)
        LOOM_WARN(COMP, "msg=\"result outbox full while loomd is away; oldest results dropped\" dropped=%d bytes=%zu", dropped, w->hbytes);
}

/* While loomd answers, results it had long ago need not be kept. */
static void history_trim(worker_t *w)
{
    if (!w->registered || atomic_load(&w->fenced))
        return;
    int64_t old = loom_wall_ms() - HISTORY_KEEP_MS;
    while (w->hhead && w->hhead->finished_ms < old)
        history_pop(w);
}

/* Queues the finished task t into the outgoing batch (t is freed after
 * the batch is sent). */
static void batch_add(worker_t *w, loom_op_ctx_t *t)
{
    if (w->nbatch == w->capbatch) {
        size_t ncap = w->capbatch ? w->capbatch * 2 : 64;
        void *a = realloc(w->batch, ncap * sizeof *w->batch);
        void *b = a ? realloc(w->batch_tasks, ncap * sizeof *w->batch_tasks) : NULL;
        if (a)
            w->batch = a;
        if (!a || !b) {
            LOOM_ERROR(COMP, "msg=\"out of memory, result dropped\" task=%s", t->task_id);
            task_free(t);
            return;
        }
        w->batch_tasks = b;
        w->capbatch = ncap;
    }
    Loom__V1__ResultRequest *r = calloc(1, sizeof *r + sizeof(Loom__V1__Timings) +
                                                sizeof(Loom__V1__Error));
    if (!r) {
        task_free(t);
        return;
    }
    loom__v1__result_request__init(r);
    Loom__V1__Timings *tm = (Loom__V1__Timings *)(r + 1);
    loom__v1__timings__init(tm);
    r->task_id = t->task_id;
    r->attempt = t->attempt;
    r->worker_id = w->id;
    r->ok = t->ok;
    tm->received_unix_ms = t->received_ms;
    tm->started_unix_ms = t->started_ms;
    tm->finished_unix_ms = t->finished_ms;
    tm->queue_ms = (double)(t->started_ms - t->received_ms);
    tm->compute_ms = (double)(t->finished_ms - t->started_ms);
    tm->bytes_in = (double)t->input_len;
    tm->bytes_out = (double)t->output_len;
    tm->tokens_in = t->tokens_in;
    tm->tokens_out = t->tokens_out;
    r->timings = tm;
    if (t->ok) {
        if (t->output_is_json) {
            r->output_json = t->output ? t->output : "null";
        } else {
            r->output_json = "";
            r->output.data = (uint8_t *)t->output;
            r->output.len = t->output_len;
        }
    } else {
        Loom__V1__Error *e = (Loom__V1__Error *)(tm + 1);
        loom__v1__error__init(e);
        e->code = t->refused ? LOOM__V1__STATUS_CODE__FAILED_PRECONDITION : status_of(t->code);
        e->message = t->error ? t->error : "failed";
        e->retryable = !t->permanent && t->code != LOOM_ECANCELLED;
        if (t->lost_input[0]) { /* loomd re-runs its producer rather than this step in place */
            e->code = LOOM__V1__STATUS_CODE__DATA_LOSS;
            e->retryable = 0;
            r->lost_input = t->lost_input;
        }
        r->error = e;
        w->failed++;
    }
    w->done++;
    w->batch[w->nbatch] = r;
    w->batch_tasks[w->nbatch] = t;
    w->nbatch++;
}

static void batch_flush(worker_t *w)
{
    if (!w->nbatch)
        return;
    Loom__V1__ResultBatchRequest b = LOOM__V1__RESULT_BATCH_REQUEST__INIT;
    b.n_results = w->nbatch;
    b.results = w->batch;
    if (send_msg(w, "loom.v1.WorkerHub/ResultBatch", 0, LOOM__V1__FLAG__FLAG_ONEWAY,
                 (const ProtobufCMessage *)&b) != 0)
        LOOM_WARN(COMP, "msg=\"sending results failed\" n=%zu err=\"%s\"", w->nbatch,
                  zmq_strerror(zmq_errno()));
    for (size_t i = 0; i < w->nbatch; i++) {
        free(w->batch[i]);
        history_add(w, w->batch_tasks[i]);
    }
    w->nbatch = 0;
}

/* Sends this turn's Started notices in one message. */
static void started_flush(worker_t *w)
{
    if (!w->nstarted)
        return;
    Loom__V1__StartedRequest r = LOOM__V1__STARTED_REQUEST__INIT;
    r.worker_id = w->id;
    r.n_tasks = w->nstarted;
    r.tasks = w->started_ptrs;
    send_msg(w, "loom.v1.WorkerHub/Started", 0, LOOM__V1__FLAG__FLAG_ONEWAY,
             (const ProtobufCMessage *)&r);
    for (size_t i = 0; i < w->nstarted; i++)
        task_free(w->started_ctx[i]);
    w->nstarted = 0;
}

static void started_add(worker_t *w, loom_op_ctx_t *n)
{
    if (w->nstarted == w->capstarted) {
        size_t ncap = w->capstarted ? w->capstarted * 2 : 32;
        Loom__V1__TaskRef *a = realloc(w->started, ncap * sizeof *a);
        if (a)
            w->started = a;
        Loom__V1__TaskRef **b = a ? realloc(w->started_ptrs, ncap * sizeof *b) : NULL;
        if (b)
            w->started_ptrs = b;
        loom_op_ctx_t **c = b ? realloc(w->started_ctx, ncap * sizeof *c) : NULL;
        if (!c) { /* loomd then counts no attempt if this worker is lost */
            task_free(n);
            return;
        }
        w->started_ctx = c;
        w->capstarted = ncap;
        for (size_t i = 0; i < w->nstarted; i++) /* the array moved */
            w->started_ptrs[i] = &w->started[i];
    }
    Loom__V1__TaskRef *r = &w->started[w->nstarted];
    loom__v1__task_ref__init(r);
    r->task_id = n->task_id;
    r->attempt = n->attempt;
    w->started_ptrs[w->nstarted] = r;
    w->started_ctx[w->nstarted++] = n;
}

static void drain_outbox(worker_t *w)
{
    uint64_t v;
    ssize_t n = read(w->efd, &v, sizeof v);
    (void)n;
    pthread_mutex_lock(&w->omu);
    loom_op_ctx_t *t = w->ohead;
    w->ohead = w->otail = NULL;
    pthread_mutex_unlock(&w->omu);
    while (t) {
        loom_op_ctx_t *next = t->next;
        if (t->is_started) {
            if (t->chained) /* loomd takes a chained task once its predecessor's result is in */
                batch_flush(w);
            started_add(w, t);
        } else if (t->is_progress) {
            Loom__V1__ProgressRequest p = LOOM__V1__PROGRESS_REQUEST__INIT;
            p.task_id = t->task_id;
            p.attempt = t->attempt;
            p.worker_id = w->id;
            p.seq = t->seq;
            if (t->is_progress == 2)
                p.message = t->output; /* a note: stored as an event */
            else if (t->is_progress == 3)
                p.early_output = t->output; /* an output announced early */
            else
                p.text = t->output;
            send_msg(w, "loom.v1.WorkerHub/Progress", 0, LOOM__V1__FLAG__FLAG_ONEWAY,
                     (const ProtobufCMessage *)&p);
            task_free(t);
        } else {
            running_remove(w, t);
            if (t->dropped)
                task_release(w, t);
            else
                batch_add(w, t);
        }
        t = next;
    }
    started_flush(w);
}

/* ---- reconciliation (RegisterReply) ------------------------------------------- */

/* loomd's answer to the held tasks: drop what it gave elsewhere (never
 * started or reported), send again the results it wants. */
static void apply_reconcile(worker_t *w, const Loom__V1__RegisterReply *r)
{
    if (r->n_drop_task_ids) {
        loom_map_t *drop = loom_map_new(NULL);
        for (size_t i = 0; drop && i < r->n_drop_task_ids; i++)
            loom_map_put(drop, r->drop_task_ids[i], drop);
        for (loom_op_ctx_t *t = w->running; drop && t; t = t->rnext)
            if (loom_map_get(drop, t->task_id)) {
                t->dropped = 1;
                atomic_store(&t->cancelled, 1);
            }
        loom_map_destroy(&drop);
        LOOM_INFO(COMP, "msg=\"tasks dropped at loomd's request\" n=%zu", r->n_drop_task_ids);
    }
    if (r->n_resend_task_ids) {
        loom_map_t *want = loom_map_new(NULL);
        for (size_t i = 0; want && i < r->n_resend_task_ids; i++)
            loom_map_put(want, r->resend_task_ids[i], want);
        loom_op_ctx_t *keep = NULL, *keep_tail = NULL, *t = w->hhead;
        w->hhead = w->htail = NULL;
        size_t resent = 0;
        while (t) {
            loom_op_ctx_t *next = t->next;
            t->next = NULL;
            if (want && loom_map_get(want, t->task_id)) {
                loom_map_del(want, t->task_id);
                w->hbytes -= history_cost(t);
                w->hcount--;
                w->done--; /* counted once */
                if (!t->ok)
                    w->failed--;
                batch_add(w, t);
                resent++;
            } else {
                if (keep_tail)
                    keep_tail->next = t;
                else
                    keep = t;
                keep_tail = t;
            }
            t = next;
        }
        w->hhead = keep;
        w->htail = keep_tail;
        loom_map_destroy(&want);
        LOOM_INFO(COMP, "msg=\"results sent again at loomd's request\" n=%zu", resent);
    }
}

/* ---- assignments ------------------------------------------------------------- */

static void fail_now(worker_t *w, loom_op_ctx_t *t, int code, int permanent, const char *fmt,
                     ...) __attribute__((format(printf, 5, 6)));
static void fail_now(worker_t *w, loom_op_ctx_t *t, int code, int permanent, const char *fmt,
                     ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    t->ok = 0;
    t->code = code;
    t->permanent = permanent;
    t->error = strdup(msg);
    t->started_ms = t->finished_ms = loom_wall_ms();
    batch_add(w, t);
}

/* A context for assignment a, in w->running; NULL when it failed at once
 * (refused, unknown op: its result is batched) or memory ran out. */
static loom_op_ctx_t *assign_make(worker_t *w, const Loom__V1__AssignRequest *a)
{
    loom_op_ctx_t *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->w = w;
    t->task_id = strdup(a->task_id ? a->task_id : "");
    t->op = strdup(a->op ? a->op : "");
    t->input_len = a->input_json ? strlen(a->input_json) : 0;
    t->input_json = t->input_len ? strdup(a->input_json) : NULL;
    t->attempt = a->attempt;
    t->task_key = strdup(a->task_key ? a->task_key : "");
    t->deadline_ms = a->deadline_unix_ms;
    t->timeout_ms = a->timeout_ms;
    t->received_ms = loom_wall_ms();
    if (!t->task_id || !t->op || !t->task_key || (t->input_len && !t->input_json)) {
        task_free(t);
        return NULL;
    }
    if (w->draining) {
        t->refused = 1;
        fail_now(w, t, LOOM_EUNAVAIL, 0, "worker %s is draining", w->id);
        return NULL;
    }
    if (loom_ops_find(w->ops, t->op, &t->fn, &t->ud, &t->flags) != 0) {
        char list[512] = "";
        size_t len = 0;
        for (size_t i = 0; i < loom_ops_count(w->ops) && len < sizeof list - 70; i++)
            len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "",
                                    loom_ops_name(w->ops, i));
        fail_now(w, t, LOOM_ENOTFOUND, 0, "unknown op '%s' on worker %s (it runs: %s)", t->op,
                 w->id, list);
        return NULL;
    }
    t->rnext = w->running;
    if (w->running)
        w->running->rprev = t;
    w->running = t;
    w->nrunning++;
    return t;
}

/* Starts t (not waiting for a predecessor): inline ops run here on the
 * I/O thread (not when their input must be fetched or their output may be
 * large: a slot does that), then the tasks chained behind them; others
 * queue for a slot. */
static void assign_start(worker_t *w, loom_op_ctx_t *t)
{
    while (t) {
        if (!(t->flags & LOOM_OP_INLINE) || t->input_len > 65536 ||
            (t->input_len && memmem(t->input_json, t->input_len, "\"$object\"", 9))) {
            enqueue(w, t);
            return;
        }
        execute(w, t);
        loom_op_ctx_t *next = chain_release(w, t, 1);
        running_remove(w, t);
        batch_add(w, t);
        t = next;
        if (t) /* siblings behind the same predecessor: rare */
            for (loom_op_ctx_t *o = t->next, *n; o; o = n) {
                n = o->next;
                assign_start(w, o);
            }
    }
}

/* Assignments of one message: a task chained behind another
 * (after_task_id) waits for it; the predecessor must come earlier in the
 * same message (so it has not started yet), else the task is refused. */
static void assign_batch(worker_t *w, Loom__V1__AssignRequest **a, size_t n)
{
    loom_op_ctx_t **made = calloc(n ? n : 1, sizeof *made);
    if (!made)
        return;
    for (size_t i = 0; i < n; i++) {
        const char *after = a[i]->after_task_id;
        if (after && *after) {
            size_t j = i;
            while (j-- > 0 && !(made[j] && strcmp(made[j]->task_id, after) == 0))
                ;
            if (j == SIZE_MAX) { /* SIZE_MAX: not found */
                loom_op_ctx_t *t = calloc(1, sizeof *t);
                if (t && (t->task_id = strdup(a[i]->task_id ? a[i]->task_id : "")) &&
                    (t->op = strdup(a[i]->op ? a[i]->op : ""))) {
                    t->attempt = a[i]->attempt;
                    t->refused = 1;
                    t->received_ms = loom_wall_ms();
                    fail_now(w, t, LOOM_EUNAVAIL, 0, "task %s is chained behind task %s, which is not "
                             "earlier in the same message", t->task_id, after);
                } else {
                    task_free(t);
                }
                continue;
            }
            if (!(made[i] = assign_make(w, a[i])))
                continue;
            loom_op_ctx_t *t = made[i];
            t->after_at = a[i]->n_after_output_at ? calloc(a[i]->n_after_output_at, sizeof *t->after_at) : NULL;
            for (size_t k = 0; t->after_at && k < a[i]->n_after_output_at; k++)
                if ((t->after_at[k] = strdup(a[i]->after_output_at[k])))
                    t->n_after_at++;
            t->waiting = t->chained = 1;
            loom_op_ctx_t **p = &made[j]->succ;
            while (*p)
                p = &(*p)->succ_next;
            *p = t;
            continue;
        }
        made[i] = assign_make(w, a[i]);
    }
    /* the tasks that wait for no other, picked before any starts: a started
     * one releases (or drops and frees) those chained behind it */
    size_t roots = 0;
    for (size_t i = 0; i < n; i++)
        if (made[i] && !made[i]->waiting)
            made[roots++] = made[i];
    for (size_t i = 0; i < roots; i++)
        assign_start(w, made[i]);
    free(made);
}

static void cancel_task(worker_t *w, const char *task_id, uint32_t attempt, int *found)
{
    *found = 0;
    for (loom_op_ctx_t *t = w->running; t; t = t->rnext)
        if (strcmp(t->task_id, task_id) == 0 && (!attempt || attempt == t->attempt)) {
            atomic_store(&t->cancelled, 1);
            *found = 1;
        }
}

/* Decodes msg's payload as desc through the protocol library's bounded
 * allocator (so a hostile frame cannot make the worker allocate without
 * bound); NULL, logged, when it does not decode. Free with loom_pb_free(). */
static void *unpack(const loom_msg_t *msg, const ProtobufCMessageDescriptor *desc)
{
    ProtobufCMessage *out = NULL;
    loom_err_t err = {0};
    if (loom_msg_unpack(msg, desc, NULL, &out, &err) != LOOM_STATUS_OK) {
        LOOM_WARN(COMP, "msg=\"undecodable payload from loomd ignored\" method=%s type=%s error=\"%s\"",
                  loom_msg_method(msg), desc->name, err.msg);
        return NULL;
    }
    return out;
}

/* Handles one well-formed inbound message (loom_msg_recv checked frame
 * counts, sizes and the protocol version). */
static void handle(worker_t *w, const loom_msg_t *msg)
{
    const char *m = loom_msg_method(msg);
    int is_reply = loom_msg_is_reply(msg);
    uint64_t req = loom_msg_request_id(msg);
    uint32_t flags = loom_msg_flags(msg);
    if (is_reply && req == w->register_req) {
        int st = loom_msg_reply_status(msg);
        Loom__V1__RegisterReply *r = st == 0 ? unpack(msg, &loom__v1__register_reply__descriptor) : NULL;
        if (r) {
            if (r->worker_id && r->worker_id[0])
                snprintf(w->id, sizeof w->id, "%s", r->worker_id);
            if (r->heartbeat_interval_ms && !w->hb_ms)
                w->hb_ms = (int)r->heartbeat_interval_ms;
            snprintf(w->epoch, sizeof w->epoch, "%s", r->epoch ? r->epoch : "");
            w->lease_ms = r->lease_ms;
            /* an unclaimed tool dies before loomd runs its step elsewhere
             * (twice the heartbeat timeout after the worker's last message) */
            loom_spool_set_orphan_ms((int)(r->heartbeat_timeout_ms * 3 / 2));
            apply_reconcile(w, r);
            w->registered = 1;
            w->hop_ms = 0;
            set_fence(w, 0);
            w->next_hb = 0; /* heartbeat at once, then every hb_ms */
            LOOM_INFO(COMP, "msg=\"registered\" id=%s slots=%d ops=%zu", w->id, w->slots,
                      loom_ops_count(w->ops));
            loom_notify("READY=1\nSTATUS=registered as %s, %d slots", w->id, w->slots);
            loom_pb_free(r);
        } else if (st == LOOM_STATUS_UNAVAILABLE && loom_msg_envelope(msg) &&
                   loom_msg_envelope(msg)->error && loom_msg_envelope(msg)->error->detail &&
                   strncmp(loom_msg_envelope(msg)->error->detail, "standby;", 8) == 0) {
            move_on(w, loom_msg_envelope(msg)->error->detail, "a standby answered");
        } else {
            LOOM_ERROR(COMP, "msg=\"registration refused\" status=%d reason=\"%s\"", st,
                       loom_msg_reply_message(msg));
        }
    } else if (is_reply && strcmp(m, "loom.v1.WorkerHub/Heartbeat") == 0) {
        Loom__V1__HeartbeatReply *r = unpack(msg, &loom__v1__heartbeat_reply__descriptor);
        int other_epoch = r && r->epoch && r->epoch[0] && strcmp(r->epoch, w->epoch) != 0;
        if (r && (!r->known || other_epoch) && w->registered) {
            LOOM_WARN(COMP, "msg=\"loomd does not know this worker%s; registering again\"",
                      other_epoch ? " (it restarted)" : "");
            w->registered = 0;
            set_fence(w, 1);
            send_register(w);
        } else if (r && r->known && w->registered) {
            set_fence(w, 0);
        }
        /* loomd's word on objects of runs (objstore.h): consumers done, or the run's data gone */
        size_t touched = 0;
        for (size_t i = 0; r && i < r->n_released_objects; i++) {
            const Loom__V1__ObjectRelease *x = r->released_objects[i];
            if (x && x->run_id && x->run_id[0])
                touched += loom_objstore_release(x->run_id, x->object_id, x->forget);
        }
        if (r && r->n_released_objects && touched) {
            loom_objstore_stats_t st;
            loom_objstore_stats(&st);
            LOOM_INFO(COMP, "msg=\"objects released\" releases=%zu first_run=%s forget=%d touched=%zu objects=%zu "
                            "pinned=%zu spilled=%zu bytes=%llu spill_bytes=%llu",
                      r->n_released_objects, r->released_objects[0]->run_id ? r->released_objects[0]->run_id : "",
                      (int)r->released_objects[0]->forget, touched, st.objects, st.pinned, st.spilled,
                      (unsigned long long)st.bytes, (unsigned long long)st.spill_bytes);
        }
        loom_pb_free(r);
    } else if (is_reply) {
        /* replies to one-way-ish messages: nothing to do */
    } else if (strcmp(m, "loom.v1.Worker/AssignBatch") == 0) {
        Loom__V1__AssignBatchRequest *b = unpack(msg, &loom__v1__assign_batch_request__descriptor);
        if (b)
            assign_batch(w, b->tasks, b->n_tasks);
        loom_pb_free(b);
    } else if (strcmp(m, "loom.v1.Worker/Assign") == 0) {
        Loom__V1__AssignRequest *a = unpack(msg, &loom__v1__assign_request__descriptor);
        Loom__V1__AssignReply rep = LOOM__V1__ASSIGN_REPLY__INIT;
        rep.accepted = a != NULL && !w->draining;
        if (a) {
            assign_batch(w, &a, 1);
            loom_pb_free(a);
        }
        if (!(flags & LOOM__V1__FLAG__FLAG_ONEWAY))
            send_msg(w, m, req, LOOM__V1__FLAG__FLAG_REPLY, (const ProtobufCMessage *)&rep);
    } else if (strcmp(m, "loom.v1.Worker/CancelTask") == 0) {
        Loom__V1__CancelTaskRequest *c = unpack(msg, &loom__v1__cancel_task_request__descriptor);
        Loom__V1__CancelTaskReply rep = LOOM__V1__CANCEL_TASK_REPLY__INIT;
        int found = 0;
        if (c && c->task_id) {
            cancel_task(w, c->task_id, c->attempt, &found);
            LOOM_INFO(COMP, "msg=\"cancel\" task=%s found=%d reason=\"%s\"", c->task_id, found,
                      c->reason ? c->reason : "");
        }
        rep.found = found;
        loom_pb_free(c);
        if (!(flags & LOOM__V1__FLAG__FLAG_ONEWAY))
            send_msg(w, m, req, LOOM__V1__FLAG__FLAG_REPLY, (const ProtobufCMessage *)&rep);
    } else if (strcmp(m, "loom.v1.Worker/Drain") == 0) {
        w->draining = 1;
        LOOM_INFO(COMP, "msg=\"draining\" running=%d", w->nrunning);
        Loom__V1__DrainReply rep = LOOM__V1__DRAIN_REPLY__INIT;
        rep.running_tasks = (uint32_t)w->nrunning;
        if (!(flags & LOOM__V1__FLAG__FLAG_ONEWAY))
            send_msg(w, m, req, LOOM__V1__FLAG__FLAG_REPLY, (const ProtobufCMessage *)&rep);
    } else {
        LOOM_WARN(COMP, "msg=\"unknown method from loomd\" method=%s", m);
    }
}

/* Reads every message readable now (bounded) through the protocol
 * library (protocol/envelope.h: frame count and size limits, bounded
 * header decoding, version check) and handles the well-formed ones; a
 * malformed one is logged with the library's reason and dropped. */
static void read_socket(worker_t *w)
{
    for (int n = 0; n < 4096; n++) {
        loom_msg_t *msg = NULL;
        loom_err_t err = {0};
        int rc = loom_msg_recv(w->sock, 0, NULL, ZMQ_DONTWAIT, &msg, &err);
        if (rc <= 0) {
            if (rc < 0)
                LOOM_WARN(COMP, "msg=\"receive from loomd failed\" error=\"%s\"", err.msg);
            return;
        }
        if (!msg) {
            LOOM_ERROR(COMP, "msg=\"out of memory decoding a message from loomd\"");
            return;
        }
        int st = loom_msg_status(msg);
        w->last_rx = loom_clock_ms();
        w->hb_unanswered = 0;
        if (st == LOOM_STATUS_OK) {
            handle(w, msg);
            /* the first message's inline results go out now, before the
             * receive that finds the socket empty (a chained task's round
             * trip); later ones in a burst are batched by the loop */
            if (n == 0)
                batch_flush(w);
        } else
            LOOM_WARN(COMP, "msg=\"malformed message from loomd ignored\" status=%s method=%s error=\"%s\"",
                      loom_status_name(st), loom_msg_method(msg), loom_msg_error(msg));
        loom_msg_destroy(&msg);
    }
}

/* ---- the spool: tools of an earlier process with this id ------------------------ */

/* Where this worker keeps its tools' spool entries: --spool-dir, else
 * $LOOM_SPOOL_DIR or $TMPDIR (/tmp) /loom-spool-<uid>, then one folder per
 * worker id and loomd endpoint (so workers of different loomds never see
 * each other's tools). */
static void spool_path(const loom_worker_opts_t *o, const char *id, const char *ep, char *p,
                       size_t n)
{
    if (o->spool_dir && *o->spool_dir) {
        snprintf(p, n, "%s", o->spool_dir);
        return;
    }
    const char *base = getenv("LOOM_SPOOL_DIR");
    char def[512];
    if (!base || !*base) {
        const char *tmp = getenv("TMPDIR");
        snprintf(def, sizeof def, "%s/loom-spool-%u", tmp && *tmp ? tmp : "/tmp",
                 (unsigned)getuid());
        base = def;
    }
    uint32_t h = 2166136261u; /* FNV-1a of the endpoint */
    for (const char *c = ep; *c; c++)
        h = (h ^ (uint8_t)*c) * 16777619u;
    char name[160];
    loom_spool_file_name(id, name, sizeof name);
    snprintf(p, n, "%s/%s@%08x", base, name, h);
}

/* Picks up the entries an earlier process with this id left: a finished
 * tool's result joins the finished-result history (offered at Register as
 * HELD_FINISHED), a still running one is queued first as a task that waits
 * for it (HELD_RUNNING); entries whose keeper died without a result go. */
static void spool_recover(worker_t *w)
{
    const char *root = loom_spool_root();
    DIR *d = opendir(root);
    if (!d)
        return;
    int finished = 0, running = 0, gone = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char entry[4096], mp[4200];
        snprintf(entry, sizeof entry, "%s/%s", root, de->d_name);
        snprintf(mp, sizeof mp, "%s/meta", entry);
        json_error_t je;
        json_t *m = json_load_file(mp, 0, &je);
        int alive = loom_spool_keeper_alive(entry), st;
        int64_t when = 0;
        int done = loom_spool_status(entry, &st, &when) == 0;
        const char *tid = json_string_value(json_object_get(m, "task_id"));
        const char *key = json_string_value(json_object_get(m, "task_key"));
        loom_op_ctx_t *t = NULL;
        if (tid && (alive || done) && (t = calloc(1, sizeof *t))) {
            t->w = w;
            t->task_id = strdup(tid);
            t->task_key = strdup(key ? key : "");
            t->op = strdup("tool.exec");
            t->spool_entry = strdup(entry);
            t->attempt = (uint32_t)json_integer_value(json_object_get(m, "attempt"));
            t->fn = loom_op_tool_exec_resume;
            t->resumed = 1;
            t->received_ms = loom_wall_ms();
            if (!t->task_id || !t->task_key || !t->op || !t->spool_entry) {
                task_free(t);
                t = NULL;
            }
        }
        json_decref(m);
        if (!t) {
            if (!alive)
                loom_spool_entry_remove(entry);
            gone++;
            continue;
        }
        if (!alive) { /* finished: the handler returns at once */
            execute(w, t);
            if (when)
                t->finished_ms = when;
            history_add(w, t);
            finished++;
            continue;
        }
        atomic_store(&t->running, 1);
        t->rnext = w->running;
        if (w->running)
            w->running->rprev = t;
        w->running = t;
        w->nrunning++;
        t->next = w->qhead;
        w->qhead = t;
        if (!w->qtail)
            w->qtail = t;
        running++;
    }
    closedir(d);
    if (finished || running || gone)
        LOOM_INFO(COMP, "msg=\"spool of an earlier process\" dir=%s finished=%d running=%d "
                        "dropped=%d", root, finished, running, gone);
}

/* ---- life cycle --------------------------------------------------------------- */

static void on_signal(int sig)
{
    (void)sig;
    got_signal = got_signal ? 2 : 1;
}

/* Keeps only the ops named in list (comma-separated); an unknown name is
 * an error so a typo does not silently offer nothing. */
static int restrict_ops(worker_t *w, const char *list, loom_err_t *err)
{
    loom_ops_t *keep = loom_ops_new();
    char *copy = strdup(list);
    int rc = keep && copy ? 0 : loom_err_set(err, LOOM_ENOMEM, "out of memory");
    for (char *save = NULL, *name = copy ? strtok_r(copy, ", ", &save) : NULL; !rc && name;
         name = strtok_r(NULL, ", ", &save)) {
        loom_op_fn fn;
        void *ud;
        int flags;
        if (loom_ops_find(w->ops, name, &fn, &ud, &flags) != 0) {
            rc = loom_err_set(err, LOOM_EINVAL, "--ops: this worker has no op '%s'", name);
            loom_err_hint(err, "run without --ops to offer all of them");
        } else {
            rc = loom_ops_add(keep, name, fn, ud, flags);
        }
    }
    free(copy);
    if (rc) {
        loom_ops_destroy(&keep);
        return rc;
    }
    loom_ops_set_models_fn(keep, loom_ops_get_models_fn(w->ops)); /* still advertised */
    loom_ops_set_prefixes_fn(keep, loom_ops_get_prefixes_fn(w->ops));
    loom_ops_destroy(&w->ops);
    w->ops = keep;
    return 0;
}

/* CURVE: encrypt to loomd's public key and authenticate with our own key
 * pair, which loomd's allow-list must hold. */
static int setup_curve(void *sock, const loom_worker_opts_t *opts, loom_err_t *err)
{
    if (!opts->server_key && !opts->key_file)
        return 0;
    if (!opts->server_key || !opts->key_file) {
        loom_err_set(err, LOOM_EINVAL, "CURVE needs both --server-key (loomd.pub) and --key (this "
                                       "worker's NAME.key)");
        loom_err_hint(err, "`loom keygen --dir DIR --name NAME` makes NAME.key and NAME.pub; copy "
                           "NAME.pub into loomd's workers/ folder");
        return LOOM_EINVAL;
    }
    char server[41], pub[41], sec[41];
    int rc = loom_key_read_public(opts->server_key, server, err);
    if (!rc)
        rc = loom_key_read_pair(opts->key_file, pub, sec, err);
    if (rc)
        return rc;
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, server, 41) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, pub, 41) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, sec, 41) != 0)
        return loom_err_set(err, LOOM_EINVAL, "cannot enable CURVE: %s", zmq_strerror(zmq_errno()));
    /* the object endpoint (payloads by reference) uses the same key pair;
     * consumers must present a key from $LOOM_OBJECT_PEER_KEYS */
    if ((rc = loom_objstore_set_curve(pub, sec, getenv("LOOM_OBJECT_PEER_KEYS"), err)) != 0)
        return rc;
    LOOM_INFO(COMP, "msg=\"CURVE on\" key=%s server_key=%s", pub, server);
    return 0;
}

int loom_worker_run(const loom_backend_t *backend, void *bself, const loom_worker_opts_t *opts,
                    volatile int *stop, loom_err_t *err)
{
    int rc = 0;
    worker_t *w = calloc(1, sizeof *w);
    if (!w)
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    w->backend = backend;
    w->bself = bself;
    w->stop = stop;
    w->efd = -1;
    pthread_mutex_init(&w->qmu, NULL);
    pthread_cond_init(&w->qcv, NULL);
    pthread_mutex_init(&w->omu, NULL);
    pthread_mutex_init(&w->serial_mu, NULL);
    if (!(w->ops = loom_ops_new())) {
        rc = loom_err_set(err, LOOM_ENOMEM, "out of memory");
        goto free_worker;
    }
    if ((rc = backend->profile(bself, &w->profile, err)) != 0)
        goto free_ops;
    if ((rc = loom_ops_add_basic(w->ops)) != 0 || (rc = backend->add_ops(bself, w->ops, err)) != 0) {
        if (!err || !err->msg[0])
            loom_err_set(err, rc, "registering ops failed");
        goto free_ops;
    }
    if (opts->only_ops && *opts->only_ops && (rc = restrict_ops(w, opts->only_ops, err)) != 0)
        goto free_ops;
    if (opts->price_per_hour > 0)
        w->profile.price_per_hour = opts->price_per_hour;
    w->slots = opts->slots > 0 ? opts->slots : w->profile.slots > 0 ? w->profile.slots
                                              : w->profile.cores > 0 ? w->profile.cores
                                                                     : 1;
    w->hb_ms = opts->heartbeat_ms;
    w->hmax_bytes = opts->outbox_bytes > 0 ? (size_t)opts->outbox_bytes : (size_t)32 << 20;
    if (opts->worker_id && opts->worker_id[0]) {
        snprintf(w->id, sizeof w->id, "%s", opts->worker_id);
    } else {
        char host[128] = "host";
        gethostname(host, sizeof host - 1);
        snprintf(w->id, sizeof w->id, "%s/%s/%d", host, w->profile.kind, (int)getpid());
    }
    if ((rc = loom_endpoints_parse(&w->eps, opts->endpoint ? opts->endpoint : "tcp://127.0.0.1:7401",
                                   err)) != 0)
        goto free_ops;
    const char *ep = loom_endpoints_current(&w->eps);
    char spool[4096];
    /* the spool is named after the whole endpoint list: the same across a
     * failover and a restart */
    spool_path(opts, w->id, opts->endpoint ? opts->endpoint : "tcp://127.0.0.1:7401", spool,
               sizeof spool);
    if ((rc = loom_spool_init(spool, err)) != 0)
        goto free_ops;
    /* a restart with the same id can find its tools again; a pid-made id
     * cannot, so such a spool goes at exit */
    int stable_id = (opts->worker_id && opts->worker_id[0]) || (opts->spool_dir && *opts->spool_dir);
    w->keeps_tools = stable_id;
    spool_recover(w);
    if ((w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
        rc = loom_err_set(err, LOOM_EIO, "eventfd: %s", strerror(errno));
        goto free_ops;
    }
    w->zctx = zmq_ctx_new();
    w->sock = w->zctx ? zmq_socket(w->zctx, ZMQ_DEALER) : NULL;
    if (!w->sock) {
        rc = loom_err_set(err, LOOM_EIO, "zmq socket: %s", zmq_strerror(zmq_errno()));
        goto close_zmq;
    }
    /* linger 0 and ZMQ_MAXMSGSIZE from the protocol limits: libzmq drops a
     * peer announcing a frame far above them before allocating it */
    if ((rc = loom_socket_setup(w->sock, NULL, err)) != 0)
        goto close_zmq;
    if ((rc = setup_curve(w->sock, opts, err)) != 0)
        goto close_zmq;
    int hwm = 1000000, ivl = 100;
    zmq_setsockopt(w->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(w->sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(w->sock, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
    if (w->eps.n > 1) /* before connecting: a refused first connect is an event too */
        w->watch = loom_conn_watch_new(w->zctx, w->sock);
    /* CURVE: libzmq ends a connection whose handshake loomd refused (key
     * not admitted yet) and never retries it; the monitor tells the loop,
     * which connects again at the next Register, so a key admitted later
     * gets in without restarting the worker. */
    if (opts->key_file && opts->key_file[0] && !w->watch) { /* (several loomd: the watch) */
        char mep[64];
        snprintf(mep, sizeof mep, "inproc://loom-worker-monitor-%p", (void *)w);
        if (zmq_socket_monitor(w->sock, mep, ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                                                 ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                                                 ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) == 0 &&
            (w->mon = zmq_socket(w->zctx, ZMQ_PAIR)) != NULL && zmq_connect(w->mon, mep) != 0) {
            zmq_close(w->mon);
            w->mon = NULL;
        }
    }
    for (int i = 0; i < w->eps.n; i++) { /* check every one now, use the first */
        if (zmq_connect(w->sock, w->eps.ep[i]) != 0) {
            rc = loom_err_set(err, LOOM_EINVAL, "cannot connect to %s: %s", w->eps.ep[i],
                              zmq_strerror(zmq_errno()));
            loom_err_hint(err, "endpoints look like tcp://127.0.0.1:7401; several loomd are "
                               "separated by commas");
            goto close_zmq;
        }
        if (i > 0)
            zmq_disconnect(w->sock, w->eps.ep[i]);
    }
    w->threads = calloc((size_t)w->slots, sizeof *w->threads);
    int started = 0;
    for (; w->threads && started < w->slots; started++)
        if (pthread_create(&w->threads[started], NULL, slot_main, w) != 0)
            break;
    if (started == 0) {
        rc = loom_err_set(err, LOOM_EIO, "cannot start slot threads");
        goto close_zmq;
    }
    LOOM_INFO(COMP, "msg=\"worker starting\" id=%s endpoint=%s kind=%s model=\"%s\" slots=%d", w->id,
              ep, w->profile.kind, w->profile.model ? w->profile.model : "", w->slots);
    send_register(w);
    w->next_reg = loom_clock_ms() + 1000;
    int reg_tries = 0;
    w->last_rx = loom_clock_ms();
    uint64_t drain_until = 0;
    while (!*stop) {
        if (got_signal == 1 && !drain_until) {
            /* First SIGINT/SIGTERM: drain. Refuse new tasks, tell loomd at
             * once, let running ones finish (up to 30 s); a second signal
             * stops now. */
            got_signal = 0;
            w->draining = 1;
            drain_until = loom_clock_ms() + 30000;
            LOOM_INFO(COMP, "msg=\"draining before exit\" running=%d", w->nrunning);
            if (w->registered)
                send_heartbeat(w);
        }
        if (got_signal || (drain_until && (w->nrunning == 0 || loom_clock_ms() >= drain_until)))
            break;
        uint64_t now = loom_clock_ms();
        uint64_t due = w->registered ? w->next_hb : w->next_reg;
        long timeout = due > now ? (long)(due - now) : 0;
        zmq_pollitem_t items[3] = {{w->sock, 0, ZMQ_POLLIN, 0}, {NULL, w->efd, ZMQ_POLLIN, 0},
                                   {w->watch ? loom_conn_watch_socket(w->watch) : w->mon, 0,
                                    ZMQ_POLLIN, 0}};
        /* as zmq_poll, with fewer system calls (protocol/zpoll.h): read_socket
         * drains the socket until EAGAIN, the monitor is drained below */
        if (loom_zpoll(items, w->watch || w->mon ? 3 : 2, timeout > 200 ? 200 : timeout) < 0)
            break;
        ep = loom_endpoints_current(&w->eps);
        if (w->watch && (items[2].revents & ZMQ_POLLIN) && loom_conn_watch_lost(w->watch, ep)) {
            move_on(w, NULL, "connection lost or refused");
            ep = loom_endpoints_current(&w->eps);
        }
        if (w->mon && (items[2].revents & ZMQ_POLLIN)) {
            zmq_msg_t f; /* an event: [16-bit event, 32-bit value][address] */
            zmq_msg_init(&f);
            while (zmq_msg_recv(&f, w->mon, ZMQ_DONTWAIT) >= 0)
                if (!zmq_msg_more(&f))
                    w->handshake_failed = 1;
            zmq_msg_close(&f);
        }
        if (items[0].revents & ZMQ_POLLIN)
            read_socket(w);
        ep = loom_endpoints_current(&w->eps);
        if (items[1].revents & ZMQ_POLLIN)
            drain_outbox(w);
        batch_flush(w);
        now = loom_clock_ms();
        uint64_t lease = w->lease_ms > 2u * (uint32_t)w->hb_ms ? w->lease_ms : 2u * (uint32_t)w->hb_ms;
        if (w->registered && w->lease_ms && now - w->last_rx > lease)
            set_fence(w, 1);
        history_trim(w);
        if (w->registered)
            reg_tries = 0;
        if (!w->registered && now >= w->next_reg && w->watch && reg_tries > 0 &&
            now - w->last_rx >= 1000) {
            /* several loomd: one that does not answer Register is passed over */
            move_on(w, NULL, "no answer to Register");
            reg_tries = 0;
        } else if (!w->registered && now >= w->next_reg) {
            if (++reg_tries % 10 == 4) /* about 15 s, then every 80 s */
                LOOM_WARN(COMP, "msg=\"no answer from loomd to Register yet; still trying\" "
                                "endpoint=%s tries=%d curve=%s%s",
                          ep, reg_tries, opts->key_file ? "on" : "off",
                          opts->key_file ? " hint=\"is this worker's .pub in loomd's workers/ "
                                           "folder, and --server-key loomd's public key?\""
                                         : "");
            LOOM_DEBUG(COMP, "msg=\"no reply to Register yet; retrying\"");
            if (w->handshake_failed) { /* see the monitor above */
                w->handshake_failed = 0;
                zmq_disconnect(w->sock, ep);
                if (zmq_connect(w->sock, ep) != 0)
                    LOOM_ERROR(COMP, "msg=\"reconnect failed\" endpoint=%s error=\"%s\"", ep,
                               zmq_strerror(zmq_errno()));
            }
            send_register(w);
            /* Back off (1, 2, 4, then 8 s): a Register carries the result
             * history (tens of thousands of entries after a busy burst);
             * resent every second to a loomd too loaded to answer within a
             * second, they queued faster than it could unpack them. */
            w->next_reg = now + (1000u << (reg_tries < 4 ? reg_tries - 1 : 3));
        } else if (w->registered && w->hb_unanswered >= 5 &&
                   now - w->last_rx > (uint64_t)(w->hb_ms > 600 ? 5 * w->hb_ms : 3000)) {
            /* Heartbeats are answered: five unanswered ones (not an I/O stall
             * of this thread) mean the connection is
             * gone for good (libzmq does not reconnect after it dropped a
             * peer for a frame over ZMQ_MAXMSGSIZE). Reconnect, register. */
            if (w->watch) { /* several loomd: try the next */
                move_on(w, NULL, "no reply to heartbeats");
                continue;
            }
            LOOM_WARN(COMP, "msg=\"no reply from loomd; reconnecting\" silent_ms=%" PRIu64, now - w->last_rx);
            zmq_disconnect(w->sock, ep);
            if (zmq_connect(w->sock, ep) != 0)
                LOOM_ERROR(COMP, "msg=\"reconnect failed\" endpoint=%s error=\"%s\"", ep, zmq_strerror(zmq_errno()));
            w->registered = 0;
            set_fence(w, 1);
            w->last_rx = now;
            w->hb_unanswered = 0;
            send_register(w);
            w->next_reg = now + 1000;
        } else if (w->registered && now >= w->next_hb) {
            send_heartbeat(w);
            w->hb_unanswered++;
            w->next_hb = now + (uint64_t)(w->hb_ms > 0 ? w->hb_ms : 1000);
        }
    }
    LOOM_INFO(COMP, "msg=\"worker stopping\" id=%s done=%" PRIu64 " failed=%" PRIu64, w->id,
              w->done, w->failed);
    w->exiting = stable_id;
    /* Stop slots: cancel what runs so handlers return promptly. */
    for (loom_op_ctx_t *t = w->running; t; t = t->rnext)
        atomic_store(&t->cancelled, 1);
    pthread_mutex_lock(&w->qmu);
    w->quit = 1;
    pthread_cond_broadcast(&w->qcv);
    pthread_mutex_unlock(&w->qmu);
    for (int i = 0; i < started; i++)
        pthread_join(w->threads[i], NULL);
    drain_outbox(w);
    batch_flush(w);
close_zmq:
    free(w->threads);
    if (w->mon)
        zmq_close(w->mon);
    loom_conn_watch_destroy(&w->watch);
    if (w->sock)
        zmq_close(w->sock);
    if (w->zctx)
        zmq_ctx_term(w->zctx);
    if (w->efd >= 0)
        close(w->efd);
free_ops:
    loom_endpoints_free(&w->eps); /* safe when never parsed (zeroed) */
    loom_ops_destroy(&w->ops);
free_worker:
    for (loom_op_ctx_t *t = w->qhead, *n; t; t = n) {
        n = t->next;
        task_free(t);
    }
    while (w->hhead)
        history_pop(w);
    /* The spool stays for the next process with this id only when loomd
     * may lack results: it was not answering at the end (a clean stop
     * while loomd answers leaves nothing behind in /tmp) */
    if (!w->keeps_tools || (w->registered && !atomic_load(&w->fenced)))
        loom_spool_remove_all();
    free(w->batch);
    free(w->batch_tasks);
    free(w->started);
    free(w->started_ptrs);
    free(w->started_ctx);
    free(w);
    return rc;
}

static void usage(FILE *f, const char *prog, const char *kind)
{
    fprintf(f,
            "usage: %s [options]\n\n"
            "Loom %s worker: registers its measured device profile with loomd and runs\n"
            "the tasks loomd assigns to it.\n\n"
            "options:\n"
            "  --endpoint URL     loomd's worker endpoint (default tcp://127.0.0.1:7401,\n"
            "                     or $LOOM_WORKER_ENDPOINT); several loomd (failover):\n"
            "                     URL,URL,... and the worker follows the leader\n"
            "  --id ID            worker id to propose (default host/kind/pid)\n"
            "  --slots N          tasks run at once (default: cores)\n"
            "  --heartbeat-ms N   heartbeat interval (default: loomd's, 1000)\n"
            "  --price USD        price per hour of this device, for the planner\n"
            "  --ops LIST         offer only these ops (comma-separated), e.g. tool.exec,echo\n"
            "  --allow-exec LIST  tool.exec runs only these programs (names looked up in the\n"
            "                     worker's PATH, or absolute paths), e.g. python3,/usr/bin/jq\n"
            "  --allow-hosts LIST tool.http reaches only these hosts (.example.com: the domain\n"
            "                     and its subdomains)\n"
            "  --secret NAME=FILE a value for ${secrets.NAME} in workflows (repeatable; also\n"
            "                     $LOOM_SECRET_NAME; FILE - reads standard input); replaced\n"
            "                     by *** in whatever goes back\n"
            "  --server-key KEY   CURVE: loomd's public key (Z85 or loomd.pub; $LOOM_SERVER_KEY)\n"
            "  --key FILE         CURVE: this worker's key pair (NAME.key; $LOOM_WORKER_KEY);\n"
            "                     loomd admits it when NAME.pub is in its workers/ folder\n"
            "  --models LIST      NAME=PATH,... GGUF models loaded at start (or $LOOM_MODELS)\n"
            "  --indexes LIST     NAME=PATH,... vector indexes (or $LOOM_INDEXES)\n"
            "  --outbox-bytes N   finished results kept until loomd surely has them, so a\n"
            "                     loomd restart does not re-run them (default 33554432)\n"
            "  --spool-dir DIR    where tool.exec keeps its processes' output and exit status,\n"
            "                     so a worker restarted with the same --id delivers what they\n"
            "                     did (default $LOOM_SPOOL_DIR or $TMPDIR/loom-spool-UID, one\n"
            "                     folder per id and endpoint)\n"
            "  --object-spill-dir DIR  where objects runs still need go when the memory tier\n"
            "                     ($LOOM_OBJECT_CACHE_BYTES) is full (default\n"
            "                     $LOOM_OBJECT_SPILL_DIR or $TMPDIR|/var/tmp /loom-spill-UID)\n"
            "  --object-spill-bytes N  bound of the spill directory (default 17179869184;\n"
            "                     0 = no spill; $LOOM_OBJECT_SPILL_BYTES)\n"
            "  --log-level L      debug|info|warn|error (default info, or $LOOM_LOG_LEVEL)\n"
            "  --config FILE      read options from FILE: lines 'key: value' with the long\n"
            "                     option names above; later options override earlier ones\n"
            "  --help             this text\n"
            "  --version          print the version\n",
            prog, kind);
}

typedef struct {
    loom_worker_opts_t o;
    const char *log_level;
    const char *allow_exec, *allow_hosts; /* tool policy (policy.h) */
    loom_arena_t *strings; /* option values copied from config files and argv */
} worker_cfg_t;

/* Applies one common option (long name without "--", or a config key);
 * returns 0, 1 when the key is not a common option (the backend's), or -1
 * with why[] filled. Values are copied: config lines do not outlive this. */
static int apply_opt(worker_cfg_t *c, const char *k, const char *v, char *why, size_t why_n)
{
    long n;
    char *end;
    if (strcmp(k, "endpoint") == 0)
        c->o.endpoint = loom_arena_strdup(c->strings, v);
    else if (strcmp(k, "id") == 0)
        c->o.worker_id = loom_arena_strdup(c->strings, v);
    else if (strcmp(k, "slots") == 0) {
        if (loom_config_positive(v, 1024, &n, why, why_n) != 0)
            return -1;
        c->o.slots = (int)n;
    } else if (strcmp(k, "heartbeat-ms") == 0) {
        if (loom_config_positive(v, 3600000, &n, why, why_n) != 0)
            return -1;
        c->o.heartbeat_ms = (int)n;
    } else if (strcmp(k, "price") == 0) {
        double d = strtod(v, &end);
        if (end == v || *end || !(d >= 0 && d < 1e9)) {
            snprintf(why, why_n, "expected a price in USD per hour, got '%s'", v);
            return -1;
        }
        c->o.price_per_hour = d;
    } else if (strcmp(k, "ops") == 0)
        c->o.only_ops = loom_arena_strdup(c->strings, v);
    else if (strcmp(k, "outbox-bytes") == 0) {
        if (loom_config_positive(v, 1L << 40, &n, why, why_n) != 0)
            return -1;
        c->o.outbox_bytes = n;
    }
    else if (strcmp(k, "spool-dir") == 0)
        c->o.spool_dir = loom_arena_strdup(c->strings, v);
    /* the object store (objstore.h) reads its bounds from the environment
     * when it starts (first use, after option parsing): the flags set it */
    else if (strcmp(k, "object-spill-dir") == 0)
        setenv("LOOM_OBJECT_SPILL_DIR", v, 1);
    else if (strcmp(k, "object-spill-bytes") == 0) {
        if (strcmp(v, "0") != 0 && loom_config_positive(v, 1L << 50, &n, why, why_n) != 0)
            return -1;
        setenv("LOOM_OBJECT_SPILL_BYTES", v, 1);
    }
    else if (strcmp(k, "server-key") == 0)
        c->o.server_key = loom_arena_strdup(c->strings, v);
    else if (strcmp(k, "key") == 0)
        c->o.key_file = loom_arena_strdup(c->strings, v);
    else if (strcmp(k, "allow-exec") == 0)
        c->allow_exec = loom_arena_strdup(c->strings, v);
    else if (strcmp(k, "allow-hosts") == 0)
        c->allow_hosts = loom_arena_strdup(c->strings, v);
    else if (strcmp(k, "secret") == 0) {
        loom_err_t serr;
        if (loom_secrets_add_file(v, &serr) != 0) {
            snprintf(why, why_n, "%s", serr.msg);
            return -1;
        }
    } else if (strcmp(k, "log-level") == 0) {
        if (loom_log_parse_level(v) < 0) {
            snprintf(why, why_n, "unknown log level '%s' (debug|info|warn|error|off)", v);
            return -1;
        }
        c->log_level = loom_arena_strdup(c->strings, v);
    } else if (strcmp(k, "models") == 0 || strcmp(k, "indexes") == 0)
        /* The LLM engine reads these maps from the environment. */
        setenv(strcmp(k, "models") == 0 ? "LOOM_MODELS" : "LOOM_INDEXES", v, 1);
    else
        return 1;
    return 0;
}

static int apply_config_key(void *ud, const char *k, const char *v, char *why, size_t why_n)
{
    int rc = apply_opt(ud, k, v, why, why_n);
    if (rc == 1)
        snprintf(why, why_n, "unknown option (see --help)");
    return rc ? -1 : 0;
}

/* loom_worker_main without the arena of option strings (freed by it). */
static int worker_main(const loom_backend_t *backend, int argc, char **argv,
                       loom_arena_t *strings)
{
    worker_cfg_t c = {.strings = strings};
    c.o.endpoint = getenv("LOOM_WORKER_ENDPOINT");
    c.log_level = getenv("LOOM_LOG_LEVEL");
    c.o.server_key = getenv("LOOM_SERVER_KEY");
    c.o.key_file = getenv("LOOM_WORKER_KEY");
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    int nrest = 0;
    if (!rest)
        return 3;
    rest[nrest++] = argv[0];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout, argv[0], backend->name);
            free(rest);
            return 0;
        }
        if (strcmp(a, "--version") == 0) {
            const char *slash = strrchr(argv[0], '/');
            printf("%s %s (protocol 1)\n", slash ? slash + 1 : argv[0], LOOM_VERSION);
            free(rest);
            return 0;
        }
        char why[512] = "";
        int rc = 1;
        if (strcmp(a, "--config") == 0 && v)
            rc = loom_config_load(v, apply_config_key, &c) == 0 ? 0 : -2;
        else if (strncmp(a, "--", 2) == 0 && v)
            rc = apply_opt(&c, a + 2, v, why, sizeof why);
        if (rc == 1) { /* not ours: the backend's */
            rest[nrest++] = argv[i];
            continue;
        }
        if (rc < 0) {
            if (rc == -1)
                fprintf(stderr, "%s: %s: %s\n", argv[0], a, why);
            free(rest);
            return 2;
        }
        i++;
    }
    if (c.log_level) {
        int l = loom_log_parse_level(c.log_level);
        if (l < 0) {
            fprintf(stderr, "%s: unknown log level '%s' (debug|info|warn|error|off)\n", argv[0],
                    c.log_level);
            free(rest);
            return 2;
        }
        loom_log_set_level((loom_log_level_t)l);
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    loom_err_t err;
    loom_err_clear(&err);
    if (c.o.server_key && !*c.o.server_key)
        c.o.server_key = NULL;
    if (c.o.key_file && !*c.o.key_file)
        c.o.key_file = NULL;
    if (loom_policy_set(c.allow_exec, c.allow_hosts, &err) != 0 || loom_secrets_add_env(&err) != 0) {
        fprintf(stderr, "%s: %s\n", argv[0], err.msg);
        free(rest);
        return 2;
    }
    if (c.allow_exec || c.allow_hosts)
        LOOM_INFO(COMP, "msg=\"tool policy\" allow_exec=\"%s\" allow_hosts=\"%s\"",
                  c.allow_exec ? c.allow_exec : "*", c.allow_hosts ? c.allow_hosts : "*");
    void *self = NULL;
    int rc = backend->init ? backend->init(&self, nrest, rest, &err) : 0;
    free(rest);
    if (rc != 0) {
        char buf[1500];
        loom_err_format_long(&err, buf, sizeof buf);
        fprintf(stderr, "%s: %s\n", argv[0], buf);
        return rc == LOOM_EINVAL ? 2 : 3;
    }
    volatile int stop = 0;
    rc = loom_worker_run(backend, self, &c.o, &stop, &err);
    loom_notify("STOPPING=1");
    if (backend->destroy)
        backend->destroy(self);
    if (rc != 0) {
        char buf[1500];
        loom_err_format_long(&err, buf, sizeof buf);
        fprintf(stderr, "%s: %s\n", argv[0], buf);
        return 3;
    }
    return 0;
}

int loom_worker_main(const loom_backend_t *backend, int argc, char **argv)
{
    loom_arena_t *strings = loom_arena_new(0);
    if (!strings)
        return 3;
    int rc = worker_main(backend, argc, argv, strings);
    loom_arena_destroy(&strings);
    return rc;
}
