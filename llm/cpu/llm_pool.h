/* llm_pool.h — a fixed team of worker threads for the LLM kernels.
 * loom_llm_pool_run(p, n, fn, ctx) calls fn(ctx, i) for every i in [0, n)
 * across the team (the caller's thread takes part) and returns when all are
 * done. One run at a time per pool: callers serialise (the CPU backend holds
 * a lock per model context). */
#ifndef LOOM_LLM_POOL_H
#define LOOM_LLM_POOL_H

typedef struct loom_llm_pool loom_llm_pool_t;
typedef void (*loom_llm_task_fn)(void *ctx, int i);

/* n_threads <= 0: one per online core. Returns NULL on failure. */
loom_llm_pool_t *loom_llm_pool_new(int n_threads);
void loom_llm_pool_destroy(loom_llm_pool_t **pp);
int loom_llm_pool_size(const loom_llm_pool_t *p);
void loom_llm_pool_run(loom_llm_pool_t *p, int n, loom_llm_task_fn fn, void *ctx);

#endif
