/* llm_backend.h — the LLM engine's backend table, in the style of ggml's
 * backend registry: each compute backend (CPU in llm/cpu/, CUDA in
 * llm/cuda/) provides a factory that makes a per-sequence context for a
 * model and fills the engine's vtable (loom_llm_backend_t, llm_engine.h).
 * Workers, the CLI and the benches pick a backend by name; no worker
 * reaches into another worker's folder.
 *
 * The CPU backend is always built in. The CUDA backend is built in as a
 * whole when its archive (libloom_llmcuda.a) is linked: the table refers to
 * its factory weakly, so binaries without CUDA simply do not list it. */
#ifndef LOOM_LLM_BACKEND_H
#define LOOM_LLM_BACKEND_H

#include "common/err.h"
#include "llm/cpu/llm_pool.h"
#include "llm/llm_engine.h"

typedef struct loom_llm_factory {
    const char *name; /* "cpu", "cuda" */
    /* Makes a context for model m holding n_ctx positions and fills b;
     * *handle is what destroy gets back. */
    int (*create)(void *ud, const loom_llm_model_t *m, int n_ctx, loom_llm_backend_t *b, void **handle,
                  loom_err_t *e);
    void (*destroy)(void *ud, void *handle);
    void *ud;
} loom_llm_factory_t;

/* The backend called name ("cpu", "cuda"; NULL = "cpu"), or NULL when it is
 * not built into this binary. Borrowed for the process's life. */
const loom_llm_factory_t *loom_llm_backend_find(const char *name);

/* The thread team the CPU backend's contexts share, made on first use with
 * LOOM_LLM_THREADS threads (0 or unset: one per core). NULL when out of
 * memory. Borrowed for the process's life. */
loom_llm_pool_t *loom_llm_backend_cpu_pool(void);

#endif
