/* llm_ops.h — registers the LLM worker ops (llm.generate, llm.prefill,
 * llm.decode, embed, vector.search) for a device backend.
 *
 * The ops (llm_ops.c) are the same on every worker kind; a factory from
 * the backend table (llm_backend.h) makes the device context a task runs
 * on: the CPU worker passes "cpu", the GPU worker "cuda". Encoder models
 * (embed) run on the CPU backend on every worker. */
#ifndef LOOM_LLM_OPS_H
#define LOOM_LLM_OPS_H

#include "common/err.h"
#include "workers/common/backend.h"
#include "llm/llm_backend.h"

/* f (from loom_llm_backend_find) is borrowed for the process's life;
 * NULL = the CPU backend. */
int loom_llm_add_ops(loom_ops_t *ops, const loom_llm_factory_t *f, loom_err_t *err);
/* Names of loaded models, comma separated, into out (for logs/registration). */
void loom_llm_loaded_models(char *out, size_t n);

#endif
