/* llm_ops.h — registers the LLM worker ops (llm.generate, llm.prefill,
 * llm.decode, embed, vector.search) for a device backend.
 *
 * The ops (llm_ops.c) are the same on every worker kind; a factory makes the
 * device context a task runs on. The CPU worker gets the CPU factory through
 * loom_cpu_llm_add_ops; the GPU worker passes its CUDA factory. Encoder
 * models (embed) run on the CPU backend on every worker. */
#ifndef LOOM_WORKERS_LLM_OPS_H
#define LOOM_WORKERS_LLM_OPS_H

#include "common/err.h"
#include "workers/common/backend.h"
#include "workers/cpu/llm_engine.h"

typedef struct loom_llm_factory {
    const char *name; /* "cpu", "cuda" */
    /* Makes a context for model m holding n_ctx positions and fills b;
     * *handle is what destroy gets back. */
    int (*create)(void *ud, const loom_llm_model_t *m, int n_ctx, loom_llm_backend_t *b, void **handle,
                  loom_err_t *e);
    void (*destroy)(void *ud, void *handle);
    void *ud;
} loom_llm_factory_t;

/* f is borrowed for the process's life; NULL = the CPU backend. */
int loom_llm_add_ops(loom_ops_t *ops, const loom_llm_factory_t *f, loom_err_t *err);
/* The CPU worker's hook (declared weak in workers/cpu/main.c). */
int loom_cpu_llm_add_ops(loom_ops_t *ops, loom_err_t *err);
/* Names of loaded models, comma separated, into out (for logs/registration). */
void loom_llm_loaded_models(char *out, size_t n);

#endif
