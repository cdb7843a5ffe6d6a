/* llm_pool.c — a team that shares each run's items through one atomic claim
 * word (run generation << 32 | next item): a thread takes an item with a
 * compare-and-swap that also proves the run is still the one it read the
 * parameters of. The caller takes items too and then waits only for items
 * already taken, never for a worker that has not woken up yet: on a busy
 * machine a descheduled worker costs nothing, it simply takes no items.
 *
 * Idle workers spin briefly for the next run before sleeping: decode
 * issues ~100 short runs per token, a layer apart by microseconds. After
 * 50 us of it they yield the CPU between polls, so a caller that shares
 * their CPU is not kept waiting.
 *
 * On a shared machine another process may take a core while a thread holds
 * an item. The caller then waits for that thread, but only by spinning for
 * about twice its own items' time in this run (what the item should take);
 * past that it sleeps until the last item is done. A sleeping caller frees
 * its CPU, the kernel's idle balancing moves the preempted thread there,
 * and the run ends at once instead of after the other process's time slice.
 * For the same reason threads are not pinned by default (a pinned thread
 * cannot be moved off a busy CPU: rounds at half speed on a busy 2-core
 * machine); LOOM_LLM_PIN=1 pins the workers one per CPU of the process's
 * affinity set (the caller's thread is left alone). */
#include "llm/cpu/llm_pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

#define SPIN_NS 500000     /* how long an idle worker polls before sleeping, */
#define YIELD_NS 50000      /*   yielding the CPU after this much */
#define WAIT_MIN_NS 20000   /* the caller's spin for items held by others: */
#define WAIT_MAX_NS 1000000 /*   2x its mean item time, within these bounds */

struct loom_llm_pool {
    int n;                       /* threads including the caller */
    pthread_t *th;
    _Atomic uint64_t claim;      /* generation << 32 | next item */
    _Atomic int items;           /* this run's items */
    _Atomic(loom_llm_task_fn) fn;
    _Atomic(void *) ctx;
    atomic_int done;             /* items finished in this run */
    atomic_int sleepers;
    atomic_int caller_sleeps;    /* the caller waits on done_cv */
    atomic_int stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;           /* a new run (workers) */
    pthread_cond_t done_cv;      /* the run's last item finished (caller) */
    int64_t wait_ns;             /* caller's spin before sleeping, last run */
};

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* Takes and runs items of the current run while there are any; returns how
 * many it ran. */
static int take(loom_llm_pool_t *p) {
    int ran = 0;
    for (;;) {
        uint64_t c = atomic_load(&p->claim);
        int items = atomic_load_explicit(&p->items, memory_order_relaxed);
        loom_llm_task_fn fn = atomic_load_explicit(&p->fn, memory_order_relaxed);
        void *ctx = atomic_load_explicit(&p->ctx, memory_order_relaxed);
        uint32_t i = (uint32_t)c;
        if (i >= (uint32_t)items) return ran;
        /* success proves the claim word (and so the run) did not change
         * since the parameters above were read */
        if (!atomic_compare_exchange_weak(&p->claim, &c, c + 1)) continue;
        fn(ctx, (int)i);
        /* seq_cst pairs with the caller's store to caller_sleeps: either it
         * sees this item done or this thread sees it sleeping */
        if (atomic_fetch_add(&p->done, 1) + 1 == items && atomic_load(&p->caller_sleeps)) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done_cv);
            pthread_mutex_unlock(&p->mu);
        }
        ran++;
    }
}

/* Work is waiting when the claim word's next item is below the item count. */
static int pending(loom_llm_pool_t *p) {
    return (uint32_t)atomic_load(&p->claim) < (uint32_t)atomic_load_explicit(&p->items, memory_order_relaxed);
}

static void pin(pthread_t t, int k) {
    const char *e = getenv("LOOM_LLM_PIN");
    if (!e || strcmp(e, "1")) return;
    cpu_set_t all, one;
    if (sched_getaffinity(0, sizeof all, &all)) return;
    for (int cpu = 0, seen = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, &all)) continue;
        if (seen++ == k) {
            CPU_ZERO(&one);
            CPU_SET(cpu, &one);
            pthread_setaffinity_np(t, sizeof one, &one);
            return;
        }
    }
}

