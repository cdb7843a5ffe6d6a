/* llm_pool.c — generation-counted wake-up; work items handed out through an
 * atomic counter so uneven items balance themselves. Workers spin briefly
 * before sleeping: decode issues hundreds of short runs per token. */
#include "llm/cpu/llm_pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

struct loom_llm_pool {
    int n;                 /* threads including the caller */
    pthread_t *th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_int gen;        /* bumped for each run */
    atomic_int next;       /* next item */
    atomic_int busy;       /* workers still inside the current run */
    int items;
    loom_llm_task_fn fn;
    void *ctx;
    int stop;
};

static void drain(loom_llm_pool_t *p) {
    for (;;) {
        int i = atomic_fetch_add(&p->next, 1);
        if (i >= p->items) break;
        p->fn(p->ctx, i);
    }
}

static void *worker(void *arg) {
    loom_llm_pool_t *p = arg;
    int seen = 0;
    for (;;) {
        int g;
        int spins = 0;
        while ((g = atomic_load(&p->gen)) == seen && spins < 20000) spins++;
        if (g == seen) {
            pthread_mutex_lock(&p->mu);
            while ((g = atomic_load(&p->gen)) == seen && !p->stop) pthread_cond_wait(&p->cv, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        if (p->stop) return NULL;
        seen = g;
        drain(p);
        atomic_fetch_sub(&p->busy, 1);
    }
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
    p->th = calloc((size_t)n_threads, sizeof *p->th);
    if (!p->th) { free(p); return NULL; }
    for (int i = 1; i < n_threads; i++)
        if (pthread_create(&p->th[i], NULL, worker, p)) { p->n = i; break; }
    return p;
}

void loom_llm_pool_destroy(loom_llm_pool_t **pp) {
    if (!pp || !*pp) return;
    loom_llm_pool_t *p = *pp;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    atomic_fetch_add(&p->gen, 1);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++) pthread_join(p->th[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
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
    p->fn = fn;
    p->ctx = ctx;
    p->items = n;
    atomic_store(&p->next, 0);
    atomic_store(&p->busy, p->n - 1);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->gen, 1);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    drain(p);
    for (int spins = 0; atomic_load(&p->busy) > 0; spins++)
        if (spins > 4096) sched_yield(); /* shared machines: do not starve the workers */
}
