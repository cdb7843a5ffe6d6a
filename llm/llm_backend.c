/* llm_backend.c — the backend table: CPU always, CUDA when linked in. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "llm/cpu/llm_cpu.h"
#include "llm/llm_backend.h"

/* Defined in llm/cuda/llm_cuda.c (libloom_llmcuda.a); NULL when not linked. */
extern const loom_llm_factory_t loom_llm_cuda_factory __attribute__((weak));

static pthread_once_t pool_once = PTHREAD_ONCE_INIT;
static loom_llm_pool_t *pool;

static void make_pool(void) {
    const char *t = getenv("LOOM_LLM_THREADS");
    pool = loom_llm_pool_new(t ? atoi(t) : 0);
}

loom_llm_pool_t *loom_llm_backend_cpu_pool(void) {
    pthread_once(&pool_once, make_pool);
    return pool;
}

static int cpu_create(void *ud, const loom_llm_model_t *m, int n_ctx, loom_llm_backend_t *b, void **handle,
                      loom_err_t *e) {
    (void)ud;
    loom_llm_pool_t *p = loom_llm_backend_cpu_pool();
    if (!p) return loom_err_set(e, LOOM_ENOMEM, "out of memory starting the CPU threads");
    loom_llm_cpu_t *c;
    int rc = loom_llm_cpu_new(m, p, n_ctx, &c, e);
    if (rc) return rc;
    loom_llm_backend_cpu(c, b);
    *handle = c;
    return 0;
}

static void cpu_destroy(void *ud, void *handle) {
    (void)ud;
    loom_llm_cpu_t *c = handle;
    loom_llm_cpu_destroy(&c);
}

static const loom_llm_factory_t CPU = {"cpu", cpu_create, cpu_destroy, NULL};

const loom_llm_factory_t *loom_llm_backend_find(const char *name) {
    if (!name || !strcmp(name, "cpu")) return &CPU;
    if (!strcmp(name, "cuda") && &loom_llm_cuda_factory) return &loom_llm_cuda_factory;
    return NULL;
}