static void *worker(void *arg) {
    loom_llm_pool_t *p = arg;
    while (!atomic_load(&p->stop)) {
        take(p);
        uint64_t t0 = now_ns();
        for (int spins = 0; !pending(p) && !atomic_load(&p->stop); spins++) {
            CPU_RELAX();
            if ((spins & 255) != 255) continue;
            uint64_t idle = now_ns() - t0;
            /* past the first tens of microseconds, let a thread waiting for
             * this CPU (the caller itself, on a busy machine) run first */
            if (idle > YIELD_NS && idle <= SPIN_NS) sched_yield();
            if (idle > SPIN_NS) {
                pthread_mutex_lock(&p->mu);
                atomic_fetch_add(&p->sleepers, 1);
                while (!pending(p) && !atomic_load(&p->stop)) pthread_cond_wait(&p->cv, &p->mu);
                atomic_fetch_sub(&p->sleepers, 1);
                pthread_mutex_unlock(&p->mu);
                break;
            }
        }
    }
    return NULL;
}

loom_llm_pool_t *loom_llm_pool_new(int n_threads) {
    if (n_threads <= 0) n_threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (n_threads <= 0) n_threads = 1;
    if (n_threads > 256) n_threads = 256;
    loom_llm_pool_t *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    p->wait_ns = WAIT_MAX_NS / 5;
    p->th = calloc((size_t)n_threads, sizeof *p->th);
    if (!p->th) { free(p); return NULL; }
    cpu_set_t all;
    int ncpu = sched_getaffinity(0, sizeof all, &all) ? 0 : CPU_COUNT(&all);
    for (int i = 1; i < n_threads; i++) {
        if (pthread_create(&p->th[i], NULL, worker, p)) { p->n = i; break; }
        if (n_threads <= ncpu) pin(p->th[i], i); /* CPU 0 of the set is left to the caller */
    }
    return p;
}

void loom_llm_pool_destroy(loom_llm_pool_t **pp) {
    if (!pp || !*pp) return;
    loom_llm_pool_t *p = *pp;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++) pthread_join(p->th[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    pthread_cond_destroy(&p->done_cv);
    free(p->th);
    free(p);
    *pp = NULL;
}

int loom_llm_pool_size(const loom_llm_pool_t *p) { return p->n; }

void loom_llm_pool_run(loom_llm_pool_t *p, int n, loom_llm_task_fn fn, void *ctx) {
    if (n <= 0) return;
    if (p->n == 1 || n == 1) {
        for (int i = 0; i < n; i++) fn(ctx, i);
        return;
    }
    /* Every item of the previous run is done and claimed (next >= items).
     * Hide the run (items 0), set it up, open a new generation at item 0,
     * then show its items: a thread holding an older claim word fails its
     * compare-and-swap, one that read items 0 takes nothing yet. */
    atomic_store(&p->items, 0);
    atomic_store_explicit(&p->fn, fn, memory_order_relaxed);
    atomic_store_explicit(&p->ctx, ctx, memory_order_relaxed);
    atomic_store(&p->done, 0);
    atomic_store(&p->claim, ((atomic_load(&p->claim) >> 32) + 1) << 32);
    atomic_store(&p->items, n);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    uint64_t t0 = now_ns();
    int mine = take(p);
    if (atomic_load(&p->done) >= n) return;
    /* only items other threads have taken are left: they are running, or
     * preempted by another process */
    uint64_t t1 = now_ns();
    if (mine > 0) {
        int64_t w = (int64_t)(t1 - t0) / mine * 2;
        p->wait_ns = w < WAIT_MIN_NS ? WAIT_MIN_NS : w > WAIT_MAX_NS ? WAIT_MAX_NS : w;
    }
    for (int spins = 0; atomic_load(&p->done) < n; spins++) {
        CPU_RELAX();
        if ((spins & 63) == 63 && (int64_t)(now_ns() - t1) > p->wait_ns) {
            pthread_mutex_lock(&p->mu);
            atomic_store(&p->caller_sleeps, 1);
            while (atomic_load(&p->done) < n) pthread_cond_wait(&p->done_cv, &p->mu);
            atomic_store(&p->caller_sleeps, 0);
            pthread_mutex_unlock(&p->mu);
            return;
        }
    }
}
